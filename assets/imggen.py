"""The example pipeline, configured from environment variables.

- ``IMGGEN_PROVIDER``: local (default), openai, piapi, pixapi, apiyi, aigenerate, gptimage2.
- ``IMGGEN_API_KEY``: the provider's key, read by Dagster through ``dg.EnvVar`` (never by our code).
- ``IMGGEN_BASE_URL``: the provider's API root (default: the provider's documented root).
- ``IMGGEN_PROMPTS``: fsspec URL of the prompt table (default: ``assets/data/prompts.tsv``;
  ``../shared/data/PartiPrompts.tsv`` runs the real PartiPrompts). Relative paths are taken from
  the repository root.
- ``IMGGEN_OUTPUT``: output root (default: ``output/`` in the repository).
- ``IMGGEN_MODEL`` (default gpt-image-2), ``IMGGEN_SIZE`` (1024x1024), ``IMGGEN_QUALITY`` (low),
  ``IMGGEN_OUTPUT_FORMAT`` (png), ``IMGGEN_BUDGET_USD`` (no budget).
"""

from __future__ import annotations

import importlib
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg

from dagster_imggen.pipeline import ImagePipeline, PromptSource, build_image_generation_assets

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PROMPTS = REPO / "assets" / "data" / "prompts.tsv"
DEFAULT_OUTPUT = REPO / "output"

#: IMGGEN_PROVIDER -> resource class exported by dagster_imggen.
PROVIDERS: dict[str, str] = {
    "local": "LocalImageResource",
    "openai": "OpenAIImageResource",
    "piapi": "PiAPIImageResource",
    "pixapi": "PixapiImageResource",
    "apiyi": "APIYIImageResource",
    "aigenerate": "AIGenerateImageResource",
    "gptimage2": "GPTImage2ImageResource",
}


def _local_or_url(value: str) -> str:
    """A relative local path is taken from the repository root; URLs and absolute paths pass."""
    if "://" in value or os.path.isabs(value):
        return value
    return str((REPO / value).resolve())


def provider_name() -> str:
    name = os.environ.get("IMGGEN_PROVIDER", "local").strip().lower() or "local"
    if name not in PROVIDERS:
        raise ValueError(f"IMGGEN_PROVIDER={name!r}: must be one of {', '.join(PROVIDERS)}")
    return name


def provider_resource(name: str | None = None) -> Any:
    """The resource for ``IMGGEN_PROVIDER``; remote ones take the key from ``dg.EnvVar('IMGGEN_API_KEY')``."""
    name = name or provider_name()
    cls = getattr(importlib.import_module("dagster_imggen"), PROVIDERS[name])
    if name == "local":
        return cls()
    kwargs: dict[str, Any] = {"api_key": dg.EnvVar("IMGGEN_API_KEY")}
    if os.environ.get("IMGGEN_BASE_URL"):
        kwargs["base_url"] = dg.EnvVar("IMGGEN_BASE_URL")
    return cls(**kwargs)


def build_pipeline() -> ImagePipeline:
    """The pipeline as the environment describes it (the table is read once, for its categories)."""
    env = os.environ
    defaults: dict[str, Any] = {
        "model": env.get("IMGGEN_MODEL", "gpt-image-2"),
        "size": env.get("IMGGEN_SIZE", "1024x1024"),
        "quality": env.get("IMGGEN_QUALITY", "low"),
        "output_format": env.get("IMGGEN_OUTPUT_FORMAT", "png"),
    }
    budget = env.get("IMGGEN_BUDGET_USD")
    return build_image_generation_assets(
        prompts=PromptSource(
            url=_local_or_url(env.get("IMGGEN_PROMPTS", str(DEFAULT_PROMPTS))),
            prompt_column="Prompt",
            partition_column="Category",
        ),
        output_root=_local_or_url(env.get("IMGGEN_OUTPUT", str(DEFAULT_OUTPUT))),
        partitioning="column",
        provider_name=provider_name(),
        defaults=defaults,
        budget_usd=Decimal(budget) if budget else None,
    )


PIPELINE = build_pipeline()

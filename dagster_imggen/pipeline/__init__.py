"""The image pipeline: prompt tables, the image store, the usage ledger, spend, checks and the factory.

Public names load lazily (``import dagster_imggen.pipeline`` stays cheap).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "build_image_generation_assets": ".factory",
    "ImagePipeline": ".factory",
    "PromptSource": ".prompts",
    "PromptRow": ".prompts",
    "InvalidRow": ".prompts",
    "read_prompt_table": ".prompts",
    "sanitize_id": ".prompts",
    "ImageStore": ".store",
    "ManifestEntry": ".store",
    "LedgerRow": ".ledger",
    "LedgerWriter": ".ledger",
    "LEDGER_SCHEMA": ".ledger",
    "ReconcileReport": ".ledger",
    "read_ledger": ".ledger",
    "reconcile": ".ledger",
    "build_spend_table": ".spend",
    "write_spend_table": ".spend",
    "summarize": ".spend",
    "SpendSummary": ".spend",
    "CheckOutcome": ".checks",
    "contact_sheet": ".visuals",
    "spend_chart": ".visuals",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dagster_imggen.pipeline' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

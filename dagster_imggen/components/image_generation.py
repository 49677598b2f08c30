"""``ImageGenerationComponent``: a whole image-generation pipeline declared in ``defs.yaml``.

It wraps :func:`dagster_imggen.build_image_generation_assets` (the Python form) and adds the provider
resource. Every attribute group is a nested model so that ``dg check yaml`` names the exact field at
fault (``attributes.partitioning.by``, ``attributes.provider.api_key``, ...).

Relative local paths: ``prompts.url`` and ``partitioning.folder`` are taken from the folder holding
``defs.yaml`` (ship the table beside it); ``output_root`` from the project root (outputs must stay out
of the defs folder, which ``dg`` scans). fsspec URLs (``s3://...``, ``memory://...``) are used as given.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import re
import textwrap
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import dagster as dg
from pydantic import BaseModel, Field, InstanceOf, ValidationError, model_validator

from ..request import Background, Moderation, OutputFormat, Quality

if TYPE_CHECKING:
    from ..providers.base import ImageProviderResource

__all__ = [
    "ChecksConfig",
    "ImageGenerationComponent",
    "ImageGenerationScaffolder",
    "PartitioningConfig",
    "PromptsConfig",
    "ProviderConfig",
    "RequestDefaults",
]

ProviderName = Literal["local", "openai", "piapi", "pixapi", "apiyi", "aigenerate", "gptimage2"]
PartitionBy = Literal["column", "daily", "dynamic", "none"]

#: provider name -> (module under dagster_imggen.providers, resource class name)
_RESOURCES: dict[str, tuple[str, str]] = {
    "local": ("local", "LocalImageResource"),
    "openai": ("openai", "OpenAIImageResource"),
    "piapi": ("piapi", "PiAPIImageResource"),
    "pixapi": ("pixapi", "PixapiImageResource"),
    "apiyi": ("apiyi", "APIYIImageResource"),
    "aigenerate": ("aigenerate", "AIGenerateImageResource"),
    "gptimage2": ("gptimage2", "GPTImage2ImageResource"),
}
# `{{ env.NAME }}`, `{{ env("NAME") }}` or `{{ env('NAME') }}`, and nothing else.
_ENV_REF = re.compile(r"""^\s*\{\{\s*env(?:\.(\w+)|\(\s*["'](\w+)["']\s*\))\s*\}\}\s*$""")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ASSET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ComponentConfigError(ValueError):
    """A component attribute is invalid; the message names it as ``attributes.<path>``."""


# ---------------------------------------------------------------------------------------------
# Resolvers
# ---------------------------------------------------------------------------------------------


def _resolve_api_key(context: dg.ResolutionContext, value: Any) -> dg.EnvVar | None:
    """YAML ``api_key`` -> ``dg.EnvVar``: only an env reference is accepted, never a literal key."""
    if value is None:
        return None
    if isinstance(value, str):
        match = _ENV_REF.match(value)
        if match:
            return dg.EnvVar(match.group(1) or match.group(2))
    raise ComponentConfigError(
        "attributes.provider.api_key must be an env reference such as '{{ env.IMGGEN_API_KEY }}' "
        "(or set provider.api_key_env: IMGGEN_API_KEY); a literal key would be stored in the "
        "Dagster UI and run storage"
    )


def _resolve_usd(context: dg.ResolutionContext, value: Any) -> Decimal | None:
    value = context.resolve_value(value)
    if value is None:
        return None
    try:
        usd = Decimal(str(value))  # str(): a YAML float 5.1 becomes exactly Decimal("5.1")
    except InvalidOperation:
        raise ComponentConfigError(f"attributes.budget_usd: {value!r} is not a USD amount") from None
    if not usd.is_finite() or usd < 0:
        raise ComponentConfigError(f"attributes.budget_usd: {value!r} must be a finite amount >= 0")
    return usd


# ---------------------------------------------------------------------------------------------
# Attribute groups
# ---------------------------------------------------------------------------------------------


class PromptsConfig(dg.Model, dg.Resolvable):
    """The prompt table and which of its columns mean what (see ``PromptSource``)."""

    url: str = Field(
        description="fsspec URL or path (relative to defs.yaml) of a CSV/TSV/Parquet/JSONL table; "
        "daily pipelines may use {date} (YYYY-MM-DD) for one file per day."
    )
    prompt_column: str = Field(default="Prompt", description="Column holding the prompt text.")
    id_column: str | None = Field(default=None, description="Column with a stable prompt id.")
    override_columns: dict[str, str] = Field(
        default_factory=dict,
        description="Request field -> column of per-row overrides, e.g. {model: Model, size: Size}.",
    )
    format: Literal["csv", "tsv", "parquet", "jsonl"] | None = Field(
        default=None, description="Table format when the extension does not tell."
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        repr=False,
        description="fsspec options for the table's filesystem (e.g. endpoint_url).",
    )


class PartitioningConfig(dg.Model, dg.Resolvable):
    """How prompts split into partitions: by a column, by day, by file in a folder, or not at all."""

    by: PartitionBy = Field(default="column", description="column | daily | dynamic | none")
    column: str | None = Field(
        default=None,
        description="by=column: the column whose values are the partitions (PartiPrompts: Category). "
        "by=daily: the date column (omit when prompts.url holds {date}).",
    )
    start_date: str | None = Field(
        default=None, description="by=daily: first day, YYYY-MM-DD (default: the table's earliest date)."
    )
    folder: str | None = Field(
        default=None, description="by=dynamic: folder watched for new prompt files (fsspec URL or path)."
    )
    schedule: bool = Field(default=True, description="by=daily: include the daily schedule.")

    @model_validator(mode="after")
    def _check_kind(self) -> PartitioningConfig:
        if self.by == "column" and not self.column:
            raise ValueError("partitioning.by=column needs partitioning.column (e.g. Category)")
        if self.start_date is not None:
            try:
                dt.date.fromisoformat(self.start_date)
            except ValueError:
                raise ValueError(
                    f"partitioning.start_date {self.start_date!r} is not a YYYY-MM-DD date"
                ) from None
        if self.by == "dynamic" and not self.folder:
            raise ValueError("partitioning.by=dynamic needs partitioning.folder")
        return self


class RateLimitConfig(dg.Model, dg.Resolvable):
    """Client-side pacing: at most ``requests`` submissions per ``period_s`` seconds."""

    requests: int = Field(gt=0, description="Submissions allowed per period.")
    period_s: float = Field(gt=0, description="Length of the period in seconds.")


class ProviderConfig(dg.Model, dg.Resolvable):
    """The provider resource: its name, its key (an env reference) and its settings."""

    name: ProviderName = Field(default="local", description="Provider (catalog key).")
    api_key: Annotated[
        InstanceOf[dg.EnvVar] | None,
        dg.Resolver(
            _resolve_api_key,
            model_field_type=str | None,  # type: ignore[arg-type]
            inject_before_resolve=False,
            description="Env reference to the API key, e.g. '{{ env.IMGGEN_API_KEY }}'.",
        ),
    ] = Field(default=None, repr=False)
    api_key_env: str | None = Field(
        default=None, description="Name of the environment variable holding the API key."
    )
    base_url: str | None = Field(default=None, description="API root (default: the provider's).")
    timeout_s: float | None = Field(default=None, gt=0, description="Read timeout per call, seconds.")
    max_concurrency: int | None = Field(default=None, gt=0, description="Requests in flight.")
    rate_limit: RateLimitConfig | None = Field(default=None, description="{requests: N, period_s: S}")
    max_retries: int | None = Field(default=None, ge=0, description="Retries after the first attempt.")
    settings: dict[str, Any] = Field(
        default_factory=dict, description="Any other field of the provider's resource class."
    )
    resource_key: str | None = Field(
        default=None, description="Resource key (default: '<name>_provider', unique per pipeline)."
    )

    @model_validator(mode="after")
    def _check_key(self) -> ProviderConfig:
        if self.api_key is not None and self.api_key_env:
            raise ValueError("set provider.api_key or provider.api_key_env, not both")
        if self.api_key_env is not None and not _ENV_NAME.match(self.api_key_env):
            raise ValueError(f"provider.api_key_env {self.api_key_env!r} is not an environment variable name")
        if self.name == "local" and (self.api_key is not None or self.api_key_env):
            raise ValueError("provider.name=local takes no api_key")
        return self

    def key_env_var(self) -> dg.EnvVar | None:
        if self.api_key is not None:
            return self.api_key
        return dg.EnvVar(self.api_key_env) if self.api_key_env else None

    def build_resource(self) -> ImageProviderResource:
        """Instantiate the provider's resource class.

        Raises:
            ComponentConfigError: naming ``attributes.provider.<field>`` when the class rejects a setting
                or a remote provider has no key.
        """
        if "api_key" in self.settings:
            raise ComponentConfigError(
                "attributes.provider.settings.api_key: set the key with provider.api_key "
                "(an env reference) or provider.api_key_env"
            )
        module_name, class_name = _RESOURCES[self.name]
        cls = getattr(importlib.import_module(f"dagster_imggen.providers.{module_name}"), class_name)
        kwargs: dict[str, Any] = dict(self.settings)
        for field in ("base_url", "timeout_s", "max_concurrency", "max_retries"):
            value = getattr(self, field)
            if value is not None:
                kwargs[field] = value
        if self.rate_limit is not None:
            from ..providers.base import RateLimit

            kwargs["rate_limit"] = RateLimit(
                requests=self.rate_limit.requests, period_s=self.rate_limit.period_s
            )
        key = self.key_env_var()
        if key is not None:
            kwargs["api_key"] = key
        accepted = set(cls.model_fields)
        unknown = sorted(set(kwargs) - accepted)
        if unknown:
            where = [f"settings.{k}" if k in self.settings else k for k in unknown]
            raise ComponentConfigError(
                f"attributes.provider.{where[0]}: {class_name} has no such field "
                f"(accepted: {', '.join(sorted(accepted))})"
            )
        if "api_key" in accepted and "api_key" not in kwargs:
            raise ComponentConfigError(
                f"attributes.provider.api_key: provider {self.name!r} needs a key, e.g. "
                "api_key: '{{ env.IMGGEN_API_KEY }}' or api_key_env: IMGGEN_API_KEY"
            )
        try:
            return cls(**kwargs)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            prefix = "settings." if err["loc"] and err["loc"][0] in self.settings else ""
            raise ComponentConfigError(
                f"attributes.provider.{prefix}{loc}: {err['msg']} (input {err.get('input')!r})"
                if loc != "api_key"
                else f"attributes.provider.api_key: {err['msg']}"
            ) from None


class RequestDefaults(dg.Model, dg.Resolvable):
    """Request fields used when a row has no override (OpenAI Images API names; ``image_model`` = model)."""

    image_model: str | None = Field(default=None, description="Model, e.g. gpt-image-2.")
    size: str | None = Field(default=None, description="auto, a preset like 1536x1024, or WxH pixels.")
    quality: Quality | None = Field(default=None, description="low | medium | high | auto | standard | hd")
    n: int | None = Field(default=None, gt=0, description="Images per request.")
    output_format: OutputFormat | None = Field(default=None, description="png | jpeg | webp")
    output_compression: int | None = Field(default=None, ge=0, le=100, description="0-100 (jpeg/webp).")
    background: Background | None = Field(default=None, description="transparent | opaque | auto")
    moderation: Moderation | None = Field(default=None, description="low | auto")
    extra: dict[str, Any] = Field(default_factory=dict, description="Provider-specific fields.")

    def as_defaults(self) -> dict[str, Any]:
        """The factory's ``defaults`` mapping (``image_model`` becomes ``model``; unset fields dropped)."""
        out: dict[str, Any] = {
            "model": self.image_model,
            "size": self.size,
            "quality": self.quality,
            "n": self.n,
            "output_format": self.output_format,
            "output_compression": self.output_compression,
            "background": self.background,
            "moderation": self.moderation,
            "extra": dict(self.extra) or None,
        }
        return {k: v for k, v in out.items() if v is not None}


class ChecksConfig(dg.Model, dg.Resolvable):
    """Asset check thresholds."""

    max_failure_share: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Blocking check: a partition fails when failed/total prompts exceeds this share.",
    )


# ---------------------------------------------------------------------------------------------
# Schema: make nested groups and enums strict so `dg check yaml` names the exact field
# ---------------------------------------------------------------------------------------------


def _tighten(node: Any) -> None:
    """Rewrite a derived JSON schema in place.

    Dagster lets every non-str field also take a template string, so each property is
    ``anyOf: [<its schema>, {"type": "string"}]``. For nested groups that hides the real error behind
    "not valid under any of the given schemas"; here a group must be a mapping (its own fields still
    take templates), and an enum must be one of its values or a ``{{ ... }}`` template.
    """
    if isinstance(node, list):
        for item in node:
            _tighten(item)
        return
    if not isinstance(node, dict):
        return
    for value in node.values():
        _tighten(value)
    variants = node.get("anyOf")
    if not isinstance(variants, list):
        return
    plain_string = {"type": "string"}
    others = [v for v in variants if v != plain_string]
    if len(others) == len(variants):
        return  # no template alternative here
    refs = [v for v in others if "$ref" in v]
    enums = [v for v in others if "enum" in v]
    nulls = [v for v in others if v == {"type": "null"}]
    if len(refs) == 1 and len(refs) + len(nulls) == len(others):
        # Validate the group directly (no anyOf), so errors carry the field's own path.
        node.pop("anyOf")
        if nulls:
            node["type"] = ["object", "null"]
            node["if"] = {"type": "object"}
            node["then"] = refs[0]
        else:
            node["$ref"] = refs[0]["$ref"]
    elif enums and len(enums) + len(nulls) == len(others):
        values = [str(x) for e in enums for x in e["enum"]]
        alternation = "|".join(re.escape(v) for v in values)
        node.pop("anyOf")
        node["type"] = ["string", "null"] if nulls else "string"
        node["pattern"] = rf"^({alternation})$|^\s*\{{\{{"
        node.setdefault("description", " | ".join(values))


def _describe(schema: dict[str, Any], models: Mapping[str, type[BaseModel]]) -> None:
    """Copy field descriptions from our models into the derived schema (Dagster drops them for
    fields with defaults) and remove Dagster's internal "unset" default marker."""
    for title, model in models.items():
        node = schema if title == "" else schema.get("$defs", {}).get(title)
        if not isinstance(node, dict):
            continue
        for field_name, prop in node.get("properties", {}).items():
            info = model.model_fields.get(field_name)
            if info is not None and info.description and "description" not in prop:
                prop["description"] = info.description
            if prop.get("default") == _UNSET_DEFAULT:
                prop.pop("default")


_UNSET_DEFAULT = "__DAGSTER_UNSET_DEFAULT__"


@functools.cache
def _strict_model(base: type[BaseModel], component: type[BaseModel]) -> type[BaseModel]:
    groups = (
        PromptsConfig,
        PartitioningConfig,
        ProviderConfig,
        RateLimitConfig,
        RequestDefaults,
        ChecksConfig,
    )
    models: dict[str, type[BaseModel]] = {"": component, **{f"{g.__name__}Model": g for g in groups}}

    def model_json_schema(cls: type[BaseModel], *args: Any, **kwargs: Any) -> dict[str, Any]:
        schema = base.model_json_schema.__func__(cls, *args, **kwargs)  # type: ignore[attr-defined]
        _tighten(schema)
        _describe(schema, models)
        return schema

    # Same name as the derived model, so validation errors read "ImageGenerationComponentModel".
    return type(base.__name__, (base,), {"model_json_schema": classmethod(model_json_schema)})


# ---------------------------------------------------------------------------------------------
# Scaffolder
# ---------------------------------------------------------------------------------------------


class ImageGenerationScaffoldParams(BaseModel):
    """Options of ``dg scaffold defs dagster_imggen.ImageGenerationComponent PATH``."""

    provider: ProviderName = Field(default="local", description="Provider to configure.")
    partitioning: PartitionBy = Field(default="column", description="column | daily | dynamic | none")


_SAMPLE_PROMPTS = [
    ("A red fox curled up asleep in fresh snow, morning light", "Animals", "Basic"),
    ("A lighthouse on a cliff during a storm, oil painting", "Arts", "Style & Format"),
    ("Three blue cubes stacked on top of a yellow sphere", "Abstract", "Counting"),
    ("A bowl of ramen with a soft-boiled egg, top-down photo", "Food & Beverage", "Basic"),
]


class ImageGenerationScaffolder(dg.Scaffolder[ImageGenerationScaffoldParams]):
    """Writes a working ``defs.yaml`` and a small ``prompts.csv`` beside it (local provider by default)."""

    @classmethod
    def get_scaffold_params(cls) -> type[ImageGenerationScaffoldParams]:
        return ImageGenerationScaffoldParams

    def scaffold(self, request: dg.ScaffoldRequest[ImageGenerationScaffoldParams]) -> None:
        params = request.params or ImageGenerationScaffoldParams()
        if request.scaffold_format == "python":
            from dagster.components.component_scaffolding import scaffold_component

            scaffold_component(request, {})
            return
        folder = Path(request.target_path)
        folder = folder.parent if request.append else folder
        folder.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"\W", "_", folder.name)
        name = name if _ASSET_NAME.match(name) else f"images_{name}"
        today = dt.date.today()
        prompts_file = _write_sample_prompts(folder, params.partitioning, today)
        text = _scaffold_yaml(request.type_name, name, prompts_file, params, today)
        if request.append:
            with open(request.target_path, "a", encoding="utf-8") as f:
                f.write("---\n" + text)
        else:
            (folder / "defs.yaml").write_text(text, encoding="utf-8")


def _write_sample_prompts(folder: Path, by: str, today: dt.date) -> str:
    """Write a small prompt table (PartiPrompts columns plus Date: the last two days); return its path."""
    rows = ["Prompt,Category,Challenge,Note,Date"]
    for i, (prompt, category, challenge) in enumerate(_SAMPLE_PROMPTS):
        day = today - dt.timedelta(days=(i % 2) + 1)
        rows.append(f'"{prompt}",{category},{challenge},,{day.isoformat()}')
    relative = "incoming/first_batch.csv" if by == "dynamic" else "prompts.csv"
    (folder / relative).parent.mkdir(parents=True, exist_ok=True)
    (folder / relative).write_text("\n".join(rows) + "\n", encoding="utf-8")
    return relative


def _scaffold_yaml(
    type_name: str, name: str, prompts_file: str, params: ImageGenerationScaffoldParams, today: dt.date
) -> str:
    """The scaffolded ``defs.yaml``: every attribute group, with comments aligned in one column."""
    lines: list[tuple[str, str]] = [
        (f"type: {type_name}", ""),
        ("", ""),
        ("attributes:", ""),
        (f"  name: {name}", f"asset {name}, spend asset {name}_spend"),
        ("  prompts:", ""),
        (f"    url: {prompts_file}", "relative to this folder, or any fsspec URL (s3://...)"),
        ("    prompt_column: Prompt", ""),
        ("  partitioning:", ""),
    ]
    by = params.partitioning
    lines.append((f"    by: {by}", "column | daily | dynamic | none"))
    if by == "column":
        lines.append(("    column: Category", "one partition per distinct value"))
    elif by == "daily":
        start = (today - dt.timedelta(days=2)).isoformat()
        lines += [
            ("    column: Date", "or put {date} in prompts.url: one file per day"),
            (f'    start_date: "{start}"', ""),
            ("    schedule: true", "a daily schedule, one run per finished day"),
        ]
    elif by == "dynamic":
        lines.append(("    folder: incoming", "a sensor adds a partition per new file"))
    lines.append(("  provider:", ""))
    if params.provider == "local":
        lines += [
            ("    name: local", "local | openai | piapi | pixapi | apiyi | aigenerate | gptimage2"),
            ('    # api_key: "{{ env.IMGGEN_API_KEY }}"', "remote providers: an env reference"),
        ]
    else:
        lines += [
            (f"    name: {params.provider}", ""),
            ('    api_key: "{{ env.IMGGEN_API_KEY }}"', "read by Dagster at run time, never stored"),
            ("    max_concurrency: 4", "requests in flight"),
            ("    # rate_limit: {requests: 20, period_s: 10}", ""),
        ]
    lines += [
        ("  request_defaults:", ""),
        ("    image_model: gpt-image-2", ""),
        ("    size: 1024x1024", ""),
        ("    quality: low", ""),
        (f"  output_root: data/{name}", "relative to the project root; or s3://bucket/prefix"),
        ("  checks:", ""),
        ("    max_failure_share: 0.1", "the blocking check fails a partition above 10% failures"),
        ("  budget_usd: 5.00", "the spend check warns above this many USD"),
    ]
    if params.provider != "local":
        lines += [("", ""), ("requirements:", ""), ("  env:", ""), ("    - IMGGEN_API_KEY", "")]
    width = max(len(code) for code, comment in lines if comment) + 2
    out = [f"{code.ljust(width)}# {comment}" if comment else code for code, comment in lines]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# The component
# ---------------------------------------------------------------------------------------------


def _local_path(value: str, base: Path) -> str:
    """``value`` unchanged when it is a URL (``scheme://``) or absolute; else resolved against ``base``."""
    if "://" in value or Path(value).is_absolute():
        return value
    return str((base / value).resolve())


@dg.scaffold_with(ImageGenerationScaffolder)
class ImageGenerationComponent(dg.Component, dg.Model, dg.Resolvable):
    """An image-generation pipeline from a prompt table: images, a usage ledger, spend and checks.

    Declares what :func:`dagster_imggen.build_image_generation_assets` builds (the partitioned
    ``<name>`` asset, ``<name>_spend`` (``image_spend`` for the default name), asset checks, and the
    daily schedule or dynamic-partition sensor) plus the provider resource under
    ``provider.resource_key`` (default ``<name>_provider``, so several pipelines coexist).

    Example ``defs.yaml``::

        type: dagster_imggen.ImageGenerationComponent
        attributes:
          name: daily_images
          prompts: {url: prompts.csv}
          partitioning: {by: daily, column: Date, start_date: "2026-11-14"}
          provider: {name: openai, api_key: "{{ env.IMGGEN_API_KEY }}"}
          request_defaults: {image_model: gpt-image-2, size: 1024x1024, quality: low}
          output_root: data/daily_images
          budget_usd: 5.00
    """

    name: str = Field(
        default="generated_images",
        pattern=_ASSET_NAME.pattern,
        description="Asset name of the images asset; also names its spend asset and resource.",
    )
    prompts: PromptsConfig = Field(description="The prompt table and its columns.")
    partitioning: PartitioningConfig = Field(
        default_factory=lambda: PartitioningConfig(by="none"), description="How prompts are partitioned."
    )
    provider: ProviderConfig = Field(default_factory=ProviderConfig, description="The image provider.")
    request_defaults: RequestDefaults = Field(
        default_factory=RequestDefaults, description="Request fields used unless a row overrides them."
    )
    output_root: str = Field(
        description="fsspec URL or path (relative to the project root) for images, usage ledger and spend."
    )
    checks: ChecksConfig = Field(default_factory=ChecksConfig, description="Asset check thresholds.")
    budget_usd: Annotated[
        Decimal | None,
        dg.Resolver(_resolve_usd, model_field_type=float | str | None),  # type: ignore[arg-type]
    ] = Field(default=None, description="Spend (USD) above which the budget check warns.")
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        repr=False,
        description="fsspec options for output_root (e.g. endpoint_url); never logged.",
    )
    key_prefix: list[str] = Field(default_factory=list, description="Asset key prefix.")
    group_name: str | None = Field(default="imggen", description="Asset group.")
    owners: list[str] = Field(default_factory=list, description="Asset owners (emails or team:name).")
    tags: dict[str, str] = Field(default_factory=dict, description="Asset tags.")

    @classmethod
    def get_model_cls(cls) -> type[BaseModel] | None:
        base = super().get_model_cls()
        return _strict_model(base, cls) if base is not None else None

    @classmethod
    def get_spec(cls) -> dg.ComponentTypeSpec:
        return dg.ComponentTypeSpec(
            description=textwrap.dedent(cls.__doc__ or "").strip().split("\n\n")[0],
            tags=["imggen", "image-generation", "openai"],
            produces=["asset", "asset_check", "schedule", "sensor", "job", "resource"],
        )

    @property
    def resource_key(self) -> str:
        return self.provider.resource_key or f"{self.name}_provider"

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        from ..pipeline.factory import build_image_generation_assets
        from ..pipeline.prompts import PromptSource

        base = Path(context.path)
        if base.is_file():
            base = base.parent
        part = self.partitioning
        source = PromptSource(
            url=_local_path(self.prompts.url, base),
            prompt_column=self.prompts.prompt_column,
            id_column=self.prompts.id_column,
            partition_column=part.column if part.by == "column" else None,
            date_column=part.column if part.by == "daily" else None,
            override_columns=dict(self.prompts.override_columns),
            format=self.prompts.format,
            storage_options=dict(self.prompts.storage_options),
        )
        pipeline = build_image_generation_assets(
            prompts=source,
            output_root=_local_path(self.output_root, Path(context.project_root)),
            partitioning=part.by,
            daily_start_date=part.start_date if part.by == "daily" else None,
            prompt_folder=_local_path(part.folder, base) if part.by == "dynamic" and part.folder else None,
            provider_resource_key=self.resource_key,
            provider_name=self.provider.name,
            defaults=self.request_defaults.as_defaults(),
            name=self.name,
            key_prefix=tuple(self.key_prefix),
            group_name=self.group_name,
            max_failure_share=self.checks.max_failure_share,
            budget_usd=self.budget_usd,
            owners=tuple(self.owners),
            tags=dict(self.tags) or None,
            storage_options=dict(self.storage_options),
        )
        if not part.schedule:
            pipeline.schedules = []
        return pipeline.to_definitions(resources={self.resource_key: self.provider.build_resource()})

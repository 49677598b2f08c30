"""Model catalog and price book: which provider serves which model, with what limits and prices.

The data lives in ``catalog.toml`` next to this module (one readable file; every price and limit
carries its ``source`` and ``as_of`` date). Users override or extend it with their own TOML (or
JSON) file at any fsspec URL, deep-merged over the shipped file::

    catalog = load_catalog("s3://bucket/prices.toml")      # shipped file + overrides
    catalog = load_catalog("prices.toml", extend=False)    # only your file
    get_catalog()                                           # cached; honours $IMGGEN_CATALOG

Lookups: ``catalog.model("openai", "gpt-image-2") -> ModelSpec``; an unknown provider or model
raises ``ImageRequestError`` naming ``provider`` or ``model``. A malformed catalog file raises
``CatalogError``.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import sys
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timezone
from decimal import Decimal
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ImageRequestError, ImgGenError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "ENV_VAR",
    "Catalog",
    "CatalogError",
    "CreditTier",
    "CustomSizeRule",
    "ModelSpec",
    "Pricing",
    "PricingScheme",
    "ProviderSpec",
    "Variant",
    "clear_catalog_cache",
    "get_catalog",
    "load_catalog",
]

#: Environment variable naming an override catalog URL for :func:`get_catalog`.
ENV_VAR = "IMGGEN_CATALOG"

PricingScheme = Literal["tokens", "tokens_or_table", "flat", "per_image_table", "credits"]
TOKEN_SCHEMES: frozenset[str] = frozenset({"tokens", "tokens_or_table"})

_FROZEN = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())


class CatalogError(ImgGenError, ValueError):
    """A catalog file that cannot be read or does not have the documented shape."""


class CustomSizeRule(BaseModel):
    """Rules for custom ``WxH`` sizes (pixels). gpt-image-2: multiples of 16, 655,360 to 8,294,400
    pixels, aspect at most 3:1 either way, longest edge at most 3840 (OpenAI image-generation guide).
    """

    model_config = _FROZEN

    multiple_of: int = Field(default=1, ge=1)
    min_pixels: int = Field(default=1, ge=1)
    max_pixels: int | None = None
    max_aspect: Decimal | None = None  # long edge / short edge
    max_edge: int | None = None  # pixels


class CreditTier(BaseModel):
    """One size tier of a credit matrix: sizes whose long edge is <= ``max_long_edge`` pixels."""

    model_config = _FROZEN

    name: str
    max_long_edge: int
    low: Decimal
    medium: Decimal
    high: Decimal

    def credits(self, quality: str) -> Decimal:
        """Credits per image for ``quality`` (low | medium | high)."""
        if quality not in ("low", "medium", "high"):
            raise ImageRequestError(
                f"quality {quality!r}: no credit price in tier {self.name}", field="quality"
            )
        value: Decimal = getattr(self, quality)
        return value


class Variant(BaseModel):
    """A provider variant (AI Generate): one slug and its credits per image for (mode, quality)."""

    model_config = _FROZEN

    mode: Literal["text-to-image", "image-to-image"]
    quality: str
    slug: str
    credits: Decimal


class Pricing(BaseModel):
    """How a (provider, model) bills. Token rates are USD per 1M tokens; other prices USD each.

    ``scheme``: ``tokens`` | ``tokens_or_table`` (cheaper of the two) | ``flat`` | ``per_image_table``
    | ``credits``. ``bills``: whether image counts follow ``n`` as sent or images returned.
    ``assumed`` / ``usd_per_credit_assumed`` mark figures the provider does not document.
    """

    model_config = _FROZEN

    scheme: PricingScheme
    source: str
    as_of: str
    assumed: bool = False
    # tokens: USD per 1M tokens
    text_input: Decimal | None = None
    text_cached_input: Decimal | None = None
    image_input: Decimal | None = None
    image_cached_input: Decimal | None = None
    image_output: Decimal | None = None
    # flat
    flat_usd: Decimal | None = None
    per: Literal["image", "call"] = "image"
    bills: Literal["requested", "returned"] = "requested"
    # per-image table: quality -> size -> USD per image ("*" matches any)
    per_image: dict[str, dict[str, Decimal]] = Field(default_factory=dict)
    # credits
    usd_per_credit: Decimal | None = None
    usd_per_credit_assumed: bool = False
    auto_quality_as: str = "high"
    auto_size_tier: str | None = None
    credit_tiers: tuple[CreditTier, ...] = ()
    variants: tuple[Variant, ...] = ()

    @model_validator(mode="after")
    def _scheme_fields(self) -> Pricing:
        missing: list[str] = []
        if self.scheme in TOKEN_SCHEMES:
            missing += [k for k in ("text_input", "image_output") if getattr(self, k) is None]
        if self.scheme in ("tokens_or_table", "per_image_table") and not self.per_image:
            missing.append("per_image")
        if self.scheme == "flat" and self.flat_usd is None:
            missing.append("flat_usd")
        if self.scheme == "credits":
            if self.usd_per_credit is None:
                missing.append("usd_per_credit")
            if not self.credit_tiers and not self.variants:
                missing.append("credit_tiers or variants")
        if missing:
            raise ValueError(f"pricing scheme {self.scheme!r} needs {', '.join(missing)}")
        return self

    @property
    def token_billed(self) -> bool:
        return self.scheme in TOKEN_SCHEMES


class ModelSpec(BaseModel):
    """Capabilities and pricing of one model at one provider (see ``catalog.toml`` for sources).

    Sizes are pixels ``"WxH"``; ``prompt_max_chars`` counts characters; ``mode`` is how the
    provider runs generation (``sync`` | ``async`` | ``both``). ``retired`` is the shutdown date.
    """

    model_config = _FROZEN

    provider: str
    model: str
    sizes: tuple[str, ...]
    custom_sizes: CustomSizeRule | None = None
    qualities: tuple[str, ...]
    default_quality: str
    max_n: int = Field(ge=1)
    prompt_max_chars: int = Field(ge=1)
    edits: bool = False
    masks: bool = False
    max_input_images: int = Field(default=0, ge=0)
    output_formats: tuple[str, ...] = ("png", "jpeg", "webp")
    backgrounds: tuple[str, ...] = ("transparent", "opaque", "auto")
    mode: Literal["sync", "async", "both"] = "sync"
    retired: date | None = None
    returns_one_image: bool = False
    ignores_size_quality_n: bool = False
    estimate_only: bool = False
    source: str = ""
    notes: str = ""
    pricing: Pricing

    @field_validator("retired", mode="before")
    @classmethod
    def _no_retirement(cls, value: Any) -> Any:
        return None if value is False or value == "" else value

    @model_validator(mode="after")
    def _default_in_qualities(self) -> ModelSpec:
        if self.default_quality not in self.qualities:
            raise ValueError(f"default_quality {self.default_quality!r} is not one of {list(self.qualities)}")
        if self.default_quality == "auto":
            raise ValueError("default_quality must be explicit, not 'auto'")
        return self

    def is_retired(self, today: date | None = None) -> bool:
        """True when the model has a retirement date on or before ``today`` (default: now, UTC)."""
        if self.retired is None:
            return False
        return (today or datetime.now(timezone.utc).date()) >= self.retired

    def variant(self, mode: str, quality: str) -> Variant:
        """The provider variant for ``mode`` (text-to-image | image-to-image) and ``quality``.

        Raises ``ImageRequestError`` (field ``quality``) when the provider has no such variant.
        """
        for v in self.pricing.variants:
            if v.mode == mode and v.quality == quality:
                return v
        have = ", ".join(f"{v.mode}/{v.quality}" for v in self.pricing.variants) or "none"
        raise ImageRequestError(
            f"quality {quality}: no {mode} variant of {self.model} on {self.provider} (variants: {have})",
            field="quality",
        )

    @property
    def label(self) -> str:
        """``model`` for OpenAI's own rules, ``model on provider`` for a reseller's."""
        return self.model if self.provider in ("openai", "local") else f"{self.model} on {self.provider}"


class ProviderSpec(BaseModel):
    """One provider: display name, source document and its models (by model id)."""

    model_config = _FROZEN

    key: str
    name: str
    source: str = ""
    mirrors: str | None = None
    estimate_only: bool = False
    models: dict[str, ModelSpec] = Field(default_factory=dict)


class Catalog:
    """The merged catalog: providers and their models. Immutable once built."""

    def __init__(self, providers: Mapping[str, ProviderSpec], meta: Mapping[str, Any] | None = None) -> None:
        self._providers = dict(providers)
        self.meta: dict[str, Any] = dict(meta or {})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Catalog:
        """Build from the parsed TOML shape (``[meta]``, ``[providers.<key>.models."<id>"]``).

        Raises ``CatalogError`` naming the provider/model entry that does not validate.
        """
        raw_providers = data.get("providers")
        if not isinstance(raw_providers, Mapping):
            raise CatalogError("catalog: missing [providers] table")
        providers: dict[str, ProviderSpec] = {}
        for key, raw in raw_providers.items():
            if not isinstance(raw, Mapping):
                raise CatalogError(f"catalog: providers.{key} must be a table")
            models_raw: dict[str, Any] = {}
            mirrors = raw.get("mirrors")
            if mirrors:
                source = raw_providers.get(mirrors)
                if not isinstance(source, Mapping):
                    raise CatalogError(f"catalog: providers.{key} mirrors unknown provider {mirrors!r}")
                # Mirror capabilities and prices, not the other provider's retirement dates.
                for mid, mraw in (source.get("models") or {}).items():
                    models_raw[mid] = {k: v for k, v in copy.deepcopy(dict(mraw)).items() if k != "retired"}
            models_raw = _deep_merge(models_raw, dict(raw.get("models") or {}))
            estimate_only = bool(raw.get("estimate_only", False))
            models: dict[str, ModelSpec] = {}
            for mid, mraw in models_raw.items():
                try:
                    fields = {"estimate_only": estimate_only, **dict(mraw), "provider": key, "model": mid}
                    models[mid] = ModelSpec.model_validate(fields)
                except ValidationError as exc:
                    raise CatalogError(
                        f"catalog: providers.{key}.models.{mid!r}: {_first_error(exc)}"
                    ) from None
            try:
                providers[key] = ProviderSpec(
                    key=key,
                    name=str(raw.get("name", key)),
                    source=str(raw.get("source", "")),
                    mirrors=mirrors,
                    estimate_only=estimate_only,
                    models=models,
                )
            except ValidationError as exc:
                raise CatalogError(f"catalog: providers.{key}: {_first_error(exc)}") from None
        return cls(providers, data.get("meta") if isinstance(data.get("meta"), Mapping) else None)

    def providers(self) -> list[str]:
        """Provider keys, in catalog order."""
        return list(self._providers)

    def provider(self, provider: str) -> ProviderSpec:
        """The provider entry; raises ``ImageRequestError`` (field ``provider``) when unknown."""
        try:
            return self._providers[provider]
        except KeyError:
            raise ImageRequestError(
                f"provider {provider!r}: not in the catalog (known: {', '.join(self._providers)})",
                field="provider",
            ) from None

    def models(self, provider: str | None = None) -> list[ModelSpec]:
        """Every model of ``provider`` (or of all providers), in catalog order."""
        keys = [provider] if provider is not None else list(self._providers)
        return [spec for key in keys for spec in self.provider(key).models.values()]

    def model(self, provider: str, model: str) -> ModelSpec:
        """The spec of ``model`` at ``provider``.

        Raises ``ImageRequestError`` naming ``provider`` or ``model`` when either is unknown.
        """
        entry = self.provider(provider)
        try:
            return entry.models[model]
        except KeyError:
            raise ImageRequestError(
                f"model {model!r}: not served by {provider} (models: {', '.join(entry.models)})",
                field="model",
            ) from None

    def has_model(self, provider: str, model: str) -> bool:
        return provider in self._providers and model in self._providers[provider].models

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self.models())

    def __repr__(self) -> str:
        n = sum(len(p.models) for p in self._providers.values())
        return f"Catalog({len(self._providers)} providers, {n} models)"


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()))
    return f"{loc}: {err.get('msg')}" if loc else str(err.get("msg"))


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Tables merge key by key (recursively); any other value (arrays included) is replaced."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(dict(out[key]), value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _parse(text: str, name: str) -> dict[str, Any]:
    try:
        if name.lower().endswith(".json"):
            data = json.loads(text, parse_float=Decimal)
        else:
            data = tomllib.loads(text, parse_float=Decimal)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"catalog {name}: cannot parse: {exc}") from None
    if not isinstance(data, dict):
        raise CatalogError(f"catalog {name}: top level must be a table")
    return data


def _shipped() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("catalog.toml").read_text(encoding="utf-8")
    return _parse(text, "catalog.toml")


def _read_url(url: str) -> dict[str, Any]:
    import fsspec

    try:
        with fsspec.open(url, "rb") as fh:
            raw: bytes = fh.read()
    except (OSError, ValueError, ImportError) as exc:
        raise CatalogError(f"catalog {url}: cannot read: {type(exc).__name__}: {exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CatalogError(f"catalog {url}: not UTF-8 text") from None
    return _parse(text, url)


def load_catalog(url: str | None = None, *, extend: bool = True) -> Catalog:
    """Load the shipped catalog, with the file at ``url`` (any fsspec URL; TOML, or JSON by
    extension) deep-merged over it. ``extend=False`` uses ``url`` alone.

    Raises ``CatalogError`` when a file cannot be read, parsed or validated.
    """
    if url is None:
        return Catalog.from_dict(_shipped())
    user = _read_url(url)
    data = _deep_merge(_shipped(), user) if extend else user
    return Catalog.from_dict(data)


@functools.lru_cache(maxsize=8)
def _cached(url: str | None) -> Catalog:
    return load_catalog(url)


def get_catalog() -> Catalog:
    """The default catalog: shipped file, merged with ``$IMGGEN_CATALOG`` (an fsspec URL) if set.
    Cached per value of the environment variable; see :func:`clear_catalog_cache`."""
    return _cached(os.environ.get(ENV_VAR) or None)


def clear_catalog_cache() -> None:
    """Forget cached catalogs (e.g. after editing an override file)."""
    _cached.cache_clear()

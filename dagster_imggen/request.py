"""``ImageRequest``: one provider-independent image request (OpenAI Images API vocabulary).

Two layers of checks:

- **At construction** (pydantic; ``ValidationError``, or ``ImageRequestError`` through
  :meth:`ImageRequest.from_row`): rules that need no catalog. Prompt not empty; ``n >= 1``;
  ``size`` is ``auto`` or ``WxH`` with ASCII digits and positive edges; ``output_compression`` in
  0-100 and only with jpeg/webp; ``background=transparent`` only with png/webp; a ``mask`` needs
  ``images`` (OpenAI Images API reference: https://platform.openai.com/docs/api-reference/images).
- **Per provider and model** (:meth:`ImageRequest.validate_for`, always ``ImageRequestError``
  naming the field): the catalog's rules (``catalog.toml``, each with its source), e.g.

  * gpt-image-2 custom sizes: both edges multiples of 16; 655,360 to 8,294,400 pixels; aspect at
    most 3:1 either way; longest edge at most 3840 (OpenAI image-generation guide; Pixapi
    ``001_d01986769ffd2010.txt``);
  * gpt-image-1 / 1-mini / 1.5: only 1024x1024, 1536x1024, 1024x1536 and auto (OpenAI guide;
    APIYI ``003_d307cd8db33a550d.txt``);
  * GPTImage2: 1024x1024, 1024x1792, 1792x1024; quality standard/hd; n 1-4
    (``004_be499b8a5e35d015.txt``);
  * prompt length: 32,000 chars on OpenAI; 1000 on APIYI's legacy models (``003_*``);
  * n 1-10 on OpenAI; edits, masks and the number of input images where supported;
  * retired models (gpt-image-1 on OpenAI since 2026-10-23) fail unless ``allow_retired=True``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ImageRequestError

if TYPE_CHECKING:
    from .catalog import Catalog, CustomSizeRule

__all__ = ["ImageRequest", "check_custom_size", "parse_size"]

Quality = Literal["low", "medium", "high", "auto", "standard", "hd"]
OutputFormat = Literal["png", "jpeg", "webp"]
Background = Literal["transparent", "opaque", "auto"]
Moderation = Literal["low", "auto"]

# "auto" or WIDTHxHEIGHT: ASCII digits only, no sign, no leading zero, at most 6 digits per edge.
_SIZE_RE = re.compile(r"([0-9]{1,6})x([0-9]{1,6})", re.ASCII)
_HASH_VERSION = 1
_CHUNK = 1 << 20


def parse_size(size: str) -> tuple[int, int] | None:
    """Parse ``"WxH"`` into ``(width, height)`` pixels, or ``None`` for ``"auto"``.

    Accepts only ASCII digits (``"１０２４x１０２４"`` is refused), positive edges without leading
    zeros, and exactly two dimensions. Raises ``ImageRequestError`` (field ``size``).
    """
    if not isinstance(size, str):
        raise ImageRequestError(f"size {size!r}: must be a string, 'auto' or 'WIDTHxHEIGHT'", field="size")
    text = size.strip().lower()
    if text == "auto":
        return None
    shown = size if len(size) <= 40 else size[:40] + "..."
    match = _SIZE_RE.fullmatch(text)
    if match is None:
        raise ImageRequestError(
            f"size {shown!r}: must be 'auto' or 'WIDTHxHEIGHT' in pixels with ASCII digits, e.g. '1024x1024'",
            field="size",
        )
    w_text, h_text = match.groups()
    if w_text.startswith("0") or h_text.startswith("0"):
        raise ImageRequestError(
            f"size {shown}: width and height must be positive, without leading zeros", field="size"
        )
    return int(w_text), int(h_text)


def check_custom_size(width: int, height: int, rule: CustomSizeRule, label: str) -> None:
    """Check a custom size against ``rule``; raises ``ImageRequestError`` (field ``size``).

    Order: multiples, longest edge, aspect ratio, minimum and maximum total pixels. ``label``
    (e.g. ``gpt-image-2``) ends the message.
    """
    size = f"{width}x{height}"
    long_edge, short_edge = max(width, height), min(width, height)
    m = rule.multiple_of
    if width % m or height % m:
        raise ImageRequestError(
            f"size {size}: width and height must be multiples of {m} ({label})", field="size"
        )
    if rule.max_edge is not None and long_edge > rule.max_edge:
        raise ImageRequestError(
            f"size {size}: longest edge {long_edge} px is above the maximum of {rule.max_edge} px ({label})",
            field="size",
        )
    if rule.max_aspect is not None and Decimal(long_edge) > rule.max_aspect * short_edge:
        ratio = Decimal(long_edge) / Decimal(short_edge)
        raise ImageRequestError(
            f"size {size}: aspect ratio {ratio:.2f}:1 is above the maximum of {rule.max_aspect}:1 ({label})",
            field="size",
        )
    pixels = width * height
    if pixels < rule.min_pixels:
        raise ImageRequestError(
            f"size {size}: {pixels:,} pixels is below the minimum of {rule.min_pixels:,} ({label})",
            field="size",
        )
    if rule.max_pixels is not None and pixels > rule.max_pixels:
        raise ImageRequestError(
            f"size {size}: {pixels:,} pixels is above the maximum of {rule.max_pixels:,} ({label})",
            field="size",
        )


def _structure(req: ImageRequest) -> None:
    """Rules that need no catalog. Raises ``ImageRequestError`` naming the field."""
    if not req.prompt or not req.prompt.strip():
        raise ImageRequestError("prompt: must not be empty", field="prompt")
    if req.n < 1:
        raise ImageRequestError(f"n {req.n}: must be at least 1", field="n")
    parse_size(req.size)
    if req.output_compression is not None:
        if not 0 <= req.output_compression <= 100:
            raise ImageRequestError(
                f"output_compression {req.output_compression}: must be between 0 and 100",
                field="output_compression",
            )
        if req.output_format not in ("jpeg", "webp"):
            raise ImageRequestError(
                f"output_compression {req.output_compression}: only with output_format jpeg or webp, "
                f"not {req.output_format}",
                field="output_compression",
            )
    if req.background == "transparent" and req.output_format not in ("png", "webp"):
        raise ImageRequestError(
            f"background transparent: needs output_format png or webp, not {req.output_format}",
            field="background",
        )
    for i, ref in enumerate(req.images):
        if not ref.strip():
            raise ImageRequestError(f"images[{i}]: empty path", field="images")
    if req.mask is not None:
        if not req.mask.strip():
            raise ImageRequestError("mask: empty path", field="mask")
        if not req.images:
            raise ImageRequestError("mask: a mask needs at least one reference image in images", field="mask")


def _is_missing(value: Any) -> bool:
    """None, NaN, and pandas' NA/NaT count as a missing cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    return type(value).__name__ in ("NAType", "NaTType")


class ImageRequest(BaseModel):
    """One image request. Shapes and units:

    - ``prompt``: text; length limits per model and provider (see the catalog).
    - ``size``: ``"auto"``, a preset such as ``"1536x1024"``, or a custom ``"WxH"`` in pixels
      (stored lower-cased and stripped).
    - ``quality``: low | medium | high | auto, or standard | hd where a provider's model takes them;
      None means "use the resource's explicit default" (never an implicit ``auto``).
    - ``n``: images per request (>= 1; the upper bound is per model).
    - ``output_format``: png | jpeg | webp; ``output_compression``: 0-100, jpeg/webp only.
    - ``background``: transparent (png/webp only) | opaque | auto; ``moderation``: low | auto.
    - ``images``: reference images for an edit (local paths or fsspec URLs); ``mask`` likewise.
    - ``extra``: provider-specific fields, sent as given.

    Construction raises pydantic's ``ValidationError`` on structural errors; use
    :meth:`from_row` to get ``ImageRequestError(field=..., row=...)`` instead.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    prompt: str
    model: str = "gpt-image-2"
    size: str = "1024x1024"
    quality: Quality | None = None
    n: int = 1
    output_format: OutputFormat = "png"
    output_compression: int | None = None
    background: Background | None = None
    moderation: Moderation | None = None
    images: tuple[str, ...] = ()
    mask: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("size", mode="before")
    @classmethod
    def _normalise_size(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("images", mode="before")
    @classmethod
    def _images_tuple(cls, value: Any) -> Any:
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list):
            return tuple(value)
        return value

    @model_validator(mode="after")
    def _check_structure(self) -> ImageRequest:
        _structure(self)
        return self

    @property
    def is_edit(self) -> bool:
        return bool(self.images)

    @property
    def dimensions(self) -> tuple[int, int] | None:
        """``(width, height)`` in pixels, or None for ``size="auto"``."""
        return parse_size(self.size)

    @classmethod
    def from_row(cls, row_data: Mapping[str, Any], *, row: int | str | None = None) -> ImageRequest:
        """Build from a table row (a mapping of field name to value).

        ``None`` and NaN values count as missing (field default). Raises ``ImageRequestError``
        with ``field`` (the offending column) and ``row`` instead of pydantic's ``ValidationError``.
        """
        if not isinstance(row_data, Mapping):
            raise ImageRequestError(f"row must be a mapping, not {type(row_data).__name__}", row=row)
        data = {str(k): v for k, v in row_data.items() if not _is_missing(v)}
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise _as_request_error(exc, row) from None

    def validate_for(
        self,
        provider: str,
        catalog: Catalog | None = None,
        *,
        allow_retired: bool = False,
        row: int | str | None = None,
    ) -> ImageRequest:
        """Check this request against ``provider``'s rules for ``model`` (from the catalog).

        Returns self. Raises ``ImageRequestError`` naming the field and the rule, e.g.
        ``size 1000x1000: width and height must be multiples of 16 (gpt-image-2)``; with ``row``
        the error also names the input row. A retired model fails (field ``model``) unless
        ``allow_retired=True``.
        """
        try:
            return self._validate_for(provider, catalog, allow_retired)
        except ImageRequestError as exc:
            if row is None or exc.row is not None:
                raise
            raise ImageRequestError(str(exc), field=exc.field, row=row) from None

    def _validate_for(self, provider: str, catalog: Catalog | None, allow_retired: bool) -> ImageRequest:
        from .catalog import get_catalog

        _structure(self)
        spec = (catalog or get_catalog()).model(provider, self.model)
        label = spec.label
        if spec.is_retired() and not allow_retired:
            raise ImageRequestError(
                f"model {self.model}: retired on {provider} since {spec.retired.isoformat() if spec.retired else '?'}; "
                "choose another model, or pass allow_retired=True",
                field="model",
            )
        if len(self.prompt) > spec.prompt_max_chars:
            raise ImageRequestError(
                f"prompt: {len(self.prompt):,} characters is above the maximum of {spec.prompt_max_chars:,} ({label})",
                field="prompt",
            )
        if self.n > spec.max_n:
            raise ImageRequestError(f"n {self.n}: must be between 1 and {spec.max_n} ({label})", field="n")
        if self.quality is not None and self.quality not in spec.qualities:
            raise ImageRequestError(
                f"quality {self.quality}: must be one of {', '.join(spec.qualities)} ({label})",
                field="quality",
            )
        self._check_size(spec.sizes, spec.custom_sizes, label)
        if self.output_format not in spec.output_formats:
            raise ImageRequestError(
                f"output_format {self.output_format}: must be one of {', '.join(spec.output_formats)} ({label})",
                field="output_format",
            )
        if self.background is not None and self.background not in spec.backgrounds:
            raise ImageRequestError(
                f"background {self.background}: must be one of {', '.join(spec.backgrounds)} ({label})",
                field="background",
            )
        if self.images:
            if not spec.edits:
                raise ImageRequestError(f"images: edits are not supported ({label})", field="images")
            if len(self.images) > spec.max_input_images:
                raise ImageRequestError(
                    f"images: {len(self.images)} reference images is above the maximum of "
                    f"{spec.max_input_images} ({label})",
                    field="images",
                )
        if self.mask is not None and not spec.masks:
            raise ImageRequestError(f"mask: masks are not supported ({label})", field="mask")
        return self

    def _check_size(self, presets: tuple[str, ...], rule: CustomSizeRule | None, label: str) -> None:
        dims = parse_size(self.size)
        if self.size in presets:
            return
        if dims is not None and rule is not None:
            check_custom_size(dims[0], dims[1], rule, label)
            return
        raise ImageRequestError(
            f"size {self.size}: must be one of {', '.join(presets)} ({label})", field="size"
        )

    def request_hash(self) -> str:
        """Stable hex SHA-256 of the normalised parameters and the bytes of the reference images.

        Parameters are every field as JSON (``extra`` without None values, keys sorted); images and
        mask count by their content (read through fsspec), not their paths. Raises
        ``ImageRequestError`` (field ``images`` or ``mask``) when a file cannot be read.
        """
        params = self.model_dump(mode="json", exclude={"images", "mask", "extra"})
        params["extra"] = {str(k): v for k, v in self.extra.items() if v is not None}
        params["images"] = [_digest(ref, "images") for ref in self.images]
        params["mask"] = _digest(self.mask, "mask") if self.mask is not None else None
        params["v"] = _HASH_VERSION
        payload = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _digest(url: str, field: str) -> str:
    import fsspec

    digest = hashlib.sha256()
    try:
        with fsspec.open(url, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
    except (OSError, ValueError, ImportError) as exc:
        raise ImageRequestError(f"{field} {url}: cannot read: {type(exc).__name__}", field=field) from None
    return digest.hexdigest()


def _as_request_error(exc: ValidationError, row: int | str | None) -> ImageRequestError:
    err = exc.errors()[0]
    original = (err.get("ctx") or {}).get("error")
    if isinstance(original, ImageRequestError):
        return ImageRequestError(str(original), field=original.field, row=row)
    loc = err.get("loc") or ()
    field = str(loc[0]) if loc else None
    msg = str(err.get("msg", "invalid"))
    if err.get("type") == "extra_forbidden":
        msg = "unknown field"
    return ImageRequestError(f"{field}: {msg}" if field else msg, field=field, row=row)

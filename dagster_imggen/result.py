"""Result types shared by every provider: usage, cost, images and the per-request result."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import ImgGenError
    from .request import ImageRequest

__all__ = ["Cost", "CostBasis", "GeneratedImage", "ImageResult", "TaskState", "Usage"]


class TaskState(str, Enum):
    """One enum for every provider's task states (each provider module maps its own words)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def done(self) -> bool:
        return self in (TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED)


class CostBasis(str, Enum):
    """How a cost figure was reached."""

    USAGE_TOKENS = "usage_tokens"  # from the response's ``usage`` and the per-1M-token rates
    FLAT = "flat"  # a flat fee per call or per image
    CREDITS = "credits"  # provider credits times the USD value of one credit
    PER_IMAGE_TABLE = "per_image_table"  # a per-image price table (by size and quality)
    ESTIMATE = "estimate"  # expected tokens for size and quality; nothing was reported


@dataclass(frozen=True)
class Cost:
    """A cost in USD (``Decimal``, never float) with the basis it was computed on."""

    usd: Decimal
    basis: CostBasis
    #: Free text on how the figure was reached, e.g. "usage missing; estimated from 1024x1024 high".
    detail: str = ""

    @classmethod
    def zero(cls, basis: CostBasis = CostBasis.ESTIMATE, detail: str = "") -> Cost:
        return cls(Decimal(0), basis, detail)


@dataclass(frozen=True)
class Usage:
    """Token usage as the OpenAI Images API reports it (all figures in tokens)."""

    input_text_tokens: int = 0
    input_image_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0

    @property
    def input_tokens(self) -> int:
        return self.input_text_tokens + self.input_image_tokens

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @classmethod
    def from_openai(cls, usage: dict[str, Any] | None) -> Usage | None:
        """Parse an OpenAI-style ``usage`` object; None when absent or empty.

        Shape: ``{input_tokens, input_tokens_details {text_tokens, image_tokens, cached_tokens?},
        output_tokens, total_tokens}``. Without details, all input tokens count as text.
        """
        if not isinstance(usage, dict) or not usage:
            return None
        details = usage.get("input_tokens_details") or {}
        total_in = int(usage.get("input_tokens") or 0)
        text = details.get("text_tokens")
        image = int(details.get("image_tokens") or 0)
        return cls(
            input_text_tokens=int(text) if text is not None else max(total_in - image, 0),
            input_image_tokens=image,
            cached_input_tokens=int(details.get("cached_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),
        )

    def to_openai(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {
                "text_tokens": self.input_text_tokens,
                "image_tokens": self.input_image_tokens,
                "cached_tokens": self.cached_input_tokens,
            },
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True, repr=False)
class GeneratedImage:
    """One image: its bytes, with format and pixel size read from the bytes themselves (Pillow)."""

    data: bytes
    format: str  # "png" | "jpeg" | "webp"
    width: int  # pixels
    height: int  # pixels

    @classmethod
    def from_bytes(cls, data: bytes) -> GeneratedImage:
        """Identify ``data`` with Pillow (header only plus a full verify), never trusting the request.

        Raises ``ImageDecodeError`` for bytes that are not a complete PNG/JPEG/WebP image, and for
        images over Pillow's decompression-bomb limit.
        """
        from PIL import Image

        from .errors import ImageDecodeError

        try:
            with Image.open(io.BytesIO(data)) as im:
                fmt = (im.format or "").lower()
                width, height = im.size
                im.verify()
        except Exception as exc:  # Pillow raises many types here
            raise ImageDecodeError(f"image does not decode: {type(exc).__name__}: {exc}") from None
        if fmt not in ("png", "jpeg", "webp"):
            raise ImageDecodeError(f"unsupported image format {fmt!r}")
        return cls(data=data, format=fmt, width=width, height=height)

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    @property
    def extension(self) -> str:
        return "jpg" if self.format == "jpeg" else self.format

    def __repr__(self) -> str:
        return f"GeneratedImage({self.format}, {self.width}x{self.height}, {len(self.data)} bytes)"


@dataclass(repr=False)
class ImageResult:
    """The outcome of one ``ImageRequest`` against one provider.

    A failed request (from ``generate_many``) has ``error`` set and no images; ``possibly_billed``
    says whether the provider may still have charged for it.
    """

    request: ImageRequest
    provider: str
    model: str
    images: list[GeneratedImage] = field(default_factory=list)
    usage: Usage | None = None
    credits: Decimal | None = None  # provider credits charged, where reported
    cost: Cost = field(default_factory=Cost.zero)
    request_id: str | None = None  # the provider's request or task id
    latency_s: float = 0.0  # seconds, from first send to last byte, retries included
    attempts: int = 1
    size: str | None = None  # as the response states it (resolves "auto")
    quality: str | None = None
    output_format: str | None = None
    error: ImgGenError | None = None
    possibly_billed: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def cost_usd(self) -> Decimal:
        return self.cost.usd

    def __repr__(self) -> str:
        state = "ok" if self.ok else f"error={type(self.error).__name__}"
        return (
            f"ImageResult({self.provider}/{self.model}, {len(self.images)} image(s), {state}, "
            f"cost_usd={self.cost.usd} [{self.cost.basis.value}], attempts={self.attempts})"
        )

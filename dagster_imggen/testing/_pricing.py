"""The one place the emulator asks the cost engine for usage and prices (``dagster_imggen.cost``).

The emulator reports the ``usage`` a real provider would report and bills what it would charge,
both taken from the project's catalog and cost engine, so the figures match the price book.
"""

from __future__ import annotations

from decimal import Decimal

from ..request import ImageRequest
from ..result import Usage

__all__ = ["charge", "expected_usage"]

# Used only for the rare wire values ImageRequest cannot hold (the emulator must answer anyway).
_FALLBACK_OUTPUT_TOKENS = {"low": 272, "medium": 1056, "high": 4160}  # gpt-image-1, 1024x1024 [README.md]


def _request(
    model: str, size: str, quality: str, n: int, prompt: str, input_images: int
) -> ImageRequest | None:
    try:
        return ImageRequest(
            prompt=prompt or "-",
            model=model,
            size=size,
            quality=quality,  # type: ignore[arg-type]
            n=max(n, 1),
            images=tuple(f"emulator-upload-{i}.png" for i in range(input_images)),
        )
    except ValueError:
        return None


def expected_usage(model: str, size: str, quality: str, n: int, prompt: str, input_images: int) -> Usage:
    """Token usage for ``n`` images of ``size`` at ``quality``: output tokens from the cost engine,
    text tokens about len(prompt)/4, image tokens per reference image from the cost engine."""
    from .. import cost

    req = _request(model, size, quality, n, prompt, input_images)
    if req is not None:
        try:
            return cost.expected_usage(req)
        except (ValueError, LookupError):  # a model or size the price book does not know
            pass
    w, _, h = size.partition("x")
    pixels = int(w) * int(h) if w.isdigit() and h.isdigit() else 1024 * 1024
    per_image = _FALLBACK_OUTPUT_TOKENS.get(quality, 4160) * pixels // (1024 * 1024)
    return Usage(input_text_tokens=max(1, len(prompt) // 4), output_tokens=per_image * max(n, 1))


def charge(
    provider: str,
    model: str,
    *,
    size: str,
    quality: str,
    n: int,
    images_returned: int,
    usage: Usage | None,
    credits: Decimal | None,
    prompt: str = "-",
) -> Decimal:
    """USD the provider charges for one call, by the cost engine's rule for ``provider``/``model``."""
    from .. import cost

    req = _request(model, size, quality, n, prompt, 0)
    if req is None:
        return Decimal(0)
    return cost.cost_of_response(
        req, provider, usage=usage, credits=credits, images_returned=images_returned
    ).usd

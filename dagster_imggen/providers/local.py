"""``LocalImageResource``: the offline provider (no key, no network).

It renders a real image of exactly the requested size and format with
:func:`dagster_imggen.render.render_image` (a gradient and the prompt text), deterministic from the
prompt and parameters, and reports the ``usage`` the chosen model would bill at that size and quality
(``cost.expected_usage``), so a dry run over a prompt table gives a realistic spend figure while
costing nothing. The cost basis is always ``estimate``.
"""

from __future__ import annotations

import asyncio
import json
from typing import ClassVar

from pydantic import Field

from ..request import ImageRequest
from ..result import Cost, CostBasis, GeneratedImage
from ._http import CallState, parse_size, run_in_thread
from .base import ImageProviderResource, ProviderOutput, _LoopState

__all__ = ["LocalImageResource"]

#: Size used for ``size="auto"`` when the catalog names no default for the model.
_FALLBACK_SIZE = "1024x1024"


class LocalImageResource(ImageProviderResource):
    """Offline image provider: deterministic rendered images, expected usage, estimated cost.

    Rendering is CPU-bound (about 10-25 ms per 1024x1024 PNG), so it runs in the event loop's default
    thread pool, at most ``max_concurrency`` at once. ``latency_s`` adds a simulated provider latency
    in seconds (default 0), handy for demos of concurrency.
    """

    provider_name: ClassVar[str] = "local"

    latency_s: float = Field(default=0.0, ge=0, description="Simulated latency per request, seconds.")

    async def _produce(self, request: ImageRequest, call: CallState, state: _LoopState) -> ProviderOutput:
        call.attempts += 1
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        size = request.size if request.size != "auto" else _default_size(request.model)
        dims = parse_size(size)
        if dims is None:
            raise ValueError(f"cannot render size {size!r}")  # validate_for rejects this earlier
        images = [await run_in_thread(_render, request, dims, index) for index in range(request.n)]
        from ..cost import expected_usage

        return ProviderOutput(
            images=images,
            usage=expected_usage(request),
            request_id=None,
            size=size,
            quality=request.quality,
            output_format=request.output_format,
        )

    def _cost(self, request: ImageRequest, out: ProviderOutput) -> Cost:
        from ..cost import estimate_cost

        cost = estimate_cost(request, self.provider_name)
        if cost.basis is CostBasis.ESTIMATE:
            return cost
        return Cost(cost.usd, CostBasis.ESTIMATE, cost.detail or "local provider: expected usage")


def _default_size(model: str) -> str:
    """The size rendered for ``size="auto"``: 1024x1024 when the model lists it, else its first preset."""
    from ..catalog import get_catalog

    presets = [size for size in get_catalog().model("local", model).sizes if parse_size(size)]
    return _FALLBACK_SIZE if _FALLBACK_SIZE in presets or not presets else presets[0]


def _render(request: ImageRequest, dims: tuple[int, int], index: int) -> GeneratedImage:
    from ..render import render_image

    seed = json.dumps(
        [request.model, dims, request.quality, request.output_format, request.background, request.n, index],
        default=str,
    )
    data = render_image(
        request.prompt,
        dims[0],
        dims[1],
        request.output_format,
        seed=seed,
        compression=request.output_compression,
        transparent=request.background == "transparent",
    )
    return GeneratedImage.from_bytes(data)

"""LocalImageResource: offline, deterministic images of the requested size, expected usage, estimate cost."""

from __future__ import annotations

import asyncio
import io
import threading

import dagster as dg
import pytest
from PIL import Image

from dagster_imggen.cost import estimate_cost, expected_usage
from dagster_imggen.errors import ImageRequestError
from dagster_imggen.providers.local import LocalImageResource
from dagster_imggen.request import ImageRequest
from dagster_imggen.result import CostBasis


@pytest.fixture
def local():
    with LocalImageResource() as resource:
        yield resource


@pytest.mark.parametrize(
    ("size", "fmt"),
    [("1536x1024", "png"), ("1024x1536", "jpeg"), ("2048x1152", "webp"), ("1024x1024", "png")],
)
def test_exact_size_and_format(local, size, fmt):
    request = ImageRequest(prompt="a lighthouse at dusk", size=size, output_format=fmt, quality="low")
    result = local.generate(request)
    assert result.ok and result.request is request
    (image,) = result.images
    with Image.open(io.BytesIO(image.data)) as im:
        assert (im.format.lower(), f"{im.width}x{im.height}") == (fmt, size)
    assert (image.format, image.size) == (fmt, size)
    assert (result.size, result.quality, result.output_format) == (size, "low", fmt)


def test_deterministic_and_prompt_dependent(local):
    a1 = local.generate(ImageRequest(prompt="same prompt", quality="low"))
    a2 = local.generate(ImageRequest(prompt="same prompt", quality="low"))
    b = local.generate(ImageRequest(prompt="other prompt", quality="low"))
    assert a1.images[0].data == a2.images[0].data
    assert a1.images[0].data != b.images[0].data


def test_n_images_differ(local):
    result = local.generate(ImageRequest(prompt="p", n=3, quality="low"))
    assert len(result.images) == 3 and len({i.data for i in result.images}) == 3


def test_auto_size_renders_the_model_default(local):
    result = local.generate(ImageRequest(prompt="p", size="auto", quality="low"))
    assert result.images[0].size == "1024x1024" and result.size == "1024x1024"


def test_transparent_background(local):
    result = local.generate(
        ImageRequest(
            prompt="p", model="gpt-image-1.5", background="transparent", output_format="png", quality="low"
        )
    )
    with Image.open(io.BytesIO(result.images[0].data)) as im:
        assert im.mode == "RGBA"


def test_usage_and_estimate_cost(local):
    request = ImageRequest(prompt="a detailed city map", size="1536x1024", quality="high", n=2)
    result = local.generate(request)
    assert result.usage == expected_usage(request)
    assert result.usage.output_tokens > 0
    assert result.cost.basis is CostBasis.ESTIMATE
    assert result.cost == estimate_cost(request, "local")
    assert result.cost_usd > 0  # a realistic spend figure; nothing was actually paid
    assert local.estimate(request) == result.cost
    assert result.credits is None and not result.possibly_billed and result.attempts == 1


def test_default_quality_is_explicit():
    with LocalImageResource(default_quality="high") as local:
        assert local.generate(ImageRequest(prompt="p")).quality == "high"
    with LocalImageResource() as local:
        assert local.generate(ImageRequest(prompt="p")).quality == "medium"  # catalog default, never auto


def test_invalid_request_raises_and_streams_as_error(local):
    bad = ImageRequest(prompt="p", size="1000x1000")
    with pytest.raises(ImageRequestError, match="multiples of 16"):
        local.generate(bad)
    (result,) = local.generate_many([bad])
    assert isinstance(result.error, ImageRequestError) and result.request is bad and result.attempts == 0


def test_agenerate_and_latency():
    async def main() -> list[str]:
        async with LocalImageResource(latency_s=0.01, max_concurrency=4) as local:
            one = await local.agenerate(ImageRequest(prompt="x", quality="low"))
            many = [r async for r in local.agenerate_many(ImageRequest(prompt=f"p{i}") for i in range(6))]
        assert one.latency_s >= 0.01
        return [r.request.prompt for r in many]

    assert sorted(asyncio.run(main())) == [f"p{i}" for i in range(6)]


def test_as_a_dagster_resource():
    @dg.asset
    def images(image_provider: LocalImageResource) -> dg.MaterializeResult:
        results = list(
            image_provider.generate_many(ImageRequest(prompt=f"p{i}", quality="low") for i in range(3))
        )
        return dg.MaterializeResult(metadata={"ok": sum(r.ok for r in results)})

    def loop_threads() -> int:
        return sum(t.name == "imggen-local" and t.is_alive() for t in threading.enumerate())

    before = loop_threads()
    result = dg.materialize([images], resources={"image_provider": LocalImageResource(max_concurrency=2)})
    assert result.success
    assert loop_threads() == before  # teardown_after_execution stopped the resource's loop thread
    (mat,) = result.asset_materializations_for_node("images")
    assert mat.metadata["ok"].value == 3

"""GPTImage2ImageResource against the emulator: sync (gpt-image-1.5) and async tasks (gpt-image-1)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from provider_support import assert_bearer, assert_images, make, only, write_refs

from dagster_imggen.cost import cost_of_response
from dagster_imggen.errors import TaskCancelledError
from dagster_imggen.providers.gptimage2 import GPTImage2ImageResource
from dagster_imggen.request import ImageRequest
from dagster_imggen.result import CostBasis
from dagster_imggen.testing import FaultSpec, ProviderEmulator


def test_sync_generation_url_default(imggen_emulator: ProviderEmulator):
    request = ImageRequest(
        prompt="marketing banner", model="gpt-image-1.5", size="1792x1024", quality="hd", n=2
    )
    with make(GPTImage2ImageResource, imggen_emulator) as g2:
        result = g2.generate(request)
    call = only(imggen_emulator.calls("gptimage2", op="generate"))
    assert (call.method, call.path, call.url_path) == (
        "POST",
        "/v1/images/generations",
        "/gptimage2/v1/images/generations",
    )
    assert_bearer(call)
    assert call.json == {
        "model": "gpt-image-1.5",
        "prompt": "marketing banner",
        "n": 2,
        "size": "1792x1024",
        "quality": "hd",
        "output_format": "png",
    }
    assert len(imggen_emulator.calls("gptimage2", op="download")) == 2
    assert not imggen_emulator.calls("gptimage2", op="poll")
    assert_images(result, 2, "1792x1024", "png")
    assert result.cost.basis is CostBasis.PER_IMAGE_TABLE
    assert result.cost_usd == Decimal("0.026") == imggen_emulator.billed("gptimage2").usd  # 2 x $0.013
    assert result.cost == cost_of_response(request, "gptimage2", usage=None, images_returned=2)


def test_sync_b64(imggen_emulator: ProviderEmulator):
    with make(GPTImage2ImageResource, imggen_emulator, response_format="b64_json") as g2:
        result = g2.generate(ImageRequest(prompt="p", model="gpt-image-1.5", quality="standard"))
    assert only(imggen_emulator.calls("gptimage2")).json["response_format"] == "b64_json"
    assert_images(result, 1, "1024x1024", "png")


def test_async_task_url_list(imggen_emulator: ProviderEmulator):
    request = ImageRequest(prompt="async mug", model="gpt-image-1", size="1024x1792", quality="standard", n=2)
    with make(GPTImage2ImageResource, imggen_emulator) as g2:
        result = g2.generate(request)
    create = only(imggen_emulator.calls("gptimage2", op="generate"))
    assert (create.method, create.path) == ("POST", "/v1/images/generations")
    polls = imggen_emulator.calls("gptimage2", op="poll")
    assert polls and {(p.method, p.path) for p in polls} == {("GET", f"/v1/tasks/{result.request_id}")}
    assert all(p.auth_header == "authorization" for p in polls)
    assert_images(result, 2, "1024x1792", "png")  # n > 1: `url` arrives as a list
    assert result.attempts == 1
    assert result.cost_usd == Decimal("0.068") == imggen_emulator.billed("gptimage2").usd  # 2 x $0.034


def test_async_edit_with_mask(imggen_emulator: ProviderEmulator, tmp_path: Path):
    refs = write_refs(tmp_path)
    request = ImageRequest(prompt="tropical beach", model="gpt-image-1", images=(refs.first,), mask=refs.mask)
    with make(GPTImage2ImageResource, imggen_emulator) as g2:
        result = g2.generate(request)
    call = only(imggen_emulator.calls("gptimage2", op="edit"))
    assert (call.method, call.path) == ("POST", "/v1/images/edits")
    assert call.form == {
        "model": ["gpt-image-1"],
        "prompt": ["tropical beach"],
        "n": ["1"],
        "size": ["1024x1024"],
        "quality": ["standard"],  # the catalog's explicit default
        "output_format": ["png"],
    }
    assert [f.field for f in call.files] == ["image", "mask"]
    assert imggen_emulator.calls("gptimage2", op="poll")
    assert_images(result, 1, "1024x1024", "png")


def test_cancelled_task_is_not_billed(imggen_emulator: ProviderEmulator):
    imggen_emulator.inject("gptimage2", FaultSpec("task_cancel"), count=1)
    with make(GPTImage2ImageResource, imggen_emulator) as g2:
        (result,) = g2.generate_many([ImageRequest(prompt="p", model="gpt-image-1")])
    assert isinstance(result.error, TaskCancelledError)
    assert imggen_emulator.billed("gptimage2").usd == 0

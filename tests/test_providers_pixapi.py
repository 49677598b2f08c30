"""PixapiImageResource against the emulator: sync routes and async tasks, credits."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from provider_support import assert_bearer, assert_images, make, only, write_refs

from dagster_imggen.cost import cost_of_response, estimate_credits
from dagster_imggen.errors import InsufficientCreditsError, TaskFailedError, TransportError
from dagster_imggen.providers.pixapi import PixapiImageResource
from dagster_imggen.request import ImageRequest
from dagster_imggen.result import CostBasis
from dagster_imggen.testing import FaultSpec, ProviderEmulator


def test_sync_generation_url_default_and_credits(imggen_emulator: ProviderEmulator):
    request = ImageRequest(prompt="a SaaS hero image", size="1536x1024", quality="high", n=2)
    with make(PixapiImageResource, imggen_emulator) as pixapi:
        result = pixapi.generate(request)
    call = only(imggen_emulator.calls("pixapi", op="generate"))
    assert (call.method, call.path, call.url_path) == (
        "POST",
        "/v1/images/generations",
        "/pixapi/v1/images/generations",
    )
    assert_bearer(call)
    assert call.json == {
        "model": "gpt-image-2",
        "prompt": "a SaaS hero image",
        "n": 2,
        "size": "1536x1024",
        "quality": "high",
        "output_format": "png",
    }
    downloads = imggen_emulator.calls("pixapi", op="download")
    assert len(downloads) == 2 and all(d.auth_header is None for d in downloads)
    assert_images(result, 2, "1536x1024", "png")
    # 1K tier, high = 14 credits per image, times n (001_d01986769ffd2010.txt)
    assert result.credits == Decimal(28) == estimate_credits(request, "pixapi")
    assert result.cost.basis is CostBasis.CREDITS
    assert result.cost == cost_of_response(
        request, "pixapi", usage=None, credits=Decimal(28), images_returned=2
    )
    assert imggen_emulator.billed("pixapi").credits == Decimal(28)


def test_sync_b64_response(imggen_emulator: ProviderEmulator):
    with make(PixapiImageResource, imggen_emulator, response_format="b64_json") as pixapi:
        result = pixapi.generate(ImageRequest(prompt="p", quality="low", output_format="webp"))
    assert only(imggen_emulator.calls("pixapi")).json["response_format"] == "b64_json"
    assert_images(result, 1, "1024x1024", "webp")
    assert result.credits == Decimal(1)


def test_sync_edit_two_images(imggen_emulator: ProviderEmulator, tmp_path: Path):
    refs = write_refs(tmp_path)
    request = ImageRequest(prompt="studio background", images=(refs.first, refs.second), quality="medium")
    with make(PixapiImageResource, imggen_emulator) as pixapi:
        result = pixapi.generate(request)
    call = only(imggen_emulator.calls("pixapi", op="edit"))
    assert (call.method, call.path) == ("POST", "/v1/images/edits")
    assert_bearer(call)
    assert call.form == {
        "model": ["gpt-image-2"],
        "prompt": ["studio background"],
        "n": ["1"],
        "size": ["1024x1024"],
        "quality": ["medium"],
        "output_format": ["png"],
    }
    assert [f.field for f in call.files] == ["image", "image"]
    assert [f.filename for f in call.files] == ["a.png", "b.png"]
    assert_images(result, 1, "1024x1024", "png")
    assert result.credits == Decimal(4)


def test_async_generation_task(imggen_emulator: ProviderEmulator):
    request = ImageRequest(prompt="async hero", size="2048x2048", quality="medium", n=2)
    with make(PixapiImageResource, imggen_emulator, mode="async") as pixapi:
        result = pixapi.generate(request)
    create = only(imggen_emulator.calls("pixapi", op="generate"))
    assert (create.method, create.path) == ("POST", "/v1/async/images/generations")
    assert_bearer(create)
    assert create.json == {
        "model": "gpt-image-2",
        "prompt": "async hero",
        "n": 2,
        "size": "2048x2048",
        "quality": "medium",
        "output_format": "png",
    }
    polls = imggen_emulator.calls("pixapi", op="poll")
    assert polls and {(p.method, p.path) for p in polls} == {("GET", f"/v1/async/tasks/{result.request_id}")}
    assert_images(result, 2, "2048x2048", "png")
    assert result.attempts == 1
    assert result.credits == Decimal(34)  # 2K tier, medium = 17 per image, x2
    assert result.cost_usd == imggen_emulator.billed("pixapi").usd


def test_async_edit_task(imggen_emulator: ProviderEmulator, tmp_path: Path):
    refs = write_refs(tmp_path)
    with make(PixapiImageResource, imggen_emulator, mode="async") as pixapi:
        result = pixapi.generate(
            ImageRequest(prompt="blend", images=(refs.first, refs.second), quality="low", size="1024x1536")
        )
    create = only(imggen_emulator.calls("pixapi", op="edit"))
    assert (create.method, create.path) == ("POST", "/v1/async/images/edits")
    assert [f.field for f in create.files] == ["image", "image"]
    assert create.form["size"] == ["1024x1536"]
    assert_images(result, 1, "1024x1536", "png")


def test_async_task_failed(imggen_emulator: ProviderEmulator):
    imggen_emulator.inject("pixapi", FaultSpec("task_fail"), count=1)
    with make(PixapiImageResource, imggen_emulator, mode="async") as pixapi:
        (result,) = pixapi.generate_many([ImageRequest(prompt="p", quality="low")])
    assert isinstance(result.error, TaskFailedError)
    assert imggen_emulator.billed("pixapi").calls == 1  # Pixapi bills async tasks at creation
    assert result.possibly_billed


def test_async_creation_timeout_not_retried(imggen_emulator: ProviderEmulator):
    # Async creation is not idempotent on Pixapi: a repeat is charged again.
    imggen_emulator.inject("pixapi", FaultSpec("hang", delay_s=1.0), count=1)
    with make(PixapiImageResource, imggen_emulator, mode="async", timeout_s=0.3) as pixapi:
        (result,) = pixapi.generate_many([ImageRequest(prompt="p", quality="low")])
    assert isinstance(result.error, TransportError) and result.possibly_billed
    assert len(imggen_emulator.calls("pixapi", op="generate")) == 1


@pytest.mark.parametrize("status", [402])
def test_insufficient_credits_string_code(imggen_emulator: ProviderEmulator, status: int):
    imggen_emulator.inject("pixapi", FaultSpec("status", status=status), count=1)
    with (
        make(PixapiImageResource, imggen_emulator) as pixapi,
        pytest.raises(InsufficientCreditsError) as info,
    ):
        pixapi.generate(ImageRequest(prompt="p", quality="low"))
    assert info.value.status_code == 402
    assert len(imggen_emulator.calls("pixapi")) == 1


def test_502_is_final_on_pixapi(imggen_emulator: ProviderEmulator):
    # Pixapi documents retrying only 429, 500 and 503 (../shared/providers/README.md).
    imggen_emulator.inject("pixapi", FaultSpec("status", status=502), count=3)
    with make(PixapiImageResource, imggen_emulator, mode="async") as pixapi:
        (result,) = pixapi.generate_many([ImageRequest(prompt="p", quality="low")])
    assert result.error is not None and result.error.status_code == 502 and not result.error.retryable
    assert result.attempts == 1 and len(imggen_emulator.calls("pixapi")) == 1

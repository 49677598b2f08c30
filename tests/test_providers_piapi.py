"""PiAPIImageResource against the emulator: sync /v1 routes and the async task routes."""

from __future__ import annotations

from pathlib import Path

import pytest
from provider_support import KEY_SHA, assert_bearer, assert_images, make, only, write_refs

from dagster_imggen.cost import cost_of_response
from dagster_imggen.errors import TaskCancelledError, TaskFailedError, TaskTimeoutError, TerminalProviderError
from dagster_imggen.providers.piapi import PiAPIImageResource
from dagster_imggen.request import ImageRequest
from dagster_imggen.result import CostBasis
from dagster_imggen.testing import FaultSpec, ProviderEmulator


def test_sync_generation_b64_default(imggen_emulator: ProviderEmulator):
    request = ImageRequest(prompt="a sea otter", size="1024x1536", quality="low", n=2, output_format="jpeg")
    with make(PiAPIImageResource, imggen_emulator) as piapi:
        result = piapi.generate(request)
    call = only(imggen_emulator.calls("piapi"))
    assert (call.method, call.path, call.url_path) == (
        "POST",
        "/v1/images/generations",
        "/piapi/v1/images/generations",
    )
    assert_bearer(call)
    assert call.json == {
        "model": "gpt-image-2",
        "prompt": "a sea otter",
        "n": 2,
        "size": "1024x1536",
        "quality": "low",  # always explicit: omitting it bills auto (~2x), 000_305fa6c5cb57ea7f.txt
        "output_format": "jpeg",
    }
    assert_images(result, 2, "1024x1536", "jpeg")
    assert result.usage == imggen_emulator.billed("piapi").usage
    assert result.cost == cost_of_response(request, "piapi", usage=result.usage, images_returned=2)
    assert result.cost.basis is CostBasis.USAGE_TOKENS
    assert result.cost_usd == imggen_emulator.billed("piapi").usd > 0
    assert not imggen_emulator.calls("piapi", op="download")


def test_sync_url_response_is_downloaded(imggen_emulator: ProviderEmulator):
    with make(PiAPIImageResource, imggen_emulator, response_format="url") as piapi:
        result = piapi.generate(ImageRequest(prompt="otter", quality="medium"))
    gen = only(imggen_emulator.calls("piapi", op="generate"))
    assert gen.json["response_format"] == "url"
    download = only(imggen_emulator.calls("piapi", op="download"))
    assert download.method == "GET" and download.auth_header is None  # the key never goes to the CDN
    assert_images(result, 1, "1024x1024", "png")


def test_sync_edit(imggen_emulator: ProviderEmulator, tmp_path: Path):
    refs = write_refs(tmp_path)
    request = ImageRequest(prompt="sunset behind", images=(refs.first,), quality="standard")
    with make(PiAPIImageResource, imggen_emulator) as piapi:
        result = piapi.generate(request)
    call = only(imggen_emulator.calls("piapi", op="edit"))
    assert (call.method, call.path) == ("POST", "/v1/images/edits")
    assert_bearer(call)
    assert call.form == {
        "model": ["gpt-image-2"],
        "prompt": ["sunset behind"],
        "n": ["1"],
        "size": ["1024x1024"],
        "quality": ["standard"],
        "output_format": ["png"],
    }
    assert [f.field for f in call.files] == ["image"]  # PiAPI's file field is `image`
    assert [(f.filename, f.width, f.height) for f in call.files] == [("a.png", 1024, 1024)]
    assert_images(result, 1, "1024x1024", "png")
    assert result.usage is not None and result.usage.input_image_tokens > 0
    assert result.cost_usd == imggen_emulator.billed("piapi").usd


def test_two_reference_images_are_refused_before_sending(imggen_emulator: ProviderEmulator, tmp_path: Path):
    # PiAPI documents a single `image` file field (000_305fa6c5cb57ea7f.txt): the catalog allows one.
    refs = write_refs(tmp_path)
    with make(PiAPIImageResource, imggen_emulator) as piapi:
        (result,) = piapi.generate_many([ImageRequest(prompt="x", images=(refs.first, refs.second))])
    assert result.error is not None and "images" in str(result.error)
    assert imggen_emulator.requests == []


def test_mask_is_refused_before_sending(imggen_emulator: ProviderEmulator, tmp_path: Path):
    refs = write_refs(tmp_path)
    with make(PiAPIImageResource, imggen_emulator) as piapi:
        (result,) = piapi.generate_many([ImageRequest(prompt="x", images=(refs.first,), mask=refs.mask)])
    assert result.error is not None and "mask" in str(result.error)
    assert imggen_emulator.requests == []


def test_async_task_x_api_key_and_polling(imggen_emulator: ProviderEmulator):
    request = ImageRequest(prompt="an otter, async", size="1536x1024", quality="high", n=2)
    with make(PiAPIImageResource, imggen_emulator, mode="async") as piapi:
        result = piapi.generate(request)
    create = only(imggen_emulator.calls("piapi", op="generate"))
    assert (create.method, create.path) == ("POST", "/api/v1/images/generations/async")
    assert create.auth_header == "x-api-key" and create.headers["x-api-key"] == "***"
    assert create.key_sha256 == KEY_SHA and "authorization" not in create.headers
    assert create.json == {
        "model": "gpt-image-2",
        "prompt": "an otter, async",
        "n": 2,
        "size": "1536x1024",
        "quality": "high",
        "output_format": "png",
    }
    polls = imggen_emulator.calls("piapi", op="poll")
    assert polls and all(p.method == "GET" and p.path == f"/api/v1/task/{result.request_id}" for p in polls)
    assert all(p.auth_header == "x-api-key" for p in polls)
    assert result.attempts == 1  # polls are not submissions
    assert_images(result, 2, "1536x1024", "png")
    billed = imggen_emulator.billed("piapi")
    assert result.usage == billed.usage
    assert result.cost == cost_of_response(request, "piapi", usage=result.usage, images_returned=2)
    assert result.cost_usd == billed.usd


@pytest.mark.parametrize(
    ("kind", "error"), [("task_fail", TaskFailedError), ("task_cancel", TaskCancelledError)]
)
def test_async_task_failure(imggen_emulator: ProviderEmulator, kind, error):
    imggen_emulator.inject("piapi", FaultSpec(kind), count=1)
    with make(PiAPIImageResource, imggen_emulator, mode="async") as piapi:
        (result,) = piapi.generate_many([ImageRequest(prompt="p", quality="low")])
    assert type(result.error) is error
    assert result.request_id and result.request_id in str(result.error)
    assert not result.possibly_billed  # PiAPI bills tasks that complete


def test_async_task_deadline(imggen_emulator: ProviderEmulator):
    imggen_emulator.inject("piapi", FaultSpec("task_stuck"), count=1)
    with make(PiAPIImageResource, imggen_emulator, mode="async", task_deadline_s=0.3) as piapi:
        (result,) = piapi.generate_many([ImageRequest(prompt="p", quality="low")])
    assert isinstance(result.error, TaskTimeoutError) and result.possibly_billed
    assert len(imggen_emulator.calls("piapi", op="generate")) == 1


def test_async_body_error_code_terminal(imggen_emulator: ProviderEmulator):
    imggen_emulator.inject("piapi", FaultSpec("error_body", status=400, message="bad prompt"), count=1)
    with make(PiAPIImageResource, imggen_emulator, mode="async") as piapi:
        (result,) = piapi.generate_many([ImageRequest(prompt="p", quality="low")])
    assert isinstance(result.error, TerminalProviderError) and "bad prompt" in str(result.error)
    assert len(imggen_emulator.calls("piapi")) == 1


def test_async_body_error_code_retryable(imggen_emulator: ProviderEmulator):
    imggen_emulator.inject("piapi", FaultSpec("error_body", status=500), count=1)
    with make(PiAPIImageResource, imggen_emulator, mode="async") as piapi:
        result = piapi.generate(ImageRequest(prompt="p", quality="low"))
    assert result.ok and result.attempts == 2
    assert len(imggen_emulator.calls("piapi", op="generate")) == 2

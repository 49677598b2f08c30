"""OpenAIImageResource against the emulator's OpenAI routes."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from provider_support import KEY, assert_bearer, assert_images, make, only, write_refs

from dagster_imggen._log import LOGGER_NAME
from dagster_imggen.cost import cost_of_response
from dagster_imggen.errors import (
    AuthenticationError,
    ContentRejectedError,
    ImageDecodeError,
    MalformedResponseError,
    RateLimitError,
    TerminalProviderError,
    TransportError,
)
from dagster_imggen.providers.openai import OpenAIImageResource
from dagster_imggen.request import ImageRequest
from dagster_imggen.result import CostBasis
from dagster_imggen.testing import FaultSpec, ProviderEmulator


@pytest.fixture
def openai(imggen_emulator: ProviderEmulator):
    with make(OpenAIImageResource, imggen_emulator) as resource:
        yield resource


def test_generation_n2_exact_wire_images_usage_cost(openai, imggen_emulator):
    request = ImageRequest(
        prompt="a red fox in snow", size="1536x1024", quality="low", n=2, output_format="jpeg"
    )
    result = openai.generate(request)

    call = only(imggen_emulator.calls("openai"))
    assert (call.method, call.path, call.url_path) == (
        "POST",
        "/v1/images/generations",
        "/openai/v1/images/generations",
    )
    assert call.headers["content-type"] == "application/json"
    assert_bearer(call)
    assert call.json == {
        "model": "gpt-image-2",
        "prompt": "a red fox in snow",
        "n": 2,
        "size": "1536x1024",
        "quality": "low",
        "output_format": "jpeg",
    }
    assert "response_format" not in call.json  # OpenAI rejects it for GPT Image models

    assert result.request is request
    assert_images(result, 2, "1536x1024", "jpeg")
    assert (result.provider, result.model, result.attempts) == ("openai", "gpt-image-2", 1)
    assert (result.size, result.quality, result.output_format) == ("1536x1024", "low", "jpeg")
    assert result.request_id == call.request_id
    billed = imggen_emulator.billed("openai")
    assert result.usage == billed.usage and result.usage.output_tokens > 0
    assert result.cost.basis is CostBasis.USAGE_TOKENS
    assert result.cost == cost_of_response(request, "openai", usage=result.usage, images_returned=2)
    assert result.cost_usd == billed.usd > 0
    assert not result.possibly_billed


def test_default_quality_is_explicit(imggen_emulator):
    with make(OpenAIImageResource, imggen_emulator, default_quality="high") as resource:
        result = resource.generate(ImageRequest(prompt="p"))
    assert only(imggen_emulator.calls("openai")).json["quality"] == "high"
    assert result.quality == "high"
    with make(OpenAIImageResource, imggen_emulator) as resource:
        resource.generate(ImageRequest(prompt="p"))
    assert imggen_emulator.calls("openai")[-1].json["quality"] == "medium"  # catalog default, not auto


def test_edit_two_images_and_mask(openai, imggen_emulator, tmp_path: Path):
    refs = write_refs(tmp_path)
    request = ImageRequest(
        prompt="put them together", images=(refs.first, refs.second), mask=refs.mask, quality="medium"
    )
    result = openai.generate(request)

    call = only(imggen_emulator.calls("openai", op="edit"))
    assert (call.method, call.path) == ("POST", "/v1/images/edits")
    assert call.headers["content-type"].startswith("multipart/form-data")
    assert_bearer(call)
    assert call.form == {
        "model": ["gpt-image-2"],
        "prompt": ["put them together"],
        "n": ["1"],
        "size": ["1024x1024"],
        "quality": ["medium"],
        "output_format": ["png"],
    }
    assert [f.field for f in call.files] == ["image[]", "image[]", "mask"]
    assert [f.filename for f in call.files] == ["a.png", "b.png", "m.png"]
    assert [(f.format, f.width, f.height) for f in call.files] == [("png", 1024, 1024)] * 3
    assert call.files[0].sha256 != call.files[1].sha256
    assert call.files[2].has_alpha
    assert_images(result, 1, "1024x1024", "png")
    assert result.usage is not None and result.usage.input_image_tokens > 0
    assert result.cost == cost_of_response(request, "openai", usage=result.usage, images_returned=1)
    assert result.cost_usd == imggen_emulator.billed("openai").usd


def test_single_image_edit_uses_image_field(openai, imggen_emulator, tmp_path: Path):
    refs = write_refs(tmp_path)
    openai.generate(ImageRequest(prompt="warmer", images=(refs.first,), quality="low"))
    assert [f.field for f in only(imggen_emulator.calls("openai", op="edit")).files] == ["image"]


def test_retries_503_then_succeeds_and_logs_reason(openai, imggen_emulator, caplog):
    imggen_emulator.inject("openai", FaultSpec("status", status=503), count=2)
    with caplog.at_level(logging.WARNING, logger=LOGGER_NAME):
        result = openai.generate(ImageRequest(prompt="p", quality="low"))
    assert result.ok and result.attempts == 3
    assert len(imggen_emulator.calls("openai", op="generate")) == 3
    retries = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert len(retries) == 2 and all("503" in m for m in retries)


def test_429_honours_retry_after_ms(openai, imggen_emulator):
    imggen_emulator.configure("openai", retry_after_ms=True)
    imggen_emulator.inject("openai", FaultSpec("status", status=429, retry_after_s=0.05), count=1)
    result = openai.generate(ImageRequest(prompt="p", quality="low"))
    first, second = imggen_emulator.calls("openai", op="generate")
    assert first.status == 429 and second.status == 200
    assert second.timestamp - first.timestamp >= 0.045
    assert result.attempts == 2


def test_429_exhausts_retries(imggen_emulator):
    imggen_emulator.inject("openai", FaultSpec("status", status=429, retry_after_s=0.0), count=None)
    with make(OpenAIImageResource, imggen_emulator, max_retries=2) as resource, pytest.raises(RateLimitError):
        resource.generate(ImageRequest(prompt="p", quality="low"))
    assert len(imggen_emulator.calls("openai")) == 3


def test_moderation_blocked_is_never_retried(openai, imggen_emulator):
    imggen_emulator.inject("openai", FaultSpec("status", status=400, code="moderation_blocked"), count=3)
    with pytest.raises(ContentRejectedError) as info:
        openai.generate(ImageRequest(prompt="p", quality="low"))
    assert info.value.code == "moderation_blocked" and info.value.status_code == 400
    assert len(imggen_emulator.calls("openai")) == 1


@pytest.mark.parametrize(("status", "error"), [(400, TerminalProviderError), (422, ContentRejectedError)])
def test_terminal_statuses_not_retried(openai, imggen_emulator, status, error):
    imggen_emulator.inject("openai", FaultSpec("status", status=status), count=3)
    with pytest.raises(error):
        openai.generate(ImageRequest(prompt="p", quality="low"))
    assert len(imggen_emulator.calls("openai")) == 1


def test_wrong_key_is_authentication_error_without_the_key(imggen_emulator):
    imggen_emulator.configure("openai", api_key="sk-the-right-key-000000")
    with make(OpenAIImageResource, imggen_emulator) as resource, pytest.raises(AuthenticationError) as info:
        resource.generate(ImageRequest(prompt="p", quality="low"))
    assert KEY not in str(info.value) and KEY[-8:] not in str(info.value)
    assert len(imggen_emulator.calls("openai")) == 1


def test_read_timeout_is_possibly_billed_and_not_retried(imggen_emulator):
    imggen_emulator.inject("openai", FaultSpec("hang", delay_s=1.0), count=1)
    with make(OpenAIImageResource, imggen_emulator, timeout_s=0.3) as resource:
        with pytest.raises(TransportError) as info:
            resource.generate(ImageRequest(prompt="p", quality="low"))
        assert info.value.possibly_billed and not info.value.retryable
        (failed,) = list(resource.generate_many([ImageRequest(prompt="q", quality="low")]))
    assert failed.ok  # the fault was used up; the next request is fine
    assert len(imggen_emulator.calls("openai", op="generate")) == 2
    assert imggen_emulator.billed("openai").calls == 2  # the provider did bill the lost answer


def test_dropped_connection_is_possibly_billed(openai, imggen_emulator):
    imggen_emulator.inject("openai", FaultSpec("drop"), count=1)
    (result,) = list(openai.generate_many([ImageRequest(prompt="p", quality="low")]))
    assert isinstance(result.error, TransportError)
    assert result.possibly_billed and result.attempts == 1
    assert len(imggen_emulator.calls("openai")) == 1


def test_reset_before_answer_is_reported(openai, imggen_emulator):
    imggen_emulator.inject("openai", FaultSpec("reset"), count=1)
    (result,) = list(openai.generate_many([ImageRequest(prompt="p", quality="low")]))
    assert isinstance(result.error, TransportError)


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("truncated_b64", ImageDecodeError),
        ("corrupt_image", ImageDecodeError),
        ("wrong_size", ImageDecodeError),
        ("malformed_json", MalformedResponseError),
    ],
)
def test_bad_answers_become_typed_errors(openai, imggen_emulator, kind, error):
    imggen_emulator.inject("openai", FaultSpec(kind), count=1)
    (result,) = list(openai.generate_many([ImageRequest(prompt="p", quality="low")]))
    assert isinstance(result.error, error), result.error
    assert result.images == []
    assert result.possibly_billed  # the provider answered 200: paid for, though unusable
    assert imggen_emulator.billed("openai").calls == 1


def test_oversized_answer_is_capped_not_read_whole(imggen_emulator):
    imggen_emulator.inject("openai", FaultSpec("oversized", on="submit", size_bytes=8 * 1024 * 1024))
    with make(OpenAIImageResource, imggen_emulator, max_response_bytes=1024 * 1024) as openai:
        (result,) = openai.generate_many([ImageRequest(prompt="endless", quality="low")])
    assert isinstance(result.error, MalformedResponseError) and "1048576-byte cap" in str(result.error)
    assert result.possibly_billed and result.attempts == 1


def test_generate_many_mixes_failures_and_successes(openai, imggen_emulator):
    imggen_emulator.inject("openai", FaultSpec("status", status=400, code="moderation_blocked", match="bad"))
    requests = [ImageRequest(prompt=f"prompt {i}", quality="low") for i in range(5)]
    requests.insert(2, ImageRequest(prompt="a bad one", quality="low"))
    requests.insert(4, ImageRequest(prompt="too big", size="1000x1000", quality="low"))  # invalid: not x16
    results = list(openai.generate_many(iter(requests)))
    assert sorted(map(id, (r.request for r in results))) == sorted(map(id, requests))
    by_prompt = {r.request.prompt: r for r in results}
    assert isinstance(by_prompt["a bad one"].error, ContentRejectedError)
    invalid = by_prompt["too big"]
    assert invalid.error is not None and "multiples of 16" in str(invalid.error) and invalid.attempts == 0
    assert sum(r.ok for r in results) == 5
    assert len(imggen_emulator.calls("openai")) == 6  # the invalid request was never sent


def test_error_body_with_http_200_is_not_billed(openai, imggen_emulator):
    imggen_emulator.inject("openai", FaultSpec("error_body", status=503, message="overloaded"), count=1)
    (result,) = openai.generate_many([ImageRequest(prompt="p", quality="low")])
    assert isinstance(result.error, MalformedResponseError) and "overloaded" in str(result.error)
    assert not result.possibly_billed and result.attempts == 1
    assert imggen_emulator.billed("openai").calls == 0

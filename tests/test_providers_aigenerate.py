"""AIGenerateImageResource against the emulator: Kie-style createTask + recordInfo jobs."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from pathlib import Path

import pytest
from provider_support import assert_bearer, assert_images, make, only, write_refs

from dagster_imggen.cost import cost_of_response
from dagster_imggen.errors import ContentRejectedError, TaskFailedError, TransportError
from dagster_imggen.providers.aigenerate import AIGenerateImageResource
from dagster_imggen.providers.base import RateLimit
from dagster_imggen.request import ImageRequest
from dagster_imggen.result import CostBasis
from dagster_imggen.testing import FaultSpec, ProviderEmulator


def test_defaults_follow_the_docs():
    resource = AIGenerateImageResource(api_key="k" * 12)
    assert resource.base_url == "https://aimarcusimage.eu/api/v1"
    assert resource.rate_limit == RateLimit(requests=20, period_s=10.0)
    assert not AIGenerateImageResource.idempotent  # a lost createTask has no taskId to reuse


def test_text_to_image_job(imggen_emulator: ProviderEmulator):
    request = ImageRequest(
        prompt="a red fox in snow", model="gpt-image-1.5", size="1536x1024", quality="high"
    )
    with make(AIGenerateImageResource, imggen_emulator) as aig:
        result = aig.generate(request)
    create = only(imggen_emulator.calls("aigenerate", op="generate"))
    assert (create.method, create.path, create.url_path) == (
        "POST",
        "/api/v1/jobs/createTask",
        "/aigenerate/api/v1/jobs/createTask",
    )
    assert_bearer(create)
    assert create.json == {
        "model": "openai-gpt-image-1-5-text-to-image-high",
        "input": {"prompt": "a red fox in snow", "aspect_ratio": "3:2"},
    }
    polls = imggen_emulator.calls("aigenerate", op="poll")
    assert polls and all(
        (p.method, p.path, p.query) == ("GET", "/api/v1/jobs/recordInfo", {"taskId": result.request_id})
        for p in polls
    )
    assert_images(result, 1, "1536x1024", "png")
    assert result.credits == Decimal(22)  # X-AI-Credits-Charged
    assert result.cost.basis is CostBasis.CREDITS
    assert result.cost_usd == Decimal("0.154")  # 22 credits x $0.007 (002_7794215a2f478efb.txt)
    assert result.cost == cost_of_response(
        request, "aigenerate", usage=None, credits=Decimal(22), images_returned=1
    )
    assert imggen_emulator.billed("aigenerate").usd == result.cost_usd


def test_image_to_image_job_with_two_references(imggen_emulator: ProviderEmulator, tmp_path: Path):
    refs = write_refs(tmp_path)
    request = ImageRequest(
        prompt="merge",
        model="gpt-image-1.5",
        images=(refs.first, refs.second),
        quality="medium",
        output_format="jpeg",
    )
    with make(AIGenerateImageResource, imggen_emulator) as aig:
        result = aig.generate(request)
    create = only(imggen_emulator.calls("aigenerate", op="generate"))
    assert create.json["model"] == "openai-gpt-image-1-5-image-to-image-medium"
    inputs = create.json["input"]
    assert set(inputs) == {"prompt", "aspect_ratio", "output_format", "input_urls"}
    assert (inputs["prompt"], inputs["aspect_ratio"], inputs["output_format"]) == ("merge", "1:1", "jpeg")
    sent = [base64.b64decode(url.split(",", 1)[1]) for url in inputs["input_urls"]]
    assert all(url.startswith("data:image/png;base64,") for url in inputs["input_urls"])
    assert sent == [Path(refs.first).read_bytes(), Path(refs.second).read_bytes()]
    assert_images(result, 1, "1024x1024", "jpeg")
    assert result.credits == Decimal(4)


def test_http_references_pass_through_as_urls(imggen_emulator: ProviderEmulator, tmp_path: Path):
    url = imggen_emulator.url + "/some/ref.png"
    with make(AIGenerateImageResource, imggen_emulator) as aig:
        aig.generate(ImageRequest(prompt="x", model="gpt-image-1.5", images=(url,), quality="medium"))
    create = only(imggen_emulator.calls("aigenerate", op="generate"))
    assert create.json["input"]["input_urls"] == [url]


def test_body_code_422_with_http_200_is_terminal(imggen_emulator: ProviderEmulator):
    # The emulator answers validation errors with HTTP 200 and body code 422, as Kie does.
    imggen_emulator.inject(
        "aigenerate", FaultSpec("error_body", status=422, message="prompt rejected"), count=2
    )
    with make(AIGenerateImageResource, imggen_emulator) as aig, pytest.raises(ContentRejectedError) as info:
        aig.generate(ImageRequest(prompt="x", model="gpt-image-1.5", quality="medium"))
    assert info.value.code == 422 and "prompt rejected" in str(info.value)
    assert len(imggen_emulator.calls("aigenerate")) == 1


def test_455_is_retried(imggen_emulator: ProviderEmulator):
    imggen_emulator.inject("aigenerate", FaultSpec("status", status=455), count=1)
    with make(AIGenerateImageResource, imggen_emulator) as aig:
        result = aig.generate(ImageRequest(prompt="x", model="gpt-image-1.5", quality="medium"))
    assert result.ok and result.attempts == 2


def test_read_timeout_is_not_resent_and_possibly_billed(imggen_emulator: ProviderEmulator):
    imggen_emulator.inject("aigenerate", FaultSpec("hang", delay_s=1.0), count=1)
    with make(AIGenerateImageResource, imggen_emulator, timeout_s=0.3) as aig:
        (result,) = aig.generate_many([ImageRequest(prompt="x", model="gpt-image-1.5", quality="medium")])
    assert isinstance(result.error, TransportError) and result.possibly_billed
    assert result.attempts == 1
    assert len(imggen_emulator.calls("aigenerate", op="generate")) == 1


def test_failed_job(imggen_emulator: ProviderEmulator):
    imggen_emulator.inject("aigenerate", FaultSpec("task_fail"), count=1)
    with make(AIGenerateImageResource, imggen_emulator) as aig:
        (result,) = aig.generate_many([ImageRequest(prompt="x", model="gpt-image-1.5", quality="medium")])
    assert isinstance(result.error, TaskFailedError) and "Generation failed" in str(result.error)
    assert result.error.code in (501, "501")


def test_client_pacing_avoids_429(imggen_emulator: ProviderEmulator):
    imggen_emulator.configure("aigenerate", rate_limit=(4, 0.8))
    requests = [ImageRequest(prompt=f"p{i}", model="gpt-image-1.5", quality="medium") for i in range(8)]
    with make(AIGenerateImageResource, imggen_emulator, rate_limit={"requests": 4, "period_s": 0.8}) as aig:
        results = list(aig.generate_many(requests))
    assert all(r.ok for r in results)
    creates = imggen_emulator.calls("aigenerate", op="generate")
    assert len(creates) == 8 and all(c.status == 200 for c in creates)
    assert json.dumps(sorted(r.attempts for r in results)) == json.dumps([1] * 8)

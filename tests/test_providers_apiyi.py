"""APIYIImageResource against the emulator (all synchronous)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from provider_support import assert_bearer, assert_images, make, only, write_refs

from dagster_imggen.cost import cost_of_response
from dagster_imggen.errors import TransportError
from dagster_imggen.providers.apiyi import APIYIImageResource
from dagster_imggen.request import ImageRequest
from dagster_imggen.result import CostBasis
from dagster_imggen.testing import FaultSpec, ProviderEmulator


def test_gpt_image_2_all_url_default_one_image_billed_n(imggen_emulator: ProviderEmulator):
    request = ImageRequest(
        prompt="product photo", model="gpt-image-2-all", size="1536x1024", quality="high", n=3
    )
    with make(APIYIImageResource, imggen_emulator) as apiyi:
        result = apiyi.generate(request)
    call = only(imggen_emulator.calls("apiyi", op="generate"))
    assert (call.method, call.path, call.url_path) == (
        "POST",
        "/v1/images/generations",
        "/apiyi/v1/images/generations",
    )
    assert_bearer(call)
    assert call.json == {
        "model": "gpt-image-2-all",
        "prompt": "product photo",
        "n": 3,
        "size": "1536x1024",
        "quality": "high",
        "output_format": "png",
    }
    assert len(imggen_emulator.calls("apiyi", op="download")) == 1
    # size/quality/n are ignored: one 1024x1024 image comes back (no size check), n are billed
    assert_images(result, 1, "1024x1024", "png")
    assert result.usage is None
    assert result.cost.basis is CostBasis.FLAT
    assert result.cost_usd == Decimal("0.09") == imggen_emulator.billed("apiyi").usd  # 3 x $0.03
    assert result.cost == cost_of_response(request, "apiyi", usage=None, images_returned=1)


def test_gpt_image_2_all_b64_with_data_prefix(imggen_emulator: ProviderEmulator):
    with make(APIYIImageResource, imggen_emulator, response_format="b64_json") as apiyi:
        result = apiyi.generate(ImageRequest(prompt="p", model="gpt-image-2-all", quality="low"))
    assert only(imggen_emulator.calls("apiyi")).json["response_format"] == "b64_json"
    assert_images(result, 1, "1024x1024", "png")


def test_gpt_image_2_official_b64_usage(imggen_emulator: ProviderEmulator):
    request = ImageRequest(prompt="p", model="gpt-image-2", quality="medium", n=2, output_format="jpeg")
    with make(APIYIImageResource, imggen_emulator) as apiyi:
        result = apiyi.generate(request)
    assert "response_format" not in only(imggen_emulator.calls("apiyi")).json
    assert_images(result, 2, "1024x1024", "jpeg")
    assert result.usage == imggen_emulator.billed("apiyi").usage and result.usage.output_tokens > 0
    assert result.cost == cost_of_response(request, "apiyi", usage=result.usage, images_returned=2)
    assert result.cost_usd == imggen_emulator.billed("apiyi").usd


def test_edit_two_images_and_mask(imggen_emulator: ProviderEmulator, tmp_path: Path):
    refs = write_refs(tmp_path)
    request = ImageRequest(
        prompt="glass skyscraper",
        model="gpt-image-1",
        images=(refs.first, refs.second),
        mask=refs.mask,
        quality="low",
    )
    with make(APIYIImageResource, imggen_emulator) as apiyi:
        result = apiyi.generate(request)
    call = only(imggen_emulator.calls("apiyi", op="edit"))
    assert (call.method, call.path) == ("POST", "/v1/images/edits")
    assert_bearer(call)
    assert call.form == {
        "model": ["gpt-image-1"],
        "prompt": ["glass skyscraper"],
        "n": ["1"],
        "size": ["1024x1024"],
        "quality": ["low"],
        "output_format": ["png"],
    }
    assert [f.field for f in call.files] == ["image[]", "image[]", "mask"]
    assert call.files[2].has_alpha
    assert_images(result, 1, "1024x1024", "png")
    assert result.cost_usd == imggen_emulator.billed("apiyi").usd > 0


def test_single_image_edit_still_uses_image_brackets(imggen_emulator: ProviderEmulator, tmp_path: Path):
    refs = write_refs(tmp_path)
    with make(APIYIImageResource, imggen_emulator) as apiyi:
        apiyi.generate(ImageRequest(prompt="p", model="gpt-image-2-all", images=(refs.first,)))
    assert [f.field for f in only(imggen_emulator.calls("apiyi", op="edit")).files] == ["image[]"]


def test_disconnected_call_is_billed_and_not_retried(imggen_emulator: ProviderEmulator):
    imggen_emulator.inject("apiyi", FaultSpec("drop"), count=1)
    with make(APIYIImageResource, imggen_emulator) as apiyi:
        (result,) = apiyi.generate_many([ImageRequest(prompt="p", model="gpt-image-2-all")])
    assert isinstance(result.error, TransportError) and result.possibly_billed
    assert len(imggen_emulator.calls("apiyi")) == 1
    assert imggen_emulator.billed("apiyi").calls == 1  # APIYI: a disconnected call is still billed


def test_expired_url_is_a_download_error(imggen_emulator: ProviderEmulator):
    imggen_emulator.inject("apiyi", FaultSpec("expired_url", status=410), count=1)
    with make(APIYIImageResource, imggen_emulator) as apiyi:
        (result,) = apiyi.generate_many([ImageRequest(prompt="p", model="gpt-image-2-all")])
    assert type(result.error).__name__ == "DownloadError" and "410" in str(result.error)
    assert len(imggen_emulator.calls("apiyi", op="download")) == 1  # 410 is not retried


def test_oversized_download_is_capped(imggen_emulator: ProviderEmulator):
    imggen_emulator.inject("apiyi", FaultSpec("oversized", size_bytes=3 * 1024 * 1024), count=1)
    with make(APIYIImageResource, imggen_emulator, max_download_bytes=1024 * 1024) as apiyi:
        (result,) = apiyi.generate_many([ImageRequest(prompt="p", model="gpt-image-2-all")])
    assert type(result.error).__name__ == "DownloadError" and "cap" in str(result.error)

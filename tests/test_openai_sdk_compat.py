"""Faithfulness check: the official ``openai`` SDK parses the emulator's OpenAI-compatible answers."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from dagster_imggen import cost
from dagster_imggen.render import render_image
from dagster_imggen.testing import ProviderEmulator

openai = pytest.importorskip("openai")

KEY = "sk-sdk-compat-0123456789"


@pytest.fixture(scope="module")
def emu():
    with ProviderEmulator(api_key=KEY) as e:  # only KEY is accepted
        yield e


def sdk(emu: ProviderEmulator, provider: str, suffix: str = ""):
    return openai.OpenAI(api_key=KEY, base_url=emu.base_url(provider) + suffix, max_retries=0, timeout=30)


def image_of(b64: str) -> Image.Image:
    im = Image.open(io.BytesIO(base64.b64decode(b64)))
    im.load()
    return im


def refs() -> tuple[list[tuple[str, bytes, str]], tuple[str, bytes, str]]:
    image = render_image("reference", 512, 512, "png")
    mask = render_image("mask", 512, 512, "png", transparent=True)
    return [("a.png", image, "image/png"), ("b.png", image, "image/png")], ("mask.png", mask, "image/png")


def test_openai_generate(emu: ProviderEmulator) -> None:
    resp = sdk(emu, "openai").images.generate(
        model="gpt-image-2", prompt="a sea otter", size="1024x1536", quality="low", n=2, output_format="png"
    )
    assert isinstance(resp, openai.types.ImagesResponse)
    assert resp.size == "1024x1536" and resp.quality == "low" and resp.output_format == "png"
    assert resp.background == "opaque"
    assert resp.data is not None and len(resp.data) == 2
    im = image_of(resp.data[0].b64_json or "")
    assert (im.format, im.size) == ("PNG", (1024, 1536))
    assert resp.usage is not None
    assert resp.usage.output_tokens == 2 * cost.expected_output_tokens("gpt-image-2", "1024x1536", "low")
    assert resp.usage.total_tokens == resp.usage.input_tokens + resp.usage.output_tokens
    assert resp.usage.input_tokens_details.text_tokens > 0
    rec = emu.calls("openai", op="generate")[-1]
    assert (
        rec.headers["authorization"] == "Bearer ***"
        and rec.json["n"] == 2
        and "response_format" not in rec.json
    )


def test_openai_edit_two_images_and_mask(emu: ProviderEmulator) -> None:
    images, mask = refs()
    resp = sdk(emu, "openai").images.edit(
        model="gpt-image-1.5", image=images, mask=mask, prompt="add a hat", size="1536x1024", quality="medium"
    )
    assert resp.data is not None and image_of(resp.data[0].b64_json or "").size == (1536, 1024)
    assert resp.quality == "medium" and resp.size == "1536x1024"
    assert resp.usage is not None and resp.usage.input_tokens_details.image_tokens > 0
    rec = emu.calls("openai", op="edit")[-1]
    assert [f.field for f in rec.files] == ["image[]", "image[]", "mask"]


def test_openai_sdk_sees_typed_errors(emu: ProviderEmulator) -> None:
    client = sdk(emu, "openai")
    with pytest.raises(openai.BadRequestError) as info:
        client.images.generate(model="gpt-image-2", prompt="x", response_format="b64_json")
    assert info.value.code == "unknown_parameter" and info.value.param == "response_format"
    bad_key = openai.OpenAI(api_key="sk-wrong-key-00000", base_url=emu.base_url("openai"), max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad_key.images.generate(model="gpt-image-2", prompt="x")


def test_piapi_v1_generate_and_edit(emu: ProviderEmulator) -> None:
    client = sdk(emu, "piapi", "/v1")
    gen = client.images.generate(model="gpt-image-2", prompt="otter", size="1024x1024", quality="low")
    assert gen.data is not None and image_of(gen.data[0].b64_json or "").size == (1024, 1024)
    assert gen.usage is not None and gen.usage.output_tokens > 0
    images, mask = refs()
    edit = client.images.edit(
        model="gpt-image-2", image=images, mask=mask, prompt="sunset", response_format="url"
    )
    assert (
        edit.data is not None and edit.data[0].url and edit.data[0].url.startswith(emu.url + "/piapi/files/")
    )


def test_apiyi_generate_and_edit(emu: ProviderEmulator) -> None:
    client = sdk(emu, "apiyi")
    gen = client.images.generate(
        model="gpt-image-1.5", prompt="product photo", size="1024x1024", quality="high"
    )
    assert gen.data is not None and gen.data[0].url  # the doc's example reads data[0].url
    assert gen.usage is not None and gen.usage.output_tokens > 0
    b64 = client.images.generate(model="gpt-image-2", prompt="x", quality="low")
    assert b64.data is not None and image_of(b64.data[0].b64_json or "").size == (1024, 1024)
    assert b64.size == "1024x1024"
    images, mask = refs()
    edit = client.images.edit(
        model="gpt-image-1", image=images, mask=mask, prompt="skyscraper", size="1024x1024"
    )
    assert edit.data is not None and edit.data[0].url


def test_gptimage2_sync_generate_and_edit(emu: ProviderEmulator) -> None:
    client = sdk(emu, "gptimage2")
    gen = client.images.generate(model="gpt-image-1.5", prompt="mug", n=2, size="1024x1024")
    assert gen.data is not None and len(gen.data) == 2 and all(d.url for d in gen.data)
    images, mask = refs()
    edit = client.images.edit(
        model="gpt-image-1.5", image=images, mask=mask, prompt="beach", response_format="b64_json"
    )
    assert edit.data is not None and image_of(edit.data[0].b64_json or "").size == (1024, 1024)

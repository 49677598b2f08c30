"""Each emulated provider: its documented routes, wire shapes, validation and task lifecycle."""

from __future__ import annotations

import base64
import io
import json
from decimal import Decimal

import httpx
import pytest
from PIL import Image

from dagster_imggen import cost
from dagster_imggen.render import render_image
from dagster_imggen.request import ImageRequest
from dagster_imggen.testing import FaultSpec, ProviderEmulator

KEY = "sk-emulator-test-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def emu():
    with ProviderEmulator(task_s=30.0) as e:  # tasks advance only when the test moves the clock
        yield e


@pytest.fixture
def client():
    with httpx.Client(headers=AUTH, timeout=10) as c:
        yield c


def png(w: int = 512, h: int = 512, *, alpha: bool = False) -> bytes:
    return render_image("reference", w, h, "png", transparent=alpha)


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def from_b64(text: str, prefix: str = "") -> Image.Image:
    assert text.startswith(prefix)
    return decode(base64.b64decode(text[len(prefix) :]))


def download(client: httpx.Client, url: str) -> Image.Image:
    r = client.get(url)
    assert r.status_code == 200
    return decode(r.content)


def edit_files(n_images: int = 2, *, mask: bool = True, field: str = "image[]", size: int = 512) -> list:
    files = [(field, (f"ref{i}.png", png(size, size), "image/png")) for i in range(n_images)]
    if mask:
        files.append(("mask", ("mask.png", png(size, size, alpha=True), "image/png")))
    return files


# --- OpenAI ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("fmt", "pil"), [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")])
def test_openai_generation_shape_and_real_images(
    emu: ProviderEmulator, client: httpx.Client, fmt: str, pil: str
) -> None:
    body = {
        "model": "gpt-image-2",
        "prompt": "a lighthouse",
        "size": "1536x1024",
        "quality": "medium",
        "n": 2,
        "output_format": fmt,
    }
    r = client.post(emu.base_url("openai") + "/images/generations", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) == {"created", "data", "background", "output_format", "quality", "size", "usage"}
    assert (out["size"], out["quality"], out["output_format"], out["background"]) == (
        "1536x1024",
        "medium",
        fmt,
        "opaque",
    )
    assert len(out["data"]) == 2 and all(set(d) == {"b64_json"} for d in out["data"])
    images = [from_b64(d["b64_json"]) for d in out["data"]]
    assert [(im.format, im.size) for im in images] == [(pil, (1536, 1024))] * 2
    usage = out["usage"]
    assert usage["output_tokens"] == 2 * cost.expected_output_tokens("gpt-image-2", "1536x1024", "medium")
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert usage["input_tokens_details"]["image_tokens"] == 0
    billed = emu.billed("openai")
    req = ImageRequest(prompt="a lighthouse", model="gpt-image-2", size="1536x1024", quality="medium", n=2)
    expected = cost.cost_of_response(req, "openai", usage=billed.usage, images_returned=2).usd
    assert billed.usd == expected > 0


def test_openai_auto_resolves_in_the_response(emu: ProviderEmulator, client: httpx.Client) -> None:
    r = client.post(
        emu.base_url("openai") + "/images/generations",
        json={"model": "gpt-image-1.5", "prompt": "x", "size": "auto", "quality": "auto"},
    )
    out = r.json()
    assert out["size"] == "1024x1024" and out["quality"] == "high"
    assert from_b64(out["data"][0]["b64_json"]).size == (1024, 1024)


def test_openai_edit_with_two_images_and_mask(emu: ProviderEmulator, client: httpx.Client) -> None:
    r = client.post(
        emu.base_url("openai") + "/images/edits",
        data={"model": "gpt-image-2", "prompt": "add a hat", "size": "1024x1536", "quality": "low"},
        files=edit_files(2),
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert from_b64(out["data"][0]["b64_json"]).size == (1024, 1536)
    assert out["usage"]["input_tokens_details"]["image_tokens"] > 0  # the two reference images


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"model": "gpt-image-2"}, "missing_required_parameter", "prompt"),
        ({"prompt": "x"}, "missing_required_parameter", "model"),
        ({"model": "dall-e-9", "prompt": "x"}, "invalid_value", "model"),
        (
            {"model": "gpt-image-2", "prompt": "x", "response_format": "b64_json"},
            "unknown_parameter",
            "response_format",
        ),
        ({"model": "gpt-image-2", "prompt": "x", "style": "vivid"}, "unknown_parameter", "style"),
        ({"model": "gpt-image-2", "prompt": "x", "n": 0}, "integer_out_of_range", "n"),
        ({"model": "gpt-image-2", "prompt": "x", "n": 11}, "integer_out_of_range", "n"),
        ({"model": "gpt-image-2", "prompt": "x", "n": "2"}, "invalid_type", "n"),
        ({"model": "gpt-image-2", "prompt": "x", "size": "1000x1000"}, "invalid_value", "size"),
        ({"model": "gpt-image-2", "prompt": "x", "size": "3840x1024"}, "invalid_value", "size"),
        ({"model": "gpt-image-2", "prompt": "x", "size": "512x512"}, "invalid_value", "size"),
        ({"model": "gpt-image-1.5", "prompt": "x", "size": "2048x2048"}, "invalid_value", "size"),
        ({"model": "gpt-image-2", "prompt": "x", "quality": "hd"}, "invalid_value", "quality"),
        (
            {"model": "gpt-image-1.5", "prompt": "x", "background": "transparent", "output_format": "jpeg"},
            "invalid_value",
            "background",
        ),
        (
            {"model": "gpt-image-2", "prompt": "x", "output_format": "png", "output_compression": 50},
            "invalid_value",
            "output_compression",
        ),
        ({"model": "gpt-image-2", "prompt": "x" * 32001}, "string_above_max_length", "prompt"),
    ],
)
def test_openai_rejects_bad_requests(
    emu: ProviderEmulator, client: httpx.Client, body: dict, code: str, param: str
) -> None:
    r = client.post(emu.base_url("openai") + "/images/generations", json=body)
    assert r.status_code == 400
    err = r.json()["error"]
    assert (err["code"], err["param"], err["type"]) == (code, param, "invalid_request_error")
    assert emu.billed("openai").calls == 0


def test_openai_custom_size_and_retired_model(emu: ProviderEmulator, client: httpx.Client) -> None:
    url = emu.base_url("openai") + "/images/generations"
    ok = client.post(url, json={"model": "gpt-image-2", "prompt": "x", "size": "2048x1152", "quality": "low"})
    assert from_b64(ok.json()["data"][0]["b64_json"]).size == (2048, 1152)
    gone = client.post(url, json={"model": "gpt-image-1", "prompt": "x"})  # shut down 2026-10-23
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "model_not_found"


def test_openai_bad_json_and_bad_edits(emu: ProviderEmulator, client: httpx.Client) -> None:
    base = emu.base_url("openai")
    bad = client.post(
        base + "/images/generations", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 400 and "parse" in bad.json()["error"]["message"]
    form = {"model": "gpt-image-1.5", "prompt": "x"}
    no_image = client.post(
        base + "/images/edits", data=form, files=[("mask", ("m.png", png(alpha=True), "image/png"))]
    )
    assert no_image.json()["error"]["param"] == "image"
    mismatch = client.post(
        base + "/images/edits",
        data=form,
        files=[
            ("image", ("a.png", png(512, 512), "image/png")),
            ("mask", ("m.png", png(256, 256, alpha=True), "image/png")),
        ],
    )
    assert mismatch.status_code == 400 and "differs" in mismatch.json()["error"]["message"]
    no_alpha = client.post(
        base + "/images/edits",
        data=form,
        files=[("image", ("a.png", png(), "image/png")), ("mask", ("m.png", png(), "image/png"))],
    )
    assert no_alpha.status_code == 400 and "alpha" in no_alpha.json()["error"]["message"]
    not_image = client.post(
        base + "/images/edits", data=form, files=[("image", ("a.png", b"hello", "image/png"))]
    )
    assert not_image.status_code == 400 and not_image.json()["error"]["param"] == "image"
    as_json = client.post(base + "/images/edits", json=form)
    assert as_json.status_code == 400


# --- PiAPI -----------------------------------------------------------------------------------------
def test_piapi_sync_defaults_to_b64_and_gives_url_on_request(
    emu: ProviderEmulator, client: httpx.Client
) -> None:
    url = emu.base_url("piapi") + "/v1/images/generations"
    body = {"model": "gpt-image-2", "prompt": "otter", "quality": "low", "n": 2}
    b64 = client.post(url, json=body).json()
    assert set(b64) == {"data", "created", "usage"}
    assert [from_b64(d["b64_json"]).size for d in b64["data"]] == [(1024, 1024)] * 2
    assert set(b64["usage"]) >= {"input_tokens", "output_tokens", "total_tokens", "input_tokens_details"}
    hosted = client.post(url, json={**body, "response_format": "url", "output_format": "jpeg"}).json()
    assert download(client, hosted["data"][0]["url"]).format == "JPEG"
    bad = client.post(url, json={**body, "response_format": "png"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "response_format"


def test_piapi_edit_and_flat_preview_billing(emu: ProviderEmulator, client: httpx.Client) -> None:
    r = client.post(
        emu.base_url("piapi") + "/v1/images/edits",
        data={
            "model": "gpt-image-2-preview",
            "prompt": "sunset",
            "n": "1",
            "size": "1024x1024",
            "quality": "standard",
            "response_format": "url",
        },
        files=edit_files(1, mask=False, field="image"),
    )
    assert r.status_code == 200, r.text
    assert download(client, r.json()["data"][0]["url"]).size == (1024, 1024)
    assert emu.billed("piapi").usd == Decimal("0.10")  # 000_305fa6c5cb57ea7f.txt: flat $0.10


def test_piapi_async_task_lifecycle_with_x_api_key(emu: ProviderEmulator) -> None:
    base = emu.base_url("piapi")
    xkey = {"X-API-Key": KEY}
    body = {"model": "gpt-image-1.5", "prompt": "otter", "quality": "low", "n": 2}
    bearer = httpx.post(base + "/api/v1/images/generations/async", json=body, headers=AUTH)
    assert bearer.status_code == 401 and bearer.json()["code"] == 401
    created = httpx.post(base + "/api/v1/images/generations/async", json=body, headers=xkey).json()
    assert (
        created["code"] == 200
        and created["data"]["status"] == "pending"
        and created["data"]["output"] is None
    )
    task = created["data"]["task_id"]
    seen = []
    for step in (0, 5, 10, 30):
        emu.advance(step)
        data = httpx.get(f"{base}/api/v1/task/{task}", headers=xkey).json()["data"]
        seen.append(data["status"])
    assert seen == ["pending", "Staged", "Processing", "Completed"]
    assert [from_b64(d["b64_json"]).size for d in data["output"]["data"]] == [(1024, 1024)] * 2
    assert data["output"]["usage"]["output_tokens"] == 2 * cost.expected_output_tokens(
        "gpt-image-1.5", "1024x1024", "low"
    )
    assert emu.calls("piapi", op="poll")[0].auth_header == "x-api-key"
    assert emu.calls("piapi", op="poll")[0].headers["x-api-key"] == "***"
    missing = httpx.get(f"{base}/api/v1/task/nope", headers=xkey)
    assert missing.status_code == 404 and missing.json()["data"] is None
    assert emu.billed("piapi").calls == 1


def test_piapi_async_failed_task(emu: ProviderEmulator) -> None:
    emu.inject("piapi", FaultSpec("task_fail"))
    base, xkey = emu.base_url("piapi"), {"X-API-Key": KEY}
    task = httpx.post(
        base + "/api/v1/images/generations/async", json={"model": "gpt-image-2", "prompt": "x"}, headers=xkey
    ).json()
    emu.advance(60)
    data = httpx.get(f"{base}/api/v1/task/{task['data']['task_id']}", headers=xkey).json()["data"]
    assert data["status"] == "Failed" and data["error"]["code"] != 0 and data["output"] is None
    assert emu.billed("piapi").calls == 0


# --- Pixapi ----------------------------------------------------------------------------------------
def test_pixapi_sync_url_default_credits_and_custom_size(emu: ProviderEmulator, client: httpx.Client) -> None:
    url = emu.base_url("pixapi") + "/v1/images/generations"
    out = client.post(
        url, json={"model": "gpt-image-2", "prompt": "hero", "size": "1536x1024", "quality": "high"}
    ).json()
    assert out["costCredits"] == 14  # 1K tier, high
    assert download(client, out["data"][0]["url"]).size == (1536, 1024)
    big = client.post(
        url,
        json={
            "model": "gpt-image-2",
            "prompt": "hero",
            "size": "3840x2160",
            "quality": "low",
            "n": 2,
            "response_format": "b64_json",
        },
    ).json()
    assert big["costCredits"] == 8 and from_b64(big["data"][1]["b64_json"]).size == (3840, 2160)
    auto = client.post(url, json={"model": "gpt-image-1.5", "prompt": "hero", "quality": "auto"}).json()
    assert auto["costCredits"] == 14  # auto is billed as high
    assert emu.billed("pixapi").credits == Decimal(36)


def test_pixapi_error_shapes(emu: ProviderEmulator, client: httpx.Client) -> None:
    url = emu.base_url("pixapi") + "/v1/images/generations"
    bad = client.post(url, json={"model": "gpt-image-2", "prompt": "x", "size": "1000x1000"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == 400 and bad.json()["error"]["type"]
    unauth = httpx.post(url, json={"model": "gpt-image-2", "prompt": "x"})
    assert unauth.status_code == 401 and unauth.json() == {
        "error": {"code": "unauthorized", "message": "Missing API key"}
    }
    for status, code in ((402, "insufficient_credits"), (422, 422), (429, "rate_limited"), (503, 503)):
        emu.inject("pixapi", FaultSpec("status", status=status))
        r = client.post(url, json={"model": "gpt-image-2", "prompt": "x"})
        assert r.status_code == status and r.json()["error"]["code"] == code


def test_pixapi_async_edit_lifecycle(emu: ProviderEmulator, client: httpx.Client) -> None:
    base = emu.base_url("pixapi")
    r = client.post(
        base + "/v1/async/images/edits",
        data={"model": "gpt-image-2", "prompt": "studio", "size": "auto", "quality": "auto"},
        files=edit_files(2, mask=False, field="image"),
    )
    assert r.status_code == 200, r.text
    task = r.json()
    assert task["status"] == "queued" and task["id"].startswith("task_")
    emu.advance(15)
    assert client.get(f"{base}/v1/async/tasks/{task['id']}").json()["status"] == "processing"
    emu.advance(30)
    done = client.get(f"{base}/v1/async/tasks/{task['id']}").json()
    assert done["status"] == "completed" and download(client, done["data"][0]["url"]).size == (1024, 1024)
    assert client.get(f"{base}/v1/async/tasks/nope").status_code == 404


# --- APIYI -----------------------------------------------------------------------------------------
def test_apiyi_gpt_image_2_all_returns_one_prefixed_image_and_bills_n(
    emu: ProviderEmulator, client: httpx.Client
) -> None:
    url = emu.base_url("apiyi") + "/images/generations"
    body = {"model": "gpt-image-2-all", "prompt": "x", "n": 4, "size": "1536x1024", "quality": "high"}
    hosted = client.post(url, json=body).json()
    assert len(hosted["data"]) == 1 and "url" in hosted["data"][0] and "usage" not in hosted
    inline = client.post(url, json={**body, "response_format": "b64_json"}).json()
    assert from_b64(inline["data"][0]["b64_json"], "data:image/png;base64,").format == "PNG"
    billed = emu.billed("apiyi")
    assert (billed.calls, billed.images, billed.usd) == (2, 8, Decimal("0.24"))  # $0.03 x n


def test_apiyi_legacy_rules_and_edits(emu: ProviderEmulator, client: httpx.Client) -> None:
    base = emu.base_url("apiyi")
    legacy = client.post(
        base + "/images/generations", json={"model": "gpt-image-1.5", "prompt": "x", "quality": "low"}
    ).json()
    assert (
        download(client, legacy["data"][0]["url"]).size == (1024, 1024)
        and legacy["usage"]["output_tokens"] > 0
    )
    official = client.post(
        base + "/images/generations", json={"model": "gpt-image-2", "prompt": "x", "quality": "low"}
    ).json()
    assert "b64_json" in official["data"][0] and official["size"] == "1024x1024"
    long = client.post(base + "/images/generations", json={"model": "gpt-image-1", "prompt": "x" * 1001})
    assert long.status_code == 400 and long.json()["error"]["param"] == "prompt"
    no_edit = client.post(
        base + "/images/edits", data={"model": "gpt-image-1.5", "prompt": "x"}, files=edit_files(1)
    )
    assert no_edit.status_code == 400 and no_edit.json()["error"]["param"] == "model"
    edit = client.post(
        base + "/images/edits",
        data={"model": "gpt-image-1", "prompt": "x", "response_format": "b64_json"},
        files=edit_files(2),
    )
    assert edit.status_code == 200 and from_b64(edit.json()["data"][0]["b64_json"]).size == (1024, 1024)
    all_edit = client.post(
        base + "/images/edits",
        data={"model": "gpt-image-2-all", "prompt": "blend"},
        files=edit_files(16, mask=False),
    )
    assert all_edit.status_code == 200
    too_many = client.post(
        base + "/images/edits",
        data={"model": "gpt-image-2-all", "prompt": "blend"},
        files=edit_files(17, mask=False, size=64),
    )
    assert too_many.status_code == 400


# --- AI Generate -----------------------------------------------------------------------------------
def test_aigenerate_job_lifecycle_and_credits_header(emu: ProviderEmulator, client: httpx.Client) -> None:
    base = emu.base_url("aigenerate")
    body = {
        "model": "openai-gpt-image-1-5-text-to-image-high",
        "input": {"prompt": "fox", "aspect_ratio": "3:2"},
    }
    r = client.post(base + "/jobs/createTask", json=body)
    assert r.status_code == 200 and r.headers["X-AI-Credits-Charged"] == "22"
    assert r.json()["code"] == 200 and r.json()["msg"] == "success"
    task = r.json()["data"]["taskId"]
    states = []
    for step in (0, 5, 10, 30):
        emu.advance(step)
        rec = client.get(base + "/jobs/recordInfo", params={"taskId": task}).json()
        states.append(rec["data"]["state"])
    assert states == ["waiting", "queuing", "generating", "success"]
    data = rec["data"]
    assert set(data) >= {
        "taskId",
        "model",
        "state",
        "param",
        "resultJson",
        "failCode",
        "failMsg",
        "costTime",
        "createTime",
        "completeTime",
    }
    assert json.loads(data["param"]) == body and data["model"] == body["model"]
    urls = json.loads(data["resultJson"])["resultUrls"]
    assert download(client, urls[0]).size == (1536, 1024)
    billed = emu.billed("aigenerate")
    assert billed.credits == Decimal(22) and billed.usd == Decimal("0.154")  # 22 credits x $0.007


def test_aigenerate_validation_is_body_code_422(emu: ProviderEmulator, client: httpx.Client) -> None:
    url = emu.base_url("aigenerate") + "/jobs/createTask"
    cases = [
        {"input": {"prompt": "x"}},
        {"model": "openai-gpt-image-9", "input": {"prompt": "x"}},
        {"model": "openai-gpt-image-1-5-text-to-image-medium", "input": {}},
        {"model": "openai-gpt-image-1-5-image-to-image-medium", "input": {"prompt": "x"}},
        {"model": "openai-gpt-image-1-5-text-to-image-medium", "input": {"prompt": "x", "n": 2}},
    ]
    for body in cases:
        r = client.post(url, json=body)
        assert r.status_code == 200 and r.json()["code"] == 422 and r.json()["msg"], body
    ok = client.post(
        url,
        json={
            "model": "openai-gpt-image-1-5-image-to-image-medium",
            "input": {"prompt": "x", "image_urls": ["https://example.com/a.png"]},
        },
    )
    assert ok.json()["code"] == 200
    unauth = httpx.post(url, json={"model": "x"})
    assert unauth.status_code == 401 and unauth.json()["code"] == 401
    unknown = client.get(emu.base_url("aigenerate") + "/jobs/recordInfo", params={"taskId": "nope"})
    assert unknown.json()["code"] == 404


def test_aigenerate_failed_job(emu: ProviderEmulator, client: httpx.Client) -> None:
    emu.inject("aigenerate", FaultSpec("task_fail"))
    base = emu.base_url("aigenerate")
    task = client.post(
        base + "/jobs/createTask",
        json={"model": "openai-gpt-image-1-5-text-to-image-medium", "input": {"prompt": "x"}},
    ).json()
    emu.advance(60)
    data = client.get(base + "/jobs/recordInfo", params={"taskId": task["data"]["taskId"]}).json()["data"]
    assert data["state"] == "fail" and data["failCode"] and data["failMsg"] and data["resultJson"] == ""


# --- GPTImage2 -------------------------------------------------------------------------------------
def test_gptimage2_sync_and_async_by_model(emu: ProviderEmulator, client: httpx.Client) -> None:
    base = emu.base_url("gptimage2")
    sync = client.post(
        base + "/images/generations",
        json={"model": "gpt-image-1.5", "prompt": "mug", "size": "1792x1024", "quality": "hd"},
    ).json()
    assert set(sync) == {"created", "data"} and download(client, sync["data"][0]["url"]).size == (1792, 1024)
    b64 = client.post(
        base + "/images/generations",
        json={"model": "gpt-image-1.5", "prompt": "mug", "response_format": "b64_json"},
    ).json()
    assert from_b64(b64["data"][0]["b64_json"]).size == (1024, 1024)
    one = client.post(base + "/images/generations", json={"model": "gpt-image-1", "prompt": "mug"}).json()
    many = client.post(
        base + "/images/generations", json={"model": "gpt-image-1", "prompt": "mug", "n": 3}
    ).json()
    assert one["status"] == "pending" and "data" not in one
    assert client.get(f"{base}/tasks/{one['task_id']}").json()["status"] == "pending"
    emu.advance(60)
    first = client.get(f"{base}/tasks/{one['task_id']}").json()
    second = client.get(f"{base}/tasks/{many['task_id']}").json()
    assert first["status"] == "completed" and isinstance(first["result"]["images"][0]["url"], str)
    urls = second["result"]["images"][0]["url"]
    assert isinstance(urls, list) and len(urls) == 3 and download(client, urls[2]).size == (1024, 1024)
    billed = emu.billed("gptimage2")  # $0.013 x 2 (gpt-image-1.5) + $0.034 x 4 (gpt-image-1)
    assert billed.images == 6 and billed.usd == Decimal("0.162")


def test_gptimage2_edit_and_limits(emu: ProviderEmulator, client: httpx.Client) -> None:
    base = emu.base_url("gptimage2")
    edit = client.post(
        base + "/images/edits",
        data={"model": "gpt-image-1", "prompt": "beach", "size": "1024x1024"},
        files=edit_files(1),
    )
    assert edit.status_code == 200 and "task_id" in edit.json()
    five = client.post(base + "/images/generations", json={"model": "gpt-image-1.5", "prompt": "x", "n": 5})
    assert five.status_code == 400 and five.json()["error"]["param"] == "n"
    missing = client.get(f"{base}/tasks/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "task_not_found"

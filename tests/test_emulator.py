"""ProviderEmulator core: routing, the request record, keys, rate limit, faults, billing, fixture, serve()."""

from __future__ import annotations

import base64
import binascii
import io
import json
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest
from PIL import Image

from dagster_imggen.render import render_image
from dagster_imggen.testing import (
    FAULT_KINDS,
    PROVIDERS,
    FaultSpec,
    ProviderEmulator,
    RecordedRequest,
    key_fingerprint,
)

KEY = "sk-emulator-test-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
GEN = {"model": "gpt-image-2", "prompt": "a red fox in the snow", "size": "1024x1024", "quality": "low"}


@pytest.fixture
def emu():
    with ProviderEmulator(task_s=0.05) as e:
        yield e


@pytest.fixture
def client(emu: ProviderEmulator):
    with httpx.Client(headers=AUTH, timeout=10) as c:
        yield c


def openai_gen(client: httpx.Client, emu: ProviderEmulator, **body: object) -> httpx.Response:
    return client.post(emu.base_url("openai") + "/images/generations", json={**GEN, **body})


def b64_image(entry: dict) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(entry["b64_json"])))


# --- routing -------------------------------------------------------------------------------------
def test_base_urls_are_each_providers_api_root(emu: ProviderEmulator) -> None:
    roots = {p: emu.base_url(p).removeprefix(emu.url) for p in PROVIDERS}
    assert roots == {
        "openai": "/openai/v1",
        "piapi": "/piapi",
        "pixapi": "/pixapi",
        "apiyi": "/apiyi/v1",
        "aigenerate": "/aigenerate/api/v1",
        "gptimage2": "/gptimage2/v1",
    }
    with pytest.raises(KeyError, match="unknown provider"):
        emu.base_url("dalle")


def test_unknown_provider_and_route_answer_404(emu: ProviderEmulator, client: httpx.Client) -> None:
    assert client.get(emu.url + "/nope/v1/x").status_code == 404
    r = client.post(emu.base_url("openai") + "/images/variations", json={})
    assert r.status_code == 404
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    assert emu.requests[-1].op == "unknown"


# --- the record ------------------------------------------------------------------------------------
def test_record_keeps_what_was_sent_and_never_the_key(emu: ProviderEmulator, client: httpx.Client) -> None:
    r = client.post(
        emu.base_url("openai") + "/images/generations?trace=1", json=GEN, headers={"X-Custom": "v"}
    )
    assert r.status_code == 200
    (rec,) = emu.requests
    assert isinstance(rec, RecordedRequest)
    assert (rec.provider, rec.op, rec.method) == ("openai", "generate", "POST")
    assert rec.path == "/v1/images/generations"
    assert rec.url_path == "/openai/v1/images/generations"
    assert rec.query == {"trace": "1"}
    assert rec.json == GEN and rec.prompt == GEN["prompt"] and rec.field("quality") == "low"
    assert rec.headers["authorization"] == "Bearer ***"
    assert rec.headers["x-custom"] == "v"
    assert rec.auth_header == "authorization" and rec.auth_ok
    assert rec.key_sha256 == key_fingerprint(KEY)
    assert rec.status == 200 and rec.fault is None
    assert rec.request_id == r.headers["x-request-id"]
    assert rec.body_size == int(rec.headers["content-length"])
    assert KEY not in repr(emu.requests) and KEY not in repr(emu.billed())


def test_record_of_multipart_files(emu: ProviderEmulator, client: httpx.Client) -> None:
    img = render_image("ref", 512, 512, "png")
    mask = render_image("mask", 512, 512, "png", transparent=True)
    files = [
        ("image[]", ("a.png", img, "image/png")),
        ("image[]", ("b.png", img, "image/png")),
        ("mask", ("m.png", mask, "image/png")),
    ]
    r = client.post(
        emu.base_url("openai") + "/images/edits",
        data={"model": "gpt-image-1.5", "prompt": "add a hat", "n": "2"},
        files=files,
    )
    assert r.status_code == 200, r.text
    (rec,) = emu.calls("openai", op="edit")
    assert rec.form == {"model": ["gpt-image-1.5"], "prompt": ["add a hat"], "n": ["2"]}
    assert [(f.field, f.filename, f.width, f.height, f.format) for f in rec.files] == [
        ("image[]", "a.png", 512, 512, "png"),
        ("image[]", "b.png", 512, 512, "png"),
        ("mask", "m.png", 512, 512, "png"),
    ]
    assert rec.files[2].has_alpha and not rec.files[0].has_alpha
    assert rec.files[0].size == len(img) and rec.files[0].sha256 == rec.files[1].sha256
    assert emu.calls("openai", path="/v1/images/edits", method="POST") == [rec]
    assert emu.calls("piapi") == []


# --- keys ------------------------------------------------------------------------------------------
def test_expected_key_and_missing_key_get_401(emu: ProviderEmulator) -> None:
    emu.configure("openai", api_key=KEY)
    url = emu.base_url("openai") + "/images/generations"
    missing = httpx.post(url, json=GEN)
    wrong = httpx.post(url, json=GEN, headers={"Authorization": "Bearer sk-wrong-key-000"})
    basic = httpx.post(url, json=GEN, headers={"Authorization": f"Basic {KEY}"})
    right = httpx.post(url, json=GEN, headers=AUTH)
    assert [missing.status_code, wrong.status_code, basic.status_code, right.status_code] == [
        401,
        401,
        401,
        200,
    ]
    assert wrong.json()["error"]["code"] == "invalid_api_key"
    assert "sk-wrong" not in wrong.text
    assert [r.auth_ok for r in emu.requests] == [False, False, False, True]
    assert emu.requests[1].key_sha256 == key_fingerprint("sk-wrong-key-000")
    assert emu.billed("openai").calls == 1
    assert KEY not in repr(emu.settings("openai"))


# --- rate limit ------------------------------------------------------------------------------------
def test_rate_limit_answers_429_with_retry_after(emu: ProviderEmulator, client: httpx.Client) -> None:
    emu.configure("openai", rate_limit=(2, 30.0), retry_after_ms=True)
    codes = [openai_gen(client, emu).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    limited = openai_gen(client, emu)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(limited.headers["retry-after"]) <= 30
    assert 0 < int(limited.headers["retry-after-ms"]) <= 30_000
    emu.advance(31)  # the window slides without sleeping
    assert openai_gen(client, emu).status_code == 200
    assert emu.billed("openai").calls == 3


def test_rate_limit_is_per_key(emu: ProviderEmulator) -> None:
    emu.configure("openai", rate_limit=(1, 30.0))
    url = emu.base_url("openai") + "/images/generations"
    a = [
        httpx.post(url, json=GEN, headers={"Authorization": "Bearer key-aaaaaa"}).status_code
        for _ in range(2)
    ]
    b = httpx.post(url, json=GEN, headers={"Authorization": "Bearer key-bbbbbb"}).status_code
    assert a == [200, 429] and b == 200


def test_aigenerate_default_rate_limit_is_20_per_10s(emu: ProviderEmulator, client: httpx.Client) -> None:
    url = emu.base_url("aigenerate") + "/jobs/createTask"
    body = {"model": "openai-gpt-image-1-5-text-to-image-medium", "input": {"prompt": "fox"}}
    responses = [client.post(url, json=body) for _ in range(21)]
    assert [r.status_code for r in responses].count(200) == 20
    last = responses[-1]
    assert last.status_code == 429 and last.json()["code"] == 429 and "retry-after" in last.headers
    # polls are not counted against the limit
    task_id = responses[0].json()["data"]["taskId"]
    poll = client.get(emu.base_url("aigenerate") + "/jobs/recordInfo", params={"taskId": task_id})
    assert poll.status_code == 200


# --- latency ---------------------------------------------------------------------------------------
def test_latency_fixed_and_random(emu: ProviderEmulator, client: httpx.Client) -> None:
    emu.configure("openai", latency_s=0.05)
    start = time.perf_counter()
    assert openai_gen(client, emu).status_code == 200
    assert time.perf_counter() - start >= 0.05  # a lower bound: the server slept that long
    emu.configure(latency_s=(0.01, 0.02))
    assert all(0.01 <= emu.settings(p).latency() <= 0.02 for p in PROVIDERS)
    with pytest.raises(TypeError, match="unknown setting"):
        emu.configure("openai", latency=1)


# --- concurrency -----------------------------------------------------------------------------------
def test_64_concurrent_keep_alive_connections() -> None:
    with ProviderEmulator(latency_s=0.05, unique_images=False) as emu:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        with httpx.Client(headers=AUTH, limits=limits, timeout=30) as c:
            url = emu.base_url("openai") + "/images/generations"

            def one(i: int) -> int:
                return c.post(url, json={**GEN, "prompt": f"prompt {i}"}).status_code

            with ThreadPoolExecutor(64) as pool:
                codes = list(pool.map(one, range(192)))
        assert codes == [200] * 192
        assert len(emu.calls("openai")) == 192
        assert len({r.prompt for r in emu.requests}) == 192


# --- faults ----------------------------------------------------------------------------------------
def test_fault_table_is_complete() -> None:
    kinds = {
        "status", "error_body", "reset", "drop", "hang", "slow_body", "malformed_json", "truncated_b64",
        "corrupt_image", "wrong_size", "task_fail", "task_cancel", "task_stuck", "expired_url",
        "slow_download", "oversized",
    }  # fmt: skip
    assert set(FAULT_KINDS) == kinds
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultSpec("explode")  # type: ignore[arg-type]


def test_status_fault_for_next_k_requests(emu: ProviderEmulator, client: httpx.Client) -> None:
    emu.inject("openai", FaultSpec("status", status=503, retry_after_s=2), count=2)
    rs = [openai_gen(client, emu) for _ in range(3)]
    assert [r.status_code for r in rs] == [503, 503, 200]
    assert rs[0].json()["error"]["type"] == "server_error"
    assert rs[0].headers["retry-after"] == "2" and rs[0].headers["retry-after-ms"] == "2000"
    assert [r.fault for r in emu.requests] == ["status", "status", None]
    assert emu.pending_faults() == []
    assert emu.billed("openai").calls == 1


def test_moderation_blocked_in_openai_shape(emu: ProviderEmulator, client: httpx.Client) -> None:
    emu.inject("openai", FaultSpec("status", status=400, code="moderation_blocked"))
    err = openai_gen(client, emu).json()["error"]
    assert err["code"] == "moderation_blocked" and err["type"] == "image_generation_user_error"


def test_fault_matched_on_prompt_text_or_predicate(emu: ProviderEmulator, client: httpx.Client) -> None:
    emu.inject("openai", FaultSpec("status", status=500, count=None, match="forbidden"))
    emu.inject(None, FaultSpec("status", status=502, count=None, match=lambda p: p.endswith("!")))
    codes = [
        openai_gen(client, emu, prompt=p).status_code for p in ("ok", "forbidden fruit", "ok!", "forbidden")
    ]
    assert codes == [200, 500, 502, 500]
    assert len(emu.pending_faults("openai")) == 2
    emu.clear_faults()
    assert openai_gen(client, emu, prompt="forbidden").status_code == 200


def test_error_body_fault_is_http_200(emu: ProviderEmulator, client: httpx.Client) -> None:
    emu.inject("aigenerate", FaultSpec("error_body", status=500, message="upstream busy"))
    body = {"model": "openai-gpt-image-1-5-text-to-image-medium", "input": {"prompt": "fox"}}
    r = client.post(emu.base_url("aigenerate") + "/jobs/createTask", json=body)
    assert r.status_code == 200 and r.json() == {"code": 500, "msg": "upstream busy", "data": None}
    assert emu.billed("aigenerate").calls == 0


def test_reset_is_not_billed(emu: ProviderEmulator, client: httpx.Client) -> None:
    emu.inject("apiyi", FaultSpec("reset"))
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        client.post(
            emu.base_url("apiyi") + "/images/generations", json={"model": "gpt-image-2-all", "prompt": "x"}
        )
    assert emu.requests[0].status is None and emu.requests[0].fault == "reset"
    assert emu.billed("apiyi").calls == 0


def test_drop_after_processing_is_billed(emu: ProviderEmulator, client: httpx.Client) -> None:
    emu.inject("apiyi", FaultSpec("drop"))
    body = {"model": "gpt-image-2-all", "prompt": "x"}
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(emu.base_url("apiyi") + "/images/generations", json=body)
    billed = emu.billed("apiyi")
    assert billed.calls == 1 and billed.usd == Decimal("0.03")  # 003_d307cd8db33a550d.txt: flat $0.03
    # the connection pool recovers: the next call works
    assert client.post(emu.base_url("apiyi") + "/images/generations", json=body).status_code == 200


def test_hang_causes_read_timeout_yet_bills(emu: ProviderEmulator) -> None:
    emu.inject("openai", FaultSpec("hang", delay_s=1.0))
    with (
        httpx.Client(headers=AUTH, timeout=httpx.Timeout(5, read=0.2)) as c,
        pytest.raises(httpx.ReadTimeout),
    ):
        openai_gen(c, emu)
    assert emu.billed("openai").calls == 1


def test_slow_body_still_delivers_the_whole_answer(emu: ProviderEmulator, client: httpx.Client) -> None:
    emu.inject("openai", FaultSpec("slow_body", delay_s=0.1))
    r = openai_gen(client, emu)
    assert r.status_code == 200 and b64_image(r.json()["data"][0]).size == (1024, 1024)


def test_malformed_json(emu: ProviderEmulator, client: httpx.Client) -> None:
    emu.inject("openai", FaultSpec("malformed_json"))
    r = openai_gen(client, emu)
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.content)


def test_truncated_b64(emu: ProviderEmulator, client: httpx.Client) -> None:
    emu.inject("openai", FaultSpec("truncated_b64"))
    data = openai_gen(client, emu).json()["data"][0]["b64_json"]
    with pytest.raises(binascii.Error):
        base64.b64decode(data, validate=True)


def test_corrupt_image_and_wrong_size(emu: ProviderEmulator, client: httpx.Client) -> None:
    emu.inject("openai", FaultSpec("corrupt_image"))
    emu.inject("openai", FaultSpec("wrong_size"))
    corrupt = openai_gen(client, emu).json()["data"][0]
    with pytest.raises(Exception, match="cannot identify"):
        b64_image(corrupt)
    wrong = openai_gen(client, emu, size="1536x1024").json()
    assert wrong["size"] == "1536x1024" and b64_image(wrong["data"][0]).size != (1536, 1024)


def test_expired_url_fault_and_natural_expiry(emu: ProviderEmulator, client: httpx.Client) -> None:
    gen = {"model": "gpt-image-1.5", "prompt": "fox", "size": "1024x1024"}
    url = client.post(emu.base_url("gptimage2") + "/images/generations", json=gen).json()["data"][0]["url"]
    emu.inject("gptimage2", FaultSpec("expired_url", status=404))
    assert client.get(url).status_code == 404
    emu.inject("gptimage2", FaultSpec("expired_url"))
    assert client.get(url).status_code == 410
    ok = client.get(url)
    assert ok.status_code == 200 and Image.open(io.BytesIO(ok.content)).size == (1024, 1024)
    emu.advance(emu.settings("gptimage2").url_ttl_s + 1)
    assert client.get(url).status_code == 403
    assert [r.op for r in emu.requests].count("download") == 4


def test_slow_and_oversized_download(emu: ProviderEmulator, client: httpx.Client) -> None:
    gen = {"model": "gpt-image-1.5", "prompt": "fox", "size": "1024x1024"}
    url = client.post(emu.base_url("gptimage2") + "/images/generations", json=gen).json()["data"][0]["url"]
    emu.inject("gptimage2", FaultSpec("slow_download", delay_s=0.1))
    slow = client.get(url)
    assert slow.status_code == 200 and Image.open(io.BytesIO(slow.content)).size == (1024, 1024)
    emu.inject("gptimage2", FaultSpec("oversized", size_bytes=8 * 1024 * 1024))
    with client.stream("GET", url) as r:
        assert int(r.headers["content-length"]) == 8 * 1024 * 1024
        seen = 0
        for chunk in r.iter_bytes():
            seen += len(chunk)
            if seen > 1024 * 1024:  # a client's byte cap: stop reading
                break
    assert seen > 1024 * 1024


def test_poll_fault_and_task_faults(emu: ProviderEmulator, client: httpx.Client) -> None:
    url = emu.base_url("gptimage2")
    emu.inject("gptimage2", FaultSpec("task_fail", match="fail"))
    emu.inject("gptimage2", FaultSpec("task_cancel", match="cancel"))
    emu.inject("gptimage2", FaultSpec("task_stuck", match="stuck"))
    ids = {
        p: client.post(url + "/images/generations", json={"model": "gpt-image-1", "prompt": p}).json()[
            "task_id"
        ]
        for p in ("fail", "cancel", "stuck", "fine")
    }
    emu.advance(3600)
    status = {p: client.get(f"{url}/tasks/{i}").json()["status"] for p, i in ids.items()}
    assert status == {"fail": "failed", "cancel": "cancelled", "stuck": "processing", "fine": "completed"}
    emu.inject("gptimage2", FaultSpec("status", status=502, on="poll", match="fine"))
    assert client.get(f"{url}/tasks/{ids['fine']}").status_code == 502
    assert client.get(f"{url}/tasks/{ids['fine']}").status_code == 200
    billed = emu.billed("gptimage2")  # 004_be499b8a5e35d015.txt: failed generations are not billed
    assert billed.calls == 1 and billed.usd == Decimal("0.034")


# --- billing ---------------------------------------------------------------------------------------
def test_billed_follows_each_providers_rule(emu: ProviderEmulator, client: httpx.Client) -> None:
    emu.inject("pixapi", FaultSpec("task_fail"))
    pix = client.post(
        emu.base_url("pixapi") + "/v1/async/images/generations",
        json={"model": "gpt-image-2", "prompt": "x", "size": "2048x1152", "quality": "medium", "n": 2},
    ).json()
    emu.advance(3600)
    assert client.get(emu.base_url("pixapi") + f"/v1/async/tasks/{pix['id']}").json()["status"] == "failed"
    # Pixapi charges at creation (001_d01986769ffd2010.txt): 2K medium = 17 credits x n
    assert emu.billed("pixapi").credits == Decimal(34) and pix["costCredits"] == 34
    r = client.post(
        emu.base_url("apiyi") + "/images/generations",
        json={"model": "gpt-image-2-all", "prompt": "x", "n": 3},
    )
    assert len(r.json()["data"]) == 1
    apiyi = emu.billed("apiyi")
    assert (apiyi.images, apiyi.usd) == (3, Decimal("0.09"))
    total = emu.billed()
    assert total.calls == 2 and total.usd == emu.billed("pixapi").usd + apiyi.usd


# --- fixture and serve() ---------------------------------------------------------------------------
def test_fixture_gives_a_fresh_running_emulator(imggen_emulator: ProviderEmulator) -> None:
    assert imggen_emulator.requests == []
    r = httpx.post(imggen_emulator.base_url("openai") + "/images/generations", json=GEN, headers=AUTH)
    assert r.status_code == 200 and len(imggen_emulator.requests) == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_runs_in_a_subprocess() -> None:
    port = _free_port()
    code = f"from dagster_imggen.testing.emulator import serve; serve(port={port})"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"127.0.0.1:{port}" in first
        lines = [proc.stdout.readline() for _ in PROVIDERS]
        assert any(f"http://127.0.0.1:{port}/openai/v1" in line for line in lines)
        r = httpx.post(
            f"http://127.0.0.1:{port}/openai/v1/images/generations", json=GEN, headers=AUTH, timeout=10
        )
        assert r.status_code == 200 and b64_image(r.json()["data"][0]).size == (1024, 1024)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_oversized_api_body(emu: ProviderEmulator, client: httpx.Client) -> None:
    emu.inject("openai", FaultSpec("oversized", on="submit", size_bytes=4 * 1024 * 1024))
    with client.stream("POST", emu.base_url("openai") + "/images/generations", json=GEN) as r:
        assert r.status_code == 200 and int(r.headers["content-length"]) == 4 * 1024 * 1024
        body = r.read()
    assert len(body) == 4 * 1024 * 1024 and body.startswith(b'{"data":[{"b64_json":"')
    assert emu.billed("openai").calls == 1  # the work was done

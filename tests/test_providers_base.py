"""Shared provider machinery: error mapping, retry headers, image checks, SSRF guard, streaming, secrets."""

from __future__ import annotations

import asyncio
import base64
import gc
import logging
import struct
import threading
import time
import weakref
import zlib
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import dagster as dg
import httpx
import pytest
from provider_support import FAST, KEY, make

from dagster_imggen._log import LOGGER_NAME
from dagster_imggen.errors import (
    AuthenticationError,
    ContentRejectedError,
    DownloadError,
    ImageDecodeError,
    ImgGenError,
    InsufficientCreditsError,
    MalformedResponseError,
    RateLimitError,
    RetryableProviderError,
    TerminalProviderError,
    UnsafeURLError,
)
from dagster_imggen.providers._http import (
    CallState,
    HttpSession,
    RetryPolicy,
    decode_b64_image,
    decode_image,
    error_for_status,
    error_from_body_code,
    parse_error_body,
    parse_retry_after,
)
from dagster_imggen.providers._tasks import find_image_refs, map_state
from dagster_imggen.providers.aigenerate import AIGenerateImageResource
from dagster_imggen.providers.apiyi import APIYIImageResource
from dagster_imggen.providers.gptimage2 import GPTImage2ImageResource
from dagster_imggen.providers.local import LocalImageResource
from dagster_imggen.providers.openai import OpenAIImageResource
from dagster_imggen.providers.piapi import PiAPIImageResource
from dagster_imggen.providers.pixapi import PixapiImageResource
from dagster_imggen.render import render_image
from dagster_imggen.request import ImageRequest
from dagster_imggen.result import GeneratedImage, TaskState
from dagster_imggen.testing import FaultSpec, ProviderEmulator

REMOTE = [
    OpenAIImageResource,
    PiAPIImageResource,
    PixapiImageResource,
    APIYIImageResource,
    AIGenerateImageResource,
    GPTImage2ImageResource,
]

# ----------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {
                "error": {
                    "message": "bad size",
                    "type": "invalid_request_error",
                    "param": "size",
                    "code": "invalid_value",
                }
            },
            ("bad size", "invalid_value", "invalid_request_error"),
        ),
        (
            {"error": {"code": 400, "message": "numeric", "type": "bad_request"}},
            ("numeric", 400, "bad_request"),
        ),
        (
            {"error": {"code": "insufficient_credits", "message": "top up"}},
            ("top up", "insufficient_credits", None),
        ),
        ({"code": 422, "msg": "prompt rejected", "data": None}, ("prompt rejected", 422, None)),
        ({"code": 500, "message": "upstream"}, ("upstream", 500, None)),
        (
            {
                "code": 200,
                "message": "ok",
                "data": {"task_id": "t", "error": {"code": 10001, "message": "nsfw"}},
            },
            ("ok: nsfw", 10001, None),
        ),
        ({"error": "plain text"}, ("plain text", None, None)),
        ({"code": "401", "msg": "who"}, ("who", 401, None)),
        ([1, 2], (None, None, None)),
    ],
)
def test_parse_error_body_shapes(body, expected):
    assert parse_error_body(body) == expected


@pytest.mark.parametrize(
    ("status", "code", "error", "retryable"),
    [
        (429, None, RateLimitError, True),
        (500, None, RetryableProviderError, True),
        (502, None, RetryableProviderError, True),
        (503, None, RetryableProviderError, True),
        (455, None, RetryableProviderError, True),
        (400, None, TerminalProviderError, False),
        (401, None, AuthenticationError, False),
        (403, None, AuthenticationError, False),
        (402, None, InsufficientCreditsError, False),
        (404, None, TerminalProviderError, False),
        (422, None, ContentRejectedError, False),
        (400, "moderation_blocked", ContentRejectedError, False),
        (500, "moderation_blocked", ContentRejectedError, False),  # never retried, whatever the status
        (400, "insufficient_credits", InsufficientCreditsError, False),
    ],
)
def test_status_mapping(status, code, error, retryable):
    err = error_for_status(status, "m", provider="p", code=code)
    assert type(err) is error and err.retryable is retryable and err.status_code == status


def test_body_codes():
    assert isinstance(
        error_from_body_code(455, "busy", provider="aigenerate", api_key=None), RetryableProviderError
    )
    assert isinstance(error_from_body_code("rate_limited", "x", provider="p", api_key=None), RateLimitError)
    assert isinstance(error_from_body_code(10001, "odd", provider="p", api_key=None), MalformedResponseError)


def test_error_messages_are_redacted():
    err = error_from_body_code(401, f"Incorrect API key provided: {KEY}", provider="p", api_key=KEY)
    assert KEY not in str(err) and "***" in str(err)


def test_retry_after_headers():
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "100", "retry-after": "9"}) == 0.1
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (parse_retry_after({"retry-after": when}) or 0) <= 31
    assert parse_retry_after({}) is None


def test_backoff_is_full_jitter_on_top_of_the_server_wait():
    policy = RetryPolicy(backoff_base_s=1.0, backoff_max_s=4.0)
    delays = [policy.delay(5, None) for _ in range(200)]
    assert all(0 <= d <= 4.0 for d in delays) and len(set(delays)) > 100
    honoured = [policy.delay(1, 2.5) for _ in range(200)]
    assert all(2.5 <= d <= 4.5 for d in honoured)
    assert len(set(honoured)) > 100  # clients sharing a key do not come back in a herd


def test_task_failure_message_is_redacted():
    from dagster_imggen.errors import TaskFailedError
    from dagster_imggen.providers._tasks import TaskSnapshot, poll_until_done

    async def fetch() -> TaskSnapshot:
        return TaskSnapshot("t1", TaskState.FAILED, error_message=f"bad key {KEY} for Bearer {KEY}")

    with pytest.raises(TaskFailedError) as info:
        asyncio.run(
            poll_until_done(fetch, provider="p", task_id="t1", interval_s=0.0, deadline_s=5, secret=KEY)
        )
    assert KEY not in str(info.value) and "t1" in str(info.value)


# ------------------------------------------------------------------------------------ task helpers


def test_status_words_any_case():
    mapping = {"completed": TaskState.SUCCEEDED, "staged": TaskState.QUEUED}
    assert map_state(" Completed ", mapping, provider="p") is TaskState.SUCCEEDED
    assert map_state("STAGED", mapping, provider="p") is TaskState.QUEUED
    with pytest.raises(MalformedResponseError, match="unknown task status"):
        map_state("exploded", mapping, provider="p")


@pytest.mark.parametrize(
    ("node", "values"),
    [
        ({"data": [{"b64_json": "QUJD"}, {"url": "https://x/1.png"}]}, ["QUJD", "https://x/1.png"]),
        ({"output": {"data": [{"url": "https://x/a.png"}]}}, ["https://x/a.png"]),
        ({"result": {"images": [{"url": "https://x/a.png"}]}}, ["https://x/a.png"]),
        (
            {"result": {"images": [{"url": ["https://x/a.png", "https://x/b.png"]}]}},
            ["https://x/a.png", "https://x/b.png"],
        ),
        ({"url": "https://x/a.png"}, ["https://x/a.png"]),
        ({"resultJson": '{"resultUrls": ["https://x/k.png"]}'}, ["https://x/k.png"]),
        ({"resultJson": ""}, []),
    ],
)
def test_find_image_refs_nestings(node, values):
    assert [ref.value for ref in find_image_refs(node)] == values


# ------------------------------------------------------------------------------------------ images


def test_b64_with_and_without_data_prefix():
    raw = render_image("p", 64, 48, "png")
    text = base64.b64encode(raw).decode()
    assert decode_b64_image(text) == raw
    assert decode_b64_image("data:image/png;base64," + text) == raw
    assert decode_b64_image(text[:40] + "\n" + text[40:]) == raw


@pytest.mark.parametrize("cut", [1, 2, 3, 5])
def test_truncated_b64_is_refused(cut):
    text = base64.b64encode(render_image("p", 64, 48, "png")).decode()
    with pytest.raises(ImageDecodeError):
        decode_image(decode_b64_image(text[:-cut]))


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_truncated_images_are_refused(fmt):
    raw = render_image("p", 256, 256, fmt)
    assert decode_image(raw, expect_size=(256, 256)).format == fmt
    for cut in (1, 17, len(raw) // 2):
        with pytest.raises(ImageDecodeError):
            decode_image(raw[:-cut])


def test_wrong_size_is_refused():
    with pytest.raises(ImageDecodeError, match="asked for 1024x1024"):
        decode_image(render_image("p", 256, 256, "png"), expect_size=(1024, 1024))


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_decompression_bomb_refused_from_the_header():
    start = time.perf_counter()
    with pytest.raises(ImageDecodeError, match="DecompressionBomb"):
        decode_image(_png_header_only(60_000, 60_000))  # Pillow's own guard
    with pytest.raises(ImageDecodeError, match="over the 16777216-pixel limit"):
        decode_image(_png_header_only(5_000, 5_000))  # ours: below Pillow's, above any GPT Image size
    assert time.perf_counter() - start < 1.0  # refused without decoding 3.6 gigapixels


# --------------------------------------------------------------------------------- downloads / SSRF


def _session(base_url: str, handler=None, **kw) -> HttpSession:
    transport = httpx.MockTransport(handler or (lambda request: httpx.Response(500)))
    return HttpSession(
        httpx.AsyncClient(transport=transport),
        provider="t",
        api_key=KEY,
        base_url=base_url,
        policy=RetryPolicy(max_retries=1, backoff_base_s=0.0),
        **kw,
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://cdn.example.com/a.png",  # not https
        "ftp://cdn.example.com/a.png",
        "https://127.0.0.1/a.png",
        "https://10.0.0.5/a.png",
        "https://192.168.1.1/a.png",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/a.png",
        "https://localhost/a.png",
        "https://metadata.internal/a.png",
        "https://100.100.100.200/latest/meta-data/",  # shared address space (not global)
        "https://[::ffff:127.0.0.1]/a.png",
    ],
)
def test_ssrf_guard_refuses(url):
    with pytest.raises(UnsafeURLError):
        asyncio.run(_session("https://api.openai.com/v1").download(url))


def test_loopback_base_allows_loopback_http():
    png = render_image("p", 32, 32, "png")

    async def go() -> bytes:
        session = _session("http://127.0.0.1:9/openai/v1", lambda r: httpx.Response(200, content=png))
        return await session.download("http://127.0.0.1:9/openai/files/a.png")

    assert asyncio.run(go()) == png


def test_redirect_to_private_address_is_refused():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": "https://10.1.2.3/secret"})

    with pytest.raises(UnsafeURLError):
        asyncio.run(_session("https://api.example.com/v1", handler).download("https://93.184.216.34/img.png"))


def test_download_byte_cap_and_no_auth_header():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"x" * 5000)

    session = _session("https://api.example.com/v1", handler, max_download_bytes=4096)
    with pytest.raises(DownloadError, match="4096-byte cap"):
        asyncio.run(session.download("https://93.184.216.34/img.png"))
    assert "authorization" not in seen[0].headers


def test_download_retries_5xx_but_not_404():
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503 if len(calls) == 1 else 200, content=render_image("p", 8, 8, "png"))

    asyncio.run(_session("https://api.example.com/v1", handler).download("https://93.184.216.34/a.png"))
    assert len(calls) == 2
    calls.clear()
    with pytest.raises(DownloadError, match="404"):
        asyncio.run(
            _session(
                "https://api.example.com/v1", lambda r: (calls.append(1), httpx.Response(404))[1]
            ).download("https://93.184.216.34/a.png")
        )
    assert len(calls) == 1


def test_attempts_count_submissions_only():
    statuses = iter([503, 200, 500, 200])

    async def go() -> CallState:
        session = _session("https://api.example.com/v1", lambda r: httpx.Response(next(statuses), json={}))
        call = CallState()
        await session.send(call, "POST", "images/generations")
        await session.send(call, "GET", "tasks/1", submission=False)
        return call

    assert asyncio.run(go()).attempts == 2


# -------------------------------------------------------------------------------------- streaming


def test_generate_many_streams_lazily_in_completion_order():
    pulled: list[int] = []

    def requests() -> Iterator[ImageRequest]:
        for i in range(12):
            pulled.append(i)
            # the first request is slow to render (large), the rest are small
            yield ImageRequest(prompt=f"p{i}", quality="low", size="3840x2160" if i == 0 else "1024x1024")

    with LocalImageResource(max_concurrency=3) as local:
        stream = local.generate_many(requests())
        first = next(stream)
        assert len(pulled) <= 4  # at most max_concurrency in flight (+ the one pulled to refill)
        rest = list(stream)
    prompts = [r.request.prompt for r in [first, *rest]]
    assert sorted(prompts) == sorted(f"p{i}" for i in range(12))
    assert prompts[0] != "p0"  # completion order, not input order


@pytest.mark.parametrize("source", ["local", "emulator"])
def test_generate_many_keeps_no_result_alive(source, imggen_emulator: ProviderEmulator):
    """Dropped results are freed at once (by refcount), not left to the cyclic GC: flat memory."""
    refs: list[weakref.ref[GeneratedImage]] = []
    resource = (
        LocalImageResource(max_concurrency=4)
        if source == "local"
        else make(OpenAIImageResource, imggen_emulator, max_concurrency=4)
    )
    gc.collect()
    gc.disable()
    try:
        with resource:
            for result in resource.generate_many(
                ImageRequest(prompt=f"p{i}", quality="low") for i in range(16)
            ):
                refs.append(weakref.ref(result.images[0]))
                del result
            single = resource.generate(ImageRequest(prompt="one", quality="low"))
            refs.append(weakref.ref(single.images[0]))
            del single
            alive = sum(ref() is not None for ref in refs)
            responses = sum(isinstance(obj, httpx.Response) for obj in gc.get_objects())
    finally:
        gc.enable()
    assert alive == 0
    assert responses == 0  # no response body (megabytes of base64) waits for the cyclic GC


def test_generate_many_closed_early_cancels_in_flight(caplog, imggen_emulator: ProviderEmulator):
    imggen_emulator.inject("openai", FaultSpec("hang", delay_s=2.0, match="slow", count=None))
    requests = [ImageRequest(prompt="fast", quality="low")] + [
        ImageRequest(prompt=f"slow {i}", quality="low") for i in range(10)
    ]
    with make(OpenAIImageResource, imggen_emulator, max_concurrency=4) as openai:
        stream = openai.generate_many(requests)
        assert next(stream).request.prompt == "fast"
        with caplog.at_level(logging.WARNING, logger=LOGGER_NAME):
            stream.close()
    assert any("cancelled 3 request(s) in flight" in r.getMessage() for r in caplog.records)
    assert len(imggen_emulator.calls("openai")) <= 4  # nothing pulled from the iterable after close


def test_unexpected_exception_becomes_an_error_result():
    class Broken(LocalImageResource):
        async def _produce(self, request, call, state):  # type: ignore[override]
            raise KeyError("surprise")

    with Broken() as broken:
        (result,) = broken.generate_many([ImageRequest(prompt="p", quality="low")])
    assert type(result.error) is ImgGenError and "KeyError" in str(result.error)


def test_generate_many_smoke_against_emulator(imggen_emulator: ProviderEmulator):
    imggen_emulator.configure("openai", latency_s=0.01)
    requests = [ImageRequest(prompt=f"p{i % 3}", quality="low") for i in range(24)]
    with make(OpenAIImageResource, imggen_emulator, max_concurrency=6) as openai:
        results = list(openai.generate_many(requests))
    assert len(results) == 24 and all(r.ok for r in results)
    assert {id(r.request) for r in results} == {id(r) for r in requests}


def test_resource_is_usable_from_many_threads(imggen_emulator: ProviderEmulator):
    with make(OpenAIImageResource, imggen_emulator) as openai:
        out: list[bool] = []
        threads = [
            threading.Thread(
                target=lambda: out.append(openai.generate(ImageRequest(prompt="t", quality="low")).ok)
            )
            for _ in range(6)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert out == [True] * 6


# --------------------------------------------------------------------------------------- secrets


@pytest.mark.parametrize("cls", REMOTE)
def test_api_key_not_in_repr(cls):
    resource = cls(api_key=KEY)
    assert KEY not in repr(resource) and KEY not in str(resource)
    assert cls.idempotency_source


def test_api_key_never_leaks(imggen_emulator: ProviderEmulator, caplog, capsys, tmp_path):
    """No log record, exception message, or repr of a resource or result contains the key."""
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    imggen_emulator.configure("openai", api_key="sk-the-only-valid-key-0000")
    for cls in REMOTE:
        resource = make(cls, imggen_emulator, rate_limit=None)
        texts += [repr(resource), str(resource)]
        model = {"aigenerate": "gpt-image-1.5", "gptimage2": "gpt-image-1.5"}.get(
            cls.provider_name, "gpt-image-2"
        )
        imggen_emulator.inject(cls.provider_name, FaultSpec("status", status=503), count=1)
        imggen_emulator.inject(cls.provider_name, FaultSpec("status", status=401), count=1)
        requests = [
            ImageRequest(prompt="ok", model=model),
            ImageRequest(prompt=f"the key is {KEY}", model=model),  # even echoed back by the provider
            ImageRequest(prompt="x", model=model, size="999x999"),
        ]
        with resource:
            results = list(resource.generate_many(requests))
            with pytest.raises(ImgGenError) as info:  # OpenAI: the emulator only accepts another key
                resource.generate(ImageRequest(prompt="raise", model=model, size="999x999"))
        texts += [str(info.value), repr(info.value)]
        for result in results:
            texts += [
                repr(result),
                str(result.error),
                repr(result.error),
                repr(result.images),
                repr(result.usage),
            ]
        assert any(not r.ok for r in results)
    # a Dagster run with the key in an EnvVar
    import os

    os.environ["IMGGEN_TEST_KEY"] = KEY
    try:

        @dg.asset
        def pictures(image_provider: OpenAIImageResource) -> None:
            for result in image_provider.generate_many([ImageRequest(prompt="dagster", quality="low")]):
                dg.get_dagster_logger().info("result %r", result)

        res = dg.materialize(
            [pictures],
            resources={
                "image_provider": OpenAIImageResource(
                    api_key=dg.EnvVar("IMGGEN_TEST_KEY"), base_url=imggen_emulator.base_url("openai"), **FAST
                )
            },
        )
        assert res.success
        texts += [str(e) for e in res.all_events]
    finally:
        del os.environ["IMGGEN_TEST_KEY"]
    texts += [r.getMessage() for r in caplog.records] + [str(r.args) for r in caplog.records]
    captured = capsys.readouterr()
    texts += [captured.out, captured.err]
    leaks = [t for t in texts if KEY in t or KEY[8:] in t]
    assert not leaks, leaks[:3]
    assert any("retry" in r.getMessage() for r in caplog.records)  # the logs were really captured

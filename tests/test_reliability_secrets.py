"""Issue 5, secrets: a recognisable fake key never appears in anything a run produces.

1. A full materialisation, with failures (retried 503s and a 429, a moderation block, malformed JSON,
   a dropped connection, a 401), runs as a real ``dagster asset materialize`` subprocess against the
   emulator, the key given through ``dg.EnvVar``; then a partition where every row fails, then
   ``image_spend``, then a run whose step fails with a traceback (an output root that cannot be written). Every byte the runs produced
   is searched for the key (and for its base64 forms): captured stdout and stderr, every file under
   ``DAGSTER_HOME`` (run storage, event logs, compute logs: SQLite files read as bytes) and under the
   output root (images, manifests, the Parquet ledger, the spend table, contact sheets), plus the
   event log, asset metadata and check results as the instance returns them, and the ledger's
   error texts. It must find nothing.
2. Provider error bodies that echo the key (the emulator has no echo fault, so
   ``httpx.MockTransport`` plays the provider) come out redacted in every error type: HTTP errors,
   malformed answers, body-code errors, failed tasks, download errors, retry logs, result reprs.
"""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest

from dagster_imggen.errors import redact
from dagster_imggen.pipeline import read_ledger
from dagster_imggen.providers.aigenerate import AIGenerateImageResource
from dagster_imggen.providers.base import RemoteImageResource
from dagster_imggen.providers.gptimage2 import GPTImage2ImageResource
from dagster_imggen.providers.openai import OpenAIImageResource
from dagster_imggen.providers.piapi import PiAPIImageResource
from dagster_imggen.render import render_image
from dagster_imggen.request import ImageRequest
from dagster_imggen.testing import FaultSpec, ProviderEmulator, key_fingerprint

REPO = Path(__file__).resolve().parent.parent
DEFS = REPO / "tests" / "fixtures" / "reliability_defs.py"
DAGSTER = Path(sys.executable).parent / "dagster"
CANARY = "sk-imggen-CANARY-7f3a9c"


def needles(key: str) -> list[bytes]:
    """The key, its distinctive part, and the key base64-encoded at each of the three alignments."""
    raw = key.encode()
    out = [raw, b"CANARY"]
    for pad in (b"", b"x", b"xx"):
        encoded = base64.b64encode(pad + raw)
        out.append(encoded[len(pad) * 4 // 3 + 2 : -4])  # the stable middle of the encoding
    return out


def find_leaks(blobs: dict[str, bytes], key: str) -> list[str]:
    return [f"{where}: {n!r}" for where, data in blobs.items() for n in needles(key) if n and n in data]


def _run(env: dict[str, str], args: list[str]) -> subprocess.CompletedProcess[bytes]:
    cmd = [str(DAGSTER), "asset", "materialize", "-f", str(DEFS), *args]
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, timeout=300)


@pytest.mark.slow
def test_no_byte_of_a_failing_run_holds_the_key(tmp_path: Path) -> None:
    home, out = tmp_path / "dagster_home", tmp_path / "out"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    prompts = [f"a harmless prompt {i}" for i in range(6)]
    special = ["forbidden fruit", "garbled answer", "dropped line", "unauthorized guest"]
    table = tmp_path / "prompts.tsv"
    table.write_text(
        "Prompt\tCategory\n"
        + "".join(f"{p}\tMixed\n" for p in [*prompts, *special])
        + "".join(f"forbidden thing {i}\tBlocked\n" for i in range(3))
    )
    with ProviderEmulator(api_key=CANARY, rate_limit=None) as emu:
        emu.inject("openai", FaultSpec("status", status=503, count=2))
        emu.inject("openai", FaultSpec("status", status=429, retry_after_s=0.01))
        emu.inject(
            "openai",
            FaultSpec("status", status=400, code="moderation_blocked", match="forbidden", count=None),
        )
        emu.inject("openai", FaultSpec("malformed_json", match="garbled"))
        emu.inject("openai", FaultSpec("drop", match="dropped"))
        emu.inject(
            "openai", FaultSpec("status", status=401, match="unauthorized", message="Incorrect API key")
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RELIABILITY_", "DAGSTER_"))}
        env.update(
            DAGSTER_HOME=str(home),
            RELIABILITY_PROVIDER="openai",
            RELIABILITY_BASE_URL=emu.base_url("openai"),
            RELIABILITY_API_KEY=CANARY,
            RELIABILITY_PROMPTS=str(table),
            RELIABILITY_OUTPUT=str(out),
            RELIABILITY_TIMEOUT_S="5",
            PYTHONUNBUFFERED="1",
        )
        runs = [
            _run(env, ["--select", "generated_images", "--partition", "Mixed"]),
            _run(env, ["--select", "generated_images", "--partition", "Blocked"]),  # every row fails
            _run(env, ["--select", "image_spend"]),
        ]
        calls = emu.calls("openai", op="generate")
        # a step that fails with a traceback: an output root that cannot be written
        emu.clear_faults()
        runs.append(
            _run(
                {**env, "RELIABILITY_OUTPUT": "/dev/null/out"},
                ["--select", "generated_images", "--partition", "Mixed"],
            )
        )

    # the runs really used the key, and really failed in the ways intended
    assert calls and all(c.key_sha256 == key_fingerprint(CANARY) and c.auth_ok for c in calls)
    assert runs[0].returncode == 0 and runs[2].returncode == 0, runs[0].stderr[-2000:]
    assert runs[3].returncode != 0 and b"Stack Trace" in runs[3].stdout + runs[3].stderr
    ledger = read_ledger(str(out)).to_pylist()
    errors = [r["error"] for r in ledger if r["error"]]
    assert {e.split(":", 1)[0] for e in errors} >= {
        "ContentRejectedError",
        "MalformedResponseError",
        "TransportError",
        "AuthenticationError",
    }
    assert sum(r["status"] == "succeeded" for r in ledger) == len(prompts)

    # every byte: streams, DAGSTER_HOME (SQLite run/event storage, compute logs), outputs
    blobs: dict[str, bytes] = {}
    for i, run in enumerate(runs):
        blobs[f"run {i} stdout"] = run.stdout
        blobs[f"run {i} stderr"] = run.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in files) and any(p.suffix == ".parquet" for p in files)
    assert any(p.name == "_manifest.json" for p in files)
    for path in files:
        blobs[str(path.relative_to(tmp_path))] = path.read_bytes()
    # what the instance hands back: event log entries (with their metadata), materializations, checks
    with dg.DagsterInstance.from_config(str(home)) as instance:
        texts = []
        records = instance.get_run_records()
        assert len(records) == 4
        for record in records:
            for entry in instance.all_logs(record.dagster_run.run_id):
                texts.append(entry.to_json() if hasattr(entry, "to_json") else repr(entry))
        assert any("retry" in t for t in texts), "the retries were not logged into the event log"
        assert any("ContentRejectedError" in t or "moderation_blocked" in t for t in texts)
    blobs["event log entries"] = "\n".join(texts).encode()
    blobs["ledger errors"] = "\n".join(errors).encode()
    assert not find_leaks(blobs, CANARY), find_leaks(blobs, CANARY)[:10]


# ------------------------------------------------------------------------ echoed keys in error bodies

#: A key NOT shaped like ``sk-...``: only redaction of the configured key itself can hide it.
PLAIN = "9f8e7d6c5b4a3928CANARYplainhex1706"


def _with(
    cls: type[RemoteImageResource], handler: Callable[[httpx.Request], httpx.Response], **kw: Any
) -> Any:
    resource = cls(
        api_key=PLAIN,
        base_url="https://api.provider.example/v1",
        max_retries=1,
        backoff_base_s=0.001,
        backoff_max_s=0.002,
        poll_interval_s=0.01,
        task_deadline_s=2.0,
        **kw,
    )
    resource._transport = httpx.MockTransport(handler)
    return resource


_PNG = render_image("x", 1024, 1024, "png")


def _echo_cases() -> dict[
    str, tuple[type[RemoteImageResource], dict[str, Any], Callable[[httpx.Request], httpx.Response]]
]:
    echo = f"Incorrect API key provided: {PLAIN}. Authorization: Bearer {PLAIN}"

    def http_401(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401, json={"error": {"message": echo, "type": "invalid_request_error", "code": "invalid_api_key"}}
        )

    def http_500_text(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text=f"<html>upstream said: {echo}</html>")

    def not_json(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=f"oops {echo}")

    def body_code(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"code": 401, "msg": echo, "data": None})

    def task_failed(request: httpx.Request) -> httpx.Response:
        body = {"task_id": "t1", "status": "failed", "error": {"code": "x", "message": echo}}
        return httpx.Response(200, json={"code": 200, "message": "success", "data": body})

    def download_403(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.provider.example":
            return httpx.Response(
                200, json={"created": 1, "data": [{"url": "https://cdn.provider.example/i.png"}]}
            )
        return httpx.Response(403, text=f"denied: {echo}")

    return {
        "http-401-json": (OpenAIImageResource, {}, http_401),
        "http-500-html": (OpenAIImageResource, {}, http_500_text),
        "200-not-json": (OpenAIImageResource, {}, not_json),
        "kie-body-code": (AIGenerateImageResource, {"rate_limit": None}, body_code),
        "task-failed-message": (PiAPIImageResource, {"mode": "async"}, task_failed),
        "download-403-page": (GPTImage2ImageResource, {}, download_403),
    }


_MODELS = {
    OpenAIImageResource: ("gpt-image-2", "low"),
    AIGenerateImageResource: ("gpt-image-1.5", "medium"),
    PiAPIImageResource: ("gpt-image-2", "low"),
    GPTImage2ImageResource: ("gpt-image-1.5", "standard"),
}


@pytest.mark.parametrize("case", list(_echo_cases()))
def test_key_echoed_by_the_provider_is_redacted(
    case: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *a, **k: real(
            "93.184.216.34" if host == "cdn.provider.example" else host, port, *a, **k
        ),
    )
    caplog.set_level(logging.DEBUG)
    cls, extra, handler = _echo_cases()[case]
    model, quality = _MODELS[cls]
    with _with(cls, handler, **extra) as resource:
        (result,) = list(resource.generate_many([ImageRequest(prompt="p", model=model, quality=quality)]))
        assert PLAIN not in repr(resource) and PLAIN not in str(resource)
    assert result.error is not None, case
    texts = [
        str(result.error),
        repr(result.error),
        repr(result),
        repr(result.error.args),
        *(r.getMessage() for r in caplog.records),
        *(str(r.exc_info) for r in caplog.records if r.exc_info),
        *capsys.readouterr(),
    ]
    leaks = [t for t in texts if PLAIN in t or "CANARY" in t]
    assert not leaks, leaks
    assert "***" in str(result.error) or case == "download-403-page", str(result.error)


def test_redact_hides_the_key_and_key_shaped_strings() -> None:
    text = f"key={PLAIN} Authorization: Bearer {PLAIN} x-api-key: {PLAIN} other sk-live-abcdef123456"
    cleaned = redact(text, PLAIN)
    assert PLAIN not in cleaned and "CANARY" not in cleaned and "sk-live-abcdef123456" not in cleaned
    assert redact(f"token: {CANARY}") == "token: ***"

"""Issue 5, fault matrix: every provider x every fault, through the pipeline factory.

One parametrised suite: six providers (each on its most telling route) x the faults 1-12 of the
issue. Each case runs a two-row prompt table (the ``target`` row, hit by the fault, and a
``bystander`` row) through ``build_image_generation_assets`` against the emulator and asserts:

- the outcome of the target request (succeeded after retry, or a typed error in the ledger);
- how many submissions (and downloads) of the target the emulator received;
- the ledger rows (status, attempts, possibly_billed, cost) and that the bystander went on;
- the images on disk;
- what the emulator says the provider billed for the target, and that every billed call shows
  in the ledger as a paid row or as ``possibly_billed``;
- every retry, with its reason and wait, in the Dagster event log (the library logs through
  ``dagster.get_dagster_logger``, captured with no ``python_logs`` setting).

Combinations a provider's wire cannot express are skipped with the reason in the skip message.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from dagster_imggen.errors import (
    AuthenticationError,
    ContentRejectedError,
    DownloadError,
    ImageDecodeError,
    ImgGenError,
    InsufficientCreditsError,
    MalformedResponseError,
    RetryableProviderError,
    TaskCancelledError,
    TaskFailedError,
    TaskTimeoutError,
    TransportError,
)
from dagster_imggen.pipeline import PromptSource, build_image_generation_assets, read_ledger
from dagster_imggen.pipeline.store import IMAGE_NAME
from dagster_imggen.providers.aigenerate import AIGenerateImageResource
from dagster_imggen.providers.apiyi import APIYIImageResource
from dagster_imggen.providers.base import RateLimit, RemoteImageResource
from dagster_imggen.providers.gptimage2 import GPTImage2ImageResource
from dagster_imggen.providers.openai import OpenAIImageResource
from dagster_imggen.providers.piapi import PiAPIImageResource
from dagster_imggen.providers.pixapi import PixapiImageResource
from dagster_imggen.request import ImageRequest
from dagster_imggen.result import GeneratedImage
from dagster_imggen.testing import FaultSpec, ProviderEmulator, RecordedRequest

KEY = "sk-imggen-matrix-0f1e2d3c4b5a"
MAX_RETRIES = 2
#: Fast but real client settings (seconds): tiny backoff, short polls, a short task deadline.
FAST: dict[str, Any] = {
    "max_retries": MAX_RETRIES,
    "backoff_base_s": 0.005,
    "backoff_max_s": 0.02,
    "poll_interval_s": 0.02,
    "task_deadline_s": 5.0,
    "timeout_s": 5.0,
    "connect_timeout_s": 2.0,
}
#: The read timeout used by the timeout cases, and the stall that exceeds it (seconds).
SHORT_TIMEOUT_S = 0.5
STALL_S = 1.5


@dataclass(frozen=True)
class Route:
    """One provider on the route the matrix exercises."""

    cls: type[RemoteImageResource]
    config: dict[str, Any]
    defaults: dict[str, Any]
    tasks: bool  # async task or job, polled
    urls: bool  # images arrive as URLs to download
    body_codes: bool = False  # a 2xx body carries its own status code (Kie jobs, PiAPI task wrapper)
    bills_at_creation: bool = False  # the provider charges when the task is created, whatever follows

    @property
    def idempotent(self) -> bool:
        return self.cls.idempotent


ROUTES: dict[str, Route] = {
    "openai": Route(
        OpenAIImageResource, {}, {"model": "gpt-image-2", "quality": "low"}, tasks=False, urls=False
    ),
    "piapi": Route(
        PiAPIImageResource,
        {"mode": "async", "response_format": "url"},
        {"model": "gpt-image-2", "quality": "low"},
        tasks=True,
        urls=True,
        body_codes=True,
    ),
    "pixapi": Route(
        PixapiImageResource,
        {"mode": "async"},
        {"model": "gpt-image-2", "quality": "low"},
        tasks=True,
        urls=True,
        bills_at_creation=True,
    ),
    "apiyi": Route(
        APIYIImageResource, {}, {"model": "gpt-image-2", "quality": "low"}, tasks=False, urls=False
    ),
    "aigenerate": Route(
        AIGenerateImageResource,
        {"rate_limit": None},
        {"model": "gpt-image-1.5", "quality": "medium"},
        tasks=True,
        urls=True,
        body_codes=True,
        bills_at_creation=True,
    ),
    "gptimage2": Route(
        GPTImage2ImageResource,
        {},
        {"model": "gpt-image-1", "quality": "standard"},
        tasks=True,
        urls=True,
    ),
}


@dataclass(frozen=True)
class Expect:
    """What the target row must come to."""

    error: type[ImgGenError] | None  # None: succeeded
    submits: int  # submissions of the target the emulator received
    billed: int  # calls the provider bills for the target
    possibly_billed: bool = False
    downloads: int | None = None  # downloads of the target's images (URL routes)
    attempts: int | None = None  # ledger attempts (default: submits)
    bystander_ok: bool = True


@dataclass
class Plan:
    """How to provoke one fault and what must follow."""

    expect: Expect
    faults: list[FaultSpec] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)  # resource overrides
    emulator: dict[str, Any] = field(default_factory=dict)  # emulator.configure(...) for the provider
    base_url: str | None = None
    #: Extra checks on the retry log lines (delay in seconds, message).
    log_check: Callable[[list[tuple[float, str]]], None] | None = None


def _target(**kw: Any) -> FaultSpec:
    return FaultSpec(match="target ", **kw)


def _did_work_billing(route: Route) -> int:
    """Calls billed when the provider did the work but the answer was lost or unusable."""
    return 1


def _task_billing(route: Route) -> int:
    """Calls billed for a task that failed, was cancelled or never finished."""
    return 1 if route.bills_at_creation else 0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _delays_between(lo: float, hi: float) -> Callable[[list[tuple[float, str]]], None]:
    def check(lines: list[tuple[float, str]]) -> None:
        assert lines, "no retry was logged"
        for delay, message in lines:
            assert lo <= delay < hi, (delay, message)
            assert "429" in message, message

    return check


def plan(case: str, name: str) -> Plan | str:
    """The plan of one case for one provider, or the reason it cannot be expressed."""
    r = ROUTES[name]
    retries = MAX_RETRIES + 1
    # 1. 429 with retry-after-ms (fault) and with retry-after in whole seconds (the emulator's limiter)
    if case == "f01-429-retry-after-ms":
        return Plan(
            Expect(None, submits=2, billed=1),
            faults=[_target(kind="status", status=429, retry_after_s=0.05)],
            log_check=_delays_between(0.05, 1.0),  # the ms header wins over the rounded-up seconds
        )
    if case == "f01-429-retry-after-seconds":
        # Limit 1 per 0.3 s, header in whole seconds only: one of the two rows gets 429 + retry-after: 1.
        return Plan(
            Expect(None, submits=0, billed=1),  # submits checked over both rows below
            emulator={"rate_limit": (1, 0.3), "retry_after_ms": False},
            log_check=_delays_between(1.0, 30.0),
        )
    # 2. 500/502/503 on the first k attempts, then on every attempt
    m = re.fullmatch(r"f02-(\d{3})-(first-k|every)", case)
    if m:
        status, every = int(m[1]), m[2] == "every"
        if name == "pixapi" and status == 502:
            return (
                "pixapi documents only 429/500/503 as retryable: a 502 is terminal (see f02 pixapi-502 test)"
            )
        if every:
            return Plan(
                Expect(RetryableProviderError, submits=retries, billed=0),
                faults=[_target(kind="status", status=status, count=None)],
            )
        return Plan(
            Expect(None, submits=3, billed=1), faults=[_target(kind="status", status=status, count=2)]
        )
    # 3. connection refused; reset before any response byte
    if case == "f03-connection-refused":
        return Plan(
            Expect(TransportError, submits=0, billed=0, attempts=retries, bystander_ok=False),
            base_url=f"http://127.0.0.1:{_closed_port()}/{name}",
        )
    if case == "f03-reset-before-response":
        # The request was sent: the client cannot know it was not processed (the emulator did not bill it).
        if r.idempotent:
            return Plan(
                Expect(None, submits=2, billed=1, possibly_billed=True), faults=[_target(kind="reset")]
            )
        return Plan(
            Expect(TransportError, submits=1, billed=0, possibly_billed=True), faults=[_target(kind="reset")]
        )
    # 4. read timeout after sending (hang), and a drop after processing: possibly billed, never re-sent
    #    blindly on a provider that is not idempotent
    if case in ("f04-read-timeout", "f04-drop-after-processing"):
        fault = _target(kind="hang", delay_s=STALL_S) if case == "f04-read-timeout" else _target(kind="drop")
        config = {"timeout_s": SHORT_TIMEOUT_S} if case == "f04-read-timeout" else {}
        if r.idempotent:  # AI Generate documents idempotent retries; the emulator bills each creation
            return Plan(
                Expect(None, submits=2, billed=2, possibly_billed=True), faults=[fault], config=config
            )
        return Plan(
            Expect(TransportError, submits=1, billed=_did_work_billing(r), possibly_billed=True),
            faults=[fault],
            config=config,
        )
    # 5. 200 with malformed JSON: the provider did the work
    if case == "f05-malformed-json":
        return Plan(
            Expect(MalformedResponseError, submits=1, billed=_did_work_billing(r), possibly_billed=True),
            faults=[_target(kind="malformed_json")],
        )
    # 6. 200 with an error body
    if case == "f06-error-body-503":
        if r.body_codes:  # the body code is the status: retried like an HTTP 503
            return Plan(Expect(None, submits=2, billed=1), faults=[_target(kind="error_body", status=503)])
        # OpenAI-shaped routes have no body status: a typed MalformedResponseError, not retried, not billed
        return Plan(
            Expect(MalformedResponseError, submits=1, billed=0),
            faults=[_target(kind="error_body", status=503)],
        )
    if case == "f06-error-body-422":
        if not r.body_codes:
            return f"{name}: a 200 error body has no status code on this wire (f06-error-body-503 covers it)"
        return Plan(
            Expect(ContentRejectedError, submits=1, billed=0), faults=[_target(kind="error_body", status=422)]
        )
    # 7 and 8. truncated or corrupt image data, an image of another size: paid for, not usable
    if case in ("f07-truncated-image", "f07-corrupt-image", "f08-wrong-size"):
        kind = {"f07-truncated-image": "truncated_b64", "f07-corrupt-image": "corrupt_image"}.get(
            case, "wrong_size"
        )
        return Plan(
            Expect(
                ImageDecodeError,
                submits=1,
                billed=_did_work_billing(r),
                possibly_billed=True,
                downloads=1 if r.urls else None,
            ),
            faults=[_target(kind=kind)],
        )
    # 9. the download URL answers 404/403/expired (410), 503, or is slow
    m = re.fullmatch(r"f09-url-(404|403|410|503|slow)", case)
    if m:
        if not r.urls:
            return f"{name}: images come inline as b64_json on this route; there is no download URL"
        what = m[1]
        if what == "slow":
            return Plan(
                Expect(None, submits=1, billed=1, downloads=2),
                faults=[_target(kind="slow_download", delay_s=STALL_S)],
                config={"timeout_s": SHORT_TIMEOUT_S},
            )
        if what == "503":
            return Plan(
                Expect(None, submits=1, billed=1, downloads=2),
                faults=[_target(kind="status", status=503, on="download")],
            )
        return Plan(
            Expect(DownloadError, submits=1, billed=1, possibly_billed=True, downloads=1),
            faults=[_target(kind="expired_url", status=int(what))],
        )
    # 10. an async task that fails, is cancelled, or never finishes before the deadline
    m = re.fullmatch(r"f10-task-(failed|cancelled|deadline)", case)
    if m:
        if not r.tasks:
            return f"{name}: synchronous route, no async task"
        what = m[1]
        if what == "cancelled" and name == "aigenerate":
            return "aigenerate: Kie jobs have no cancelled state (a cancelled job reads as state=fail)"
        billed = _task_billing(r)
        if what == "deadline":
            return Plan(
                Expect(TaskTimeoutError, submits=1, billed=billed, possibly_billed=True),
                faults=[_target(kind="task_stuck")],
                config={"task_deadline_s": 0.4},
            )
        error: type[ImgGenError] = TaskFailedError if what == "failed" else TaskCancelledError
        kind = "task_fail" if what == "failed" else "task_cancel"
        return Plan(
            Expect(error, submits=1, billed=billed, possibly_billed=bool(billed)), faults=[_target(kind=kind)]
        )
    # 11. 401, 402, 422 and moderation_blocked: terminal at once
    m = re.fullmatch(r"f11-(401|402|422|moderation-blocked)", case)
    if m:
        if m[1] == "moderation-blocked":
            if r.body_codes:
                return f"{name}: its error body carries numeric codes only; content rejection is its 422"
            return Plan(
                Expect(ContentRejectedError, submits=1, billed=0),
                faults=[_target(kind="status", status=400, code="moderation_blocked")],
            )
        status = int(m[1])
        error = {401: AuthenticationError, 402: InsufficientCreditsError, 422: ContentRejectedError}[status]
        return Plan(Expect(error, submits=1, billed=0), faults=[_target(kind="status", status=status)])
    raise AssertionError(f"unknown case {case}")


CASES = [
    "f01-429-retry-after-ms",
    "f01-429-retry-after-seconds",
    *(f"f02-{s}-{w}" for s in (500, 502, 503) for w in ("first-k", "every")),
    "f03-connection-refused",
    "f03-reset-before-response",
    "f04-read-timeout",
    "f04-drop-after-processing",
    "f05-malformed-json",
    "f06-error-body-503",
    "f06-error-body-422",
    "f07-truncated-image",
    "f07-corrupt-image",
    "f08-wrong-size",
    *(f"f09-url-{w}" for w in ("404", "403", "410", "503", "slow")),
    *(f"f10-task-{w}" for w in ("failed", "cancelled", "deadline")),
    *(f"f11-{w}" for w in ("401", "402", "422", "moderation-blocked")),
]


def _params() -> list[Any]:
    out = []
    for case in CASES:
        for name in ROUTES:
            p = plan(case, name)
            marks = [pytest.mark.skip(reason=p)] if isinstance(p, str) else []
            out.append(pytest.param(case, name, id=f"{case}-{name}", marks=marks))
    return out


# ------------------------------------------------------------------------------------------ helpers


@pytest.fixture
def emu() -> Any:
    with ProviderEmulator(task_s=0.05, rate_limit=None) as e:
        yield e


_INSTANCE: list[dg.DagsterInstance] = []


def _instance() -> dg.DagsterInstance:
    """One ephemeral instance for the module (runs are told apart by run id), default settings."""
    if not _INSTANCE:
        _INSTANCE.append(dg.DagsterInstance.ephemeral())
    return _INSTANCE[0]


def _resource(name: str, base_url: str, **overrides: Any) -> RemoteImageResource:
    route = ROUTES[name]
    return route.cls(api_key=KEY, base_url=base_url, **{**FAST, **route.config, **overrides})


@dataclass
class Outcome:
    rows: dict[str, dict[str, Any]]  # prompt_id -> ledger row
    images: dict[str, list[Path]]  # prompt_id -> image files
    run: dg.ExecuteInProcessResult
    logs: list[str]


def run_pipeline(
    tmp_path: Path, name: str, resource: RemoteImageResource, prompts: dict[str, str]
) -> Outcome:
    """Materialise the images asset over ``prompts`` (id -> text) into ``tmp_path/out``."""
    table = tmp_path / "prompts.csv"
    table.write_text("id,Prompt\n" + "".join(f"{k},{v}\n" for k, v in prompts.items()))
    out = tmp_path / "out"
    pipeline = build_image_generation_assets(
        prompts=PromptSource(url=str(table), id_column="id"),
        output_root=str(out),
        partitioning="none",
        provider_name=name,
        defaults={**ROUTES[name].defaults, "size": "1024x1024"},
    )
    instance = _instance()
    result = dg.materialize(
        [pipeline.images_asset],
        resources={"image_provider": resource},
        instance=instance,
        raise_on_error=False,
    )
    rows = {r["prompt_id"]: r for r in read_ledger(str(out)).to_pylist()}
    images: dict[str, list[Path]] = {}
    for path in sorted((out / "images").rglob("*")):
        m = IMAGE_NAME.match(path.name)
        if m:
            images.setdefault(m["prompt_id"], []).append(path)
    logs = [e.user_message for e in instance.all_logs(result.run_id)]
    return Outcome(rows, images, result, logs)


_RETRY = re.compile(r"retry \d+/\d+ of (?P<what>\S+) .* in (?P<delay>[\d.]+)s: (?P<reason>.*)")


def retry_lines(logs: list[str], downloads: bool = False) -> list[tuple[float, str]]:
    out = []
    for message in logs:
        m = _RETRY.search(message)
        if m and (m["what"] == "download") == downloads:
            out.append((float(m["delay"]), m["reason"]))
    return out


def _submits(emu: ProviderEmulator, name: str, marker: str) -> list[RecordedRequest]:
    return [
        r
        for r in emu.calls(name)
        if r.op in ("generate", "edit") and r.prompt is not None and r.prompt.startswith(marker)
    ]


def _billed_for(emu: ProviderEmulator, name: str, calls: list[RecordedRequest]) -> int:
    ids = {c.request_id for c in calls if c.request_id}
    return sum(1 for e in emu.billed(name).entries if e.request_id in ids)


def _assert_image_files(paths: list[Path]) -> None:
    for path in paths:
        image = GeneratedImage.from_bytes(path.read_bytes())
        assert image.size == "1024x1024", path


# ---------------------------------------------------------------------------------------- the matrix


@pytest.mark.parametrize(("case", "name"), _params())
def test_fault_matrix(case: str, name: str, emu: ProviderEmulator, tmp_path: Path) -> None:
    p = plan(case, name)
    assert isinstance(p, Plan)
    route, want = ROUTES[name], p.expect
    for spec in p.faults:
        emu.inject(name, spec)
    if p.emulator:
        emu.configure(name, **p.emulator)
    target, bystander = f"target {name} {case}", f"bystander {name} {case}"
    resource = _resource(name, p.base_url or emu.base_url(name), **p.config)
    with resource:
        out = run_pipeline(tmp_path, name, resource, {"target": target, "bystander": bystander})
    assert out.run.success  # a provider fault never fails the asset: it is recorded
    emu.advance(60.0)  # let every task the provider still runs reach its end (and be billed)

    if case == "f01-429-retry-after-seconds":  # both rows are equal here: one of them waited
        rows = list(out.rows.values())
        assert [r["status"] for r in rows] == ["succeeded", "succeeded"]
        assert sorted(r["attempts"] for r in rows) == [1, 2]
        calls = _submits(emu, name, "")
        assert len(calls) == 3 and sorted(c.status or 0 for c in calls) == [200, 200, 429]
        assert _billed_for(emu, name, calls) == 2
        assert sorted(out.images) == ["bystander", "target"]
        p.log_check(retry_lines(out.logs)) if p.log_check else None
        return

    row = out.rows["target"]
    other = out.rows["bystander"]
    # the outcome, in the ledger
    if want.error is None:
        assert row["status"] == "succeeded", row["error"]
        assert row["error"] is None and row["cost_usd"] > 0
        assert len(row["image_uris"]) == 1
    else:
        assert row["status"] == "failed"
        assert row["error"].startswith(f"{want.error.__name__}:"), row["error"]
        assert row["image_uris"] == [] and row["cost_usd"] == 0
        assert KEY not in row["error"]
    assert row["attempts"] == (want.attempts if want.attempts is not None else want.submits)
    assert row["possibly_billed"] is want.possibly_billed, row
    # the rest of the batch went on
    if want.bystander_ok:
        assert other["status"] == "succeeded" and other["attempts"] == 1 and not other["possibly_billed"]
    else:
        assert other["status"] == "failed"
    # the images on disk
    assert len(out.images.get("target", [])) == (1 if want.error is None else 0)
    assert len(out.images.get("bystander", [])) == (1 if want.bystander_ok else 0)
    for paths in out.images.values():
        _assert_image_files(paths)
    # what the emulator received and what the provider billed
    calls = _submits(emu, name, "target ")
    assert len(calls) == want.submits, [(c.status, c.fault) for c in calls]
    billed = _billed_for(emu, name, calls)
    assert billed == want.billed
    if billed:  # every billed call is a paid row, or flagged possibly_billed
        assert row["cost_usd"] > 0 or row["possibly_billed"]
    if want.error is None and billed == 1:
        (entry,) = [e for e in emu.billed(name).entries if e.request_id in {c.request_id for c in calls}]
        assert row["cost_usd"] == entry.usd  # the ledger's cost is what the provider charged
    if want.downloads is not None:
        downloads = len(emu.calls(name, op="download")) - (1 if want.bystander_ok else 0)
        assert downloads == want.downloads
        assert len(retry_lines(out.logs, downloads=True)) == want.downloads - 1
    accepted = want.error not in (
        MalformedResponseError,
        ContentRejectedError,
        RetryableProviderError,
        TransportError,
    )
    if route.tasks and want.submits and accepted:
        assert emu.calls(name, op="poll"), "the task was never polled"
    # every retry of a submission, with its reason, is in the Dagster event log
    lines = retry_lines(out.logs)
    assert len(lines) == sum(r["attempts"] - 1 for r in out.rows.values()), lines
    if p.log_check is not None:
        p.log_check(lines)


def test_pixapi_502_is_terminal_as_documented(emu: ProviderEmulator, tmp_path: Path) -> None:
    """Pixapi retries only 429, 500 and 503 (001_d01986769ffd2010.txt): a 502 on its non-idempotent
    async creation is not re-sent."""
    emu.inject("pixapi", _target(kind="status", status=502, count=None))
    with _resource("pixapi", emu.base_url("pixapi")) as resource:
        out = run_pipeline(
            tmp_path, "pixapi", resource, {"target": "target 502", "bystander": "bystander 502"}
        )
    row = out.rows["target"]
    assert row["status"] == "failed" and row["attempts"] == 1
    assert len(_submits(emu, "pixapi", "target ")) == 1
    assert out.rows["bystander"]["status"] == "succeeded"


# ------------------------------------------------------------------------- 12. the rate limit, many runs


RATE = (4, 0.4)  # requests per period_s, on the emulator and on each client


@pytest.mark.parametrize("name", list(ROUTES))
def test_f12_requests_queue_under_the_rate_limit(name: str, emu: ProviderEmulator, tmp_path: Path) -> None:
    """Ten rows at once against a limit of 4 per 0.4 s: the client paces them; none is rejected."""
    emu.configure(name, rate_limit=RATE, retry_after_ms=True)
    prompts = {f"p{i}": f"queued {name} {i}" for i in range(10)}
    resource = _resource(name, emu.base_url(name), rate_limit=RateLimit(requests=RATE[0], period_s=RATE[1]))
    with resource:
        out = run_pipeline(tmp_path, name, resource, prompts)
    assert {r["status"] for r in out.rows.values()} == {"succeeded"}
    calls = _submits(emu, name, "queued ")
    rejected = [c for c in calls if c.status == 429]
    assert len(calls) == 10 + len(rejected)
    assert len(rejected) <= 2  # queued client-side; at most network jitter on a loaded machine
    assert sum(r["attempts"] for r in out.rows.values()) == len(calls)
    assert len(out.images) == 10


def test_f12_concurrent_runs_share_the_limit_without_a_storm(emu: ProviderEmulator) -> None:
    """Three runs at once (three resources, as three run processes would have), each pacing itself at
    the provider's whole limit, against one shared key: three times what the key allows. The provider
    answers 429 to the excess; every client waits the ``retry-after-ms`` it was given plus jitter, so
    the clients spread out instead of coming back together. Every request succeeds, and the 429s stay
    bounded: at most (clients - 1) per request, the share a fair queue of three would turn away,
    never a growing storm. (Across processes, the Dagster pool ``imggen_<provider>`` is what
    serialises runs; see the next test.)"""
    emu.configure("openai", rate_limit=RATE, retry_after_ms=True)
    per_run, clients = 6, 3
    results: dict[int, list[Any]] = {}

    def run(i: int) -> None:
        resource = _resource(
            "openai",
            emu.base_url("openai"),
            max_retries=8,
            backoff_base_s=0.05,
            backoff_max_s=0.4,
            rate_limit=RateLimit(requests=RATE[0], period_s=RATE[1]),
        )
        requests = [ImageRequest(prompt=f"storm {i} {j}", quality="low") for j in range(per_run)]
        with resource:
            results[i] = list(resource.generate_many(requests))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    flat = [r for rs in results.values() for r in rs]
    calls = _submits(emu, "openai", "storm ")
    rejected = [c for c in calls if c.status == 429]
    print(
        f"storm: {len(rejected)} x 429 for {3 * per_run} requests; failed: {[r.error for r in flat if not r.ok]}"
    )
    assert len(flat) == clients * per_run and all(r.ok for r in flat), [r.error for r in flat if not r.ok]
    assert len(calls) == clients * per_run + len(rejected)
    assert sum(r.attempts for r in flat) == len(calls)  # every retry is counted on its result
    assert len(rejected) <= (clients - 1) * clients * per_run  # bounded: no storm
    assert emu.billed("openai").calls == clients * per_run


def test_the_images_asset_runs_in_the_providers_pool() -> None:
    """Concurrent runs of one provider share the Dagster pool ``imggen_<provider>``: with a pool
    limit the instance queues them instead of letting them storm the provider."""
    pipeline = build_image_generation_assets(
        prompts=PromptSource(url="memory://unused/prompts.csv"),
        output_root="memory://unused/out",
        partitioning="none",
        provider_name="openai",
    )
    assert pipeline.images_asset.op.pool == "imggen_openai"

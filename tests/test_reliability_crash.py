"""Issue 5, crash and resume: SIGKILL a real ``dagster asset materialize`` midway, start it again.

A partition of 300 prompts runs in a subprocess (``tests/fixtures/reliability_defs.py``) against the
emulator in this process. Once the store holds about a third of the images, the whole process group
is killed with SIGKILL; then the same command runs again to the end, and ``image_spend`` is
materialised. Afterwards:

1. every image delivered before the kill is on disk, unchanged, and named by a paid ledger row;
2. no prompt was requested twice unless its first request was never answered (the emulator's record
   against the images on disk at the kill);
3. the final image set is complete (one image per prompt, ``reconcile`` clean);
4. ``image_spend`` counts each paid call exactly once: its total equals what the emulator billed,
   less exactly the calls that were in flight at the kill (billed, never delivered, asked again).

The same runs with the store on a moto S3 server (and Pixapi's async tasks as the provider).
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from dagster_imggen.pipeline import read_ledger, reconcile
from dagster_imggen.pipeline.store import IMAGE_NAME
from dagster_imggen.testing import ProviderEmulator, RecordedRequest

REPO = Path(__file__).resolve().parent.parent
DEFS = REPO / "tests" / "fixtures" / "reliability_defs.py"
DAGSTER = Path(sys.executable).parent / "dagster"
KEY = "sk-imggen-crash-5e6f7a8b9c0d"
PROMPTS = 300
PARTITION = "Big"

pytestmark = pytest.mark.slow


def _write_prompts(path: Path) -> list[str]:
    prompts = [f"crash test prompt number {i:04d}" for i in range(PROMPTS)]
    lines = ["Prompt\tCategory", *(f"{p}\t{PARTITION}" for p in prompts), "a lone extra prompt\tSmall"]
    path.write_text("\n".join(lines) + "\n")
    return prompts


class Store:
    """Lists image files (``{path: bytes}``) under the output root, local or S3."""

    def __init__(self, root: str, storage: dict[str, Any]) -> None:
        import fsspec

        self.root = root
        self.storage = storage
        self.fs, self.path = fsspec.core.url_to_fs(root, **storage)

    def images(self) -> dict[str, str]:
        """``{file name: path}`` of every finished image (temp files excluded)."""
        base = f"{self.path.rstrip('/')}/images"
        self.fs.invalidate_cache()
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return {}
        return {p.rsplit("/", 1)[-1]: p for p in found if IMAGE_NAME.match(p.rsplit("/", 1)[-1])}

    def read(self, path: str) -> bytes:
        return bytes(self.fs.cat_file(path))


def _env(
    tmp_path: Path, emu: ProviderEmulator, provider: str, output: str, extra: dict[str, str]
) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELIABILITY_", "DAGSTER_"))}
    env.update(
        DAGSTER_HOME=str(home),
        RELIABILITY_PROVIDER=provider,
        RELIABILITY_BASE_URL=emu.base_url(provider),
        RELIABILITY_API_KEY=KEY,
        RELIABILITY_PROMPTS=str(tmp_path / "prompts.tsv"),
        RELIABILITY_OUTPUT=output,
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def _materialize(
    env: dict[str, str], select: str, partition: str | None, log: Path
) -> subprocess.Popen[bytes]:
    cmd = [str(DAGSTER), "asset", "materialize", "-f", str(DEFS), "--select", select]
    if partition:
        cmd += ["--partition", partition]
    with log.open("ab") as out:
        # A session of its own: the kill reaches the run and any child process it started.
        return subprocess.Popen(
            cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _wait(proc: subprocess.Popen[bytes], log: Path, timeout: float = 240) -> None:
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise AssertionError(f"dagster did not finish in {timeout}s:\n{log.read_text()[-3000:]}") from None
    assert rc == 0, log.read_text()[-3000:]


def _kill_at_a_third(proc: subprocess.Popen[bytes], store: Store, log: Path) -> float:
    """SIGKILL the process group once a third of the images are on disk; return the kill time."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before the kill:\n{log.read_text()[-3000:]}")
        if len(store.images()) >= PROMPTS // 3:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return time.time()
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("no progress before the deadline")


def _submits(emu: ProviderEmulator, provider: str) -> list[RecordedRequest]:
    return [r for r in emu.calls(provider) if r.op in ("generate", "edit") and r.prompt]


def crash_and_resume(
    tmp_path: Path,
    emu: ProviderEmulator,
    provider: str,
    output: str,
    storage: dict[str, Any],
    extra_env: dict[str, str],
) -> None:
    prompts = _write_prompts(tmp_path / "prompts.tsv")
    env = _env(tmp_path, emu, provider, output, extra_env)
    store = Store(output, storage)
    log = tmp_path / "dagster.log"

    # -- run 1, killed midway
    first = _materialize(env, "generated_images", PARTITION, log)
    killed_at = _kill_at_a_third(first, store, log)
    assert first.returncode == -signal.SIGKILL
    time.sleep(0.3)  # answers already on the wire land in closed sockets; the record is complete
    at_kill = {name: store.read(path) for name, path in store.images().items()}
    submits_at_kill = len(_submits(emu, provider))
    assert PROMPTS // 3 <= len(at_kill) < PROMPTS, len(at_kill)
    assert submits_at_kill < PROMPTS

    # -- run 2, to the end; then the spend table
    _wait(_materialize(env, "generated_images", PARTITION, log), log)
    _materialize_spend(env)
    emu.advance(60.0)  # let any task still running on the provider's side end (and be billed)

    final = store.images()
    by_prompt_id = Counter(IMAGE_NAME.match(n)["prompt_id"] for n in final)  # type: ignore[index]
    ledger = read_ledger(output, storage).to_pylist()
    ledger_big = [r for r in ledger if r["partition_key"] == PARTITION]
    paid = [r for r in ledger_big if r["status"] == "succeeded" and r["cost_usd"] > 0]
    paid_uris = {u.rsplit("/", 1)[-1]: r for r in paid for u in r["image_uris"]}

    # 1. every image delivered before the kill is still there, unchanged, and in the ledger as paid
    for name, data in at_kill.items():
        assert name in final, name
        assert store.read(final[name]) == data
    unledgered = sorted(set(at_kill) - set(paid_uris))
    assert not unledgered, f"{len(unledgered)} images delivered before the kill have no paid ledger row"

    # 2. no prompt requested twice unless its first request was never answered
    calls = _submits(emu, provider)
    by_prompt: dict[str, list[RecordedRequest]] = {}
    for c in calls:
        by_prompt.setdefault(c.prompt or "", []).append(c)
    prompt_by_id = {_prompt_id(i, p): p for i, p in enumerate(prompts)}
    delivered_prompts = {prompt_by_id[IMAGE_NAME.match(name)["prompt_id"]] for name in at_kill}  # type: ignore[index]
    assert len(delivered_prompts) == len(at_kill)
    repeated = {p: cs for p, cs in by_prompt.items() if len(cs) > 1}
    for prompt, cs in repeated.items():
        assert prompt not in delivered_prompts, f"{prompt!r} was delivered, yet requested {len(cs)} times"
        assert len(cs) == 2 and cs[0].timestamp <= killed_at < cs[1].timestamp, prompt
    assert set(by_prompt) == set(prompts)  # "a lone extra prompt" (another partition) never ran

    # 3. the final image set is complete: one image per prompt of the partition, reconcile clean
    assert len(final) == PROMPTS and set(by_prompt_id) == set(prompt_by_id)
    assert set(by_prompt_id.values()) == {1}
    report = reconcile(output, storage, partition_keys=[PARTITION])
    assert report.ok, report

    # 4. image_spend counts each paid call once: emulator's bill == spend + the calls lost at the kill
    billed = emu.billed(provider)
    lost_ids = {cs[0].request_id for cs in repeated.values()}
    lost = [e for e in billed.entries if e.request_id in lost_ids]
    spend = pq.read_table(_spend_path(output), filesystem=store.fs if storage else None).to_pylist()
    spend_usd = sum((Decimal(str(r["cost_usd"])) for r in spend), Decimal(0))
    recovered = sum(1 for r in paid if (r.get("note") or "").startswith("recovered"))
    print(
        f"\ncrash/{provider}: {len(at_kill)} images at the kill, {submits_at_kill} submissions before it, "
        f"{len(repeated)} asked again, {recovered} rows recovered, billed {billed.calls} calls ${billed.usd}, "
        f"spend ${spend_usd}"
    )
    assert len(paid) == PROMPTS  # each prompt paid for exactly once in the ledger
    assert len({r["request_id"] for r in ledger}) == len(ledger)  # no ledger row twice
    assert billed.calls == len(paid) + len(lost)
    assert spend_usd == billed.usd - sum((e.usd for e in lost), Decimal(0))
    assert spend_usd == sum((r["cost_usd"] for r in paid), Decimal(0))


def _materialize_spend(env: dict[str, str]) -> None:
    """Materialise ``image_spend`` of the same definitions, in this process (saves a CLI start)."""
    import importlib.util

    import dagster as dg

    saved = {k: os.environ.get(k) for k in env if k.startswith("RELIABILITY_")}
    os.environ.update({k: v for k, v in env.items() if k.startswith("RELIABILITY_")})
    try:
        spec = importlib.util.spec_from_file_location("reliability_defs_spend", DEFS)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    result = dg.materialize([module.pipeline.spend_asset], instance=dg.DagsterInstance.ephemeral())
    assert result.success


def _prompt_id(row: int, prompt: str) -> str:
    """The pipeline's default prompt id: ``{row:05d}-{sha256(prompt)[:10]}`` (``PromptSource`` docs)."""
    return f"{row:05d}-{hashlib.sha256(prompt.encode()).hexdigest()[:10]}"


def _spend_path(output: str) -> str:
    return (
        f"{output.removeprefix('s3://').rstrip('/')}/spend/spend.parquet"
        if output.startswith("s3://")
        else f"{output}/spend/spend.parquet"
    )


@pytest.fixture
def emulator() -> Iterator[ProviderEmulator]:
    # Latency keeps the run long enough to be killed midway; one cached image per size keeps it cheap.
    with ProviderEmulator(latency_s=(0.03, 0.06), task_s=0.05, rate_limit=None, unique_images=False) as emu:
        yield emu


def test_sigkill_midway_then_resume_local(tmp_path: Path, emulator: ProviderEmulator) -> None:
    crash_and_resume(tmp_path, emulator, "openai", str(tmp_path / "out"), {}, {})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], str]]:
    pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(k, v)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield lambda: f"http://{host}:{port}"
    finally:
        server.stop()


def test_sigkill_midway_then_resume_on_s3(
    tmp_path: Path, emulator: ProviderEmulator, s3: Callable[[], str]
) -> None:
    endpoint = s3()
    storage = {"client_kwargs": {"endpoint_url": endpoint}}
    import fsspec

    fsspec.filesystem("s3", **storage).mkdir("imggen-crash")
    crash_and_resume(
        tmp_path, emulator, "pixapi", "s3://imggen-crash/out", storage, {"RELIABILITY_S3_ENDPOINT": endpoint}
    )

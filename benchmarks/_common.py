"""Shared pieces of the benchmarks: an emulator in its own process, medians, JSON results.

The emulator runs in a child process (``multiprocessing`` spawn), so the CPU and memory measured in
the benchmark process are the client's alone. The parent talks to it over a pipe: ``configure``,
``mark`` (start counting) and ``statuses`` (HTTP statuses of submissions since the mark, e.g. 429s).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
PARTIPROMPTS = (REPO / ".." / "shared" / "data" / "PartiPrompts.tsv").resolve()
DATE = "2026-11-21"


# ------------------------------------------------------------------------------------ the emulator


def _photo_png(width: int, height: int, seed: int = 0) -> bytes:
    """A PNG with a photograph's entropy (about 1.5-2 MB at 1024x1024, like real GPT Image PNGs)."""
    import random

    from PIL import Image, ImageFilter

    rnd = random.Random(seed)
    noise = Image.frombytes("RGB", (width, height), rnd.randbytes(width * height * 3))
    smooth = noise.filter(ImageFilter.GaussianBlur(1.2))  # partly compressible, as photos are
    out = io.BytesIO()
    smooth.save(out, "PNG", compress_level=6)
    return out.getvalue()


def _emulator_child(conn: Any, settings: dict[str, Any], image: str) -> None:
    from dagster_imggen.testing import ProviderEmulator, emulator

    if image == "photo":  # swap the renderer of this process only: big, photo-like PNGs
        cache: dict[tuple[int, int, str], bytes] = {}

        def render(text: str, width: int, height: int, fmt: str, index: int, *rest: Any) -> bytes:
            key = (width, height, fmt)
            if key not in cache:
                cache[key] = _photo_png(width, height)
            return cache[key]

        emulator._render = render  # type: ignore[attr-defined]
    emu = ProviderEmulator(unique_images=False, rate_limit=None, **settings)
    emu.start()
    conn.send({name: emu.base_url(name) for name in emulator.PROVIDERS})
    mark = 0
    while True:
        try:
            cmd, args = conn.recv()
        except EOFError:
            break
        if cmd == "stop":
            break
        if cmd == "configure":
            provider, changes = args
            emu.configure(provider, **changes)
            conn.send(None)
        elif cmd == "mark":
            mark = len(emu.requests)
            conn.send(None)
        elif cmd == "statuses":
            provider, op = args
            recs = emu.requests[mark:]
            conn.send(dict(Counter(r.status for r in recs if r.provider == provider and r.op == op)))
        elif cmd == "cpu":
            conn.send(time.process_time())
    emu.stop()
    conn.close()


class EmulatorProcess:
    """A ``ProviderEmulator`` in a child process. ``image``: "emulator" (its own renderer) or "photo"."""

    def __init__(self, *, image: str = "emulator", **settings: Any) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_emulator_child, args=(child, settings, image), daemon=True)
        self._proc.start()
        self.base_urls: dict[str, str] = self._conn.recv()

    def base_url(self, provider: str) -> str:
        return self.base_urls[provider]

    def _call(self, cmd: str, args: Any = None) -> Any:
        self._conn.send((cmd, args))
        return self._conn.recv()

    def configure(self, provider: str, **changes: Any) -> None:
        self._call("configure", (provider, changes))

    def mark(self) -> None:
        """Count statuses from now on."""
        self._call("mark")

    def statuses(self, provider: str, op: str = "generate") -> dict[int, int]:
        """HTTP status -> count of ``op`` requests since the last ``mark``."""
        return {int(k): v for k, v in self._call("statuses", (provider, op)).items() if k is not None}

    def close(self) -> None:
        if self._proc.is_alive():
            with suppress(OSError):
                self._conn.send(("stop", None))
            self._proc.join(timeout=10)
        if self._proc.is_alive():
            self._proc.terminate()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------------------------ measuring


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB (Linux ``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def cpu_and_wall() -> Iterator[dict[str, float]]:
    """Measure this process's CPU seconds (all threads) and wall seconds of a block."""
    out: dict[str, float] = {}
    cpu0, wall0 = time.process_time(), time.perf_counter()
    try:
        yield out
    finally:
        out["cpu_s"] = time.process_time() - cpu0
        out["wall_s"] = time.perf_counter() - wall0


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--smoke", action="store_true", help="tiny sizes, seconds long; results not saved")
    p.add_argument("--repeats", type=int, default=3, help="repetitions; medians are quoted")
    p.add_argument("--out", default=None, help="JSON result path (default benchmarks/results/<name>.json)")
    return p


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_results(name: str, data: dict[str, Any], *, smoke: bool, out: str | None = None) -> Path | None:
    """Write ``data`` (plus machine and date) as JSON; smoke runs are not saved unless ``out`` is set."""
    doc = {
        "benchmark": name,
        "date": DATE,
        "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": " ".join([".venv/bin/python", *sys.argv]),
        **data,
    }
    text = json.dumps(doc, indent=1, default=str)
    if smoke and out is None:
        print(text[:2000])
        return None
    path = Path(out) if out else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    print(f"results: {path}")
    return path

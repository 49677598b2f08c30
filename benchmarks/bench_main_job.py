"""Benchmark 4: the example project's main job on the real PartiPrompts table, then its cached re-run.

Runs the project's own main-job command in a fresh process, exactly as a user would:

    IMGGEN_PROMPTS=../shared/data/PartiPrompts.tsv IMGGEN_OUTPUT=<tmp>/out DAGSTER_HOME=<tmp>/home \\
        .venv/bin/python -m assets.main_job

(1,632 prompts, 12 partitions by ``Category``, one single-run backfill over the whole range, the
local provider at gpt-image-2 1024x1024 low, images + spend + every asset check). Then the same
command again on the same output: every image is cached, nothing is generated. Wall time and peak
RSS (``os.wait4`` ``ru_maxrss``) of each process; targets: first < 180 s, cached < 15% of first.

    .venv/bin/python benchmarks/bench_main_job.py [--smoke] [--repeats 3] [--profile]

``--smoke`` uses the example's shipped 36-row table. ``--profile`` wraps the first run of the first
repetition in pyinstrument (needs ``pip install pyinstrument``) and writes the HTML to
``benchmarks/results/main_job_profile.html``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import PARTIPROMPTS, REPO, RESULTS, median, parser, write_results

FIRST_TARGET_S = 180.0
CACHED_SHARE_TARGET = 0.15


def run_job(env: dict[str, str], *, profile: str | None = None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "assets.main_job"]
    if profile:
        cmd = [sys.executable, "-m", "pyinstrument", "-r", "html", "-o", profile, "-m", "assets.main_job"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    summary = [
        line for line in out.splitlines() if line.startswith(("run ", "  totals", "  check", "main job"))
    ]
    if code != 0:
        raise RuntimeError(f"main job failed (exit {code}):\n{out[-3000:]}")
    return {
        "wall_s": wall,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "summary": summary,
    }


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--prompts", default=str(PARTIPROMPTS))
    p.add_argument("--profile", action="store_true")
    args = p.parse_args()
    prompts = args.prompts
    if args.smoke:
        prompts, args.repeats = str(REPO / "assets" / "data" / "prompts.tsv"), 1
    if not Path(prompts).exists():
        print(f"prompt table not found at {prompts}", file=sys.stderr)
        return 1
    runs: list[dict[str, Any]] = []
    for rep in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="imggen-bench-main-") as tmp:
            home = Path(tmp) / "home"
            home.mkdir()
            (home / "dagster.yaml").touch()
            env = {
                **os.environ,
                "IMGGEN_PROVIDER": "local",
                "IMGGEN_PROMPTS": prompts,
                "IMGGEN_OUTPUT": str(Path(tmp) / "out"),
                "DAGSTER_HOME": str(home),
            }
            prof = str(RESULTS / "main_job_profile.html") if args.profile and rep == 0 else None
            first = run_job(env, profile=prof)
            cached = run_job(env)
            images = sum(1 for _ in (Path(tmp) / "out" / "images").rglob("*.png")) - sum(
                1 for _ in (Path(tmp) / "out" / "images").rglob("_*.png")
            )
        run = {
            "first": first,
            "cached": cached,
            "cached_share": cached["wall_s"] / first["wall_s"],
            "images": images,
            "profiled": prof is not None,
        }
        runs.append(run)
        print(
            f"rep {rep + 1}: first {first['wall_s']:.1f} s (peak RSS {first['peak_rss_mb']:.0f} MB, CPU "
            f"{first['cpu_s']:.1f} s), cached {cached['wall_s']:.1f} s (peak RSS {cached['peak_rss_mb']:.0f} MB) "
            f"= {run['cached_share']:.1%} of first; {images} images",
            flush=True,
        )
        for line in first["summary"] + cached["summary"]:
            print("   ", line)
    timed = [r for r in runs if not r["profiled"]] or runs
    summary = {
        "first_wall_s": median([r["first"]["wall_s"] for r in timed]),
        "first_peak_rss_mb": median([r["first"]["peak_rss_mb"] for r in timed]),
        "first_cpu_s": median([r["first"]["cpu_s"] for r in timed]),
        "cached_wall_s": median([r["cached"]["wall_s"] for r in timed]),
        "cached_peak_rss_mb": median([r["cached"]["peak_rss_mb"] for r in timed]),
        "cached_share": median([r["cached_share"] for r in timed]),
        "first_target_s": FIRST_TARGET_S,
        "cached_share_target": CACHED_SHARE_TARGET,
    }
    print("medians: " + ", ".join(f"{k}={v:.3f}" for k, v in summary.items()), flush=True)
    write_results(
        "main_job",
        {"prompts": prompts, "repeats": args.repeats, "summary": summary, "runs": runs},
        smoke=args.smoke,
        out=args.out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

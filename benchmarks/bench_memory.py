"""Benchmark 3: peak RSS of materialising N images of 1536x1024 in one partition (N = 200, 1000, 3000).

Each N runs in a fresh Python process (``--child``): the factory's assets and all their asset checks
through ``dg.materialize``, against the emulator in a third process (OpenAI wire, zero latency,
b64_json). The emulator serves photo-like PNGs (~2.8 MB at 1536x1024, the size of a real GPT Image
PNG) so that holding images would show. Peak RSS is the child's ``ru_maxrss`` from ``os.wait4``;
the child also reports its RSS after imports, so the run's own growth is visible.

    .venv/bin/python benchmarks/bench_memory.py [--smoke] [--repeats 3] [--sizes 200,1000,3000]
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import EmulatorProcess, median, parser, peak_rss_mb, write_results

MODEL, SIZE, QUALITY = "gpt-image-2", "1536x1024", "low"
TARGET_MB = 400.0


def child(n: int, base_url: str, work: Path) -> dict[str, Any]:
    """Materialise ``n`` images in one partition; report RSS figures (MB) and timing."""
    import dagster as dg

    from dagster_imggen.pipeline import PromptSource, build_image_generation_assets
    from dagster_imggen.providers.openai import OpenAIImageResource

    rss_imported = peak_rss_mb()
    table = work / "prompts.csv"
    with table.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Prompt", "Category"])
        w.writerows([f"memory prompt {i} a harbour at noon", "bench"] for i in range(n))
    pipe = build_image_generation_assets(
        prompts=PromptSource(url=str(table), partition_column="Category"),
        output_root=str(work / "out"),
        provider_name="openai",
        defaults={"model": MODEL, "size": SIZE, "quality": QUALITY},
    )
    resource = OpenAIImageResource(api_key="sk-bench-memory", base_url=base_url)
    t0 = time.perf_counter()
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [*pipe.assets, *pipe.asset_checks],
            instance=instance,
            resources={"image_provider": resource},
            partition_key="bench",
        )
    wall = time.perf_counter() - t0
    written = [p for p in (work / "out" / "images" / "bench").glob("*.png") if not p.name.startswith("_")]
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    return {
        "n": n,
        "success": result.success,
        "images_written": len(written),
        "bytes_written": sum(p.stat().st_size for p in written),
        "checks": checks,
        "wall_s": wall,
        "rss_after_imports_mb": rss_imported,
        "peak_rss_self_mb": peak_rss_mb(),
    }


def run_child(n: int, base_url: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="imggen-bench-memory-") as tmp:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--child", str(n), "--base-url", base_url, "--work", tmp],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child for n={n} failed (exit {proc.returncode}): {out[-2000:]}")
    report: dict[str, Any] = json.loads(lines[-1])
    report["peak_rss_mb"] = usage.ru_maxrss / 1024  # KiB on Linux
    return report


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", default="200,1000,3000")
    p.add_argument("--image", choices=["photo", "emulator"], default="photo")
    p.add_argument("--child", type=int, default=None, help=argparse_hidden())
    p.add_argument("--base-url", default=None, help=argparse_hidden())
    p.add_argument("--work", default=None, help=argparse_hidden())
    args = p.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.base_url, Path(args.work))), flush=True)
        return 0
    if args.smoke:
        args.sizes, args.repeats, args.image = "4,8", 1, "emulator"
    sizes = [int(s) for s in args.sizes.split(",")]
    runs: dict[int, list[dict[str, Any]]] = {n: [] for n in sizes}
    with EmulatorProcess(image=args.image) as emu:
        base = emu.base_url("openai")
        for rep in range(args.repeats):
            for n in sizes:
                r = run_child(n, base)
                runs[n].append(r)
                print(
                    f"rep {rep + 1} n={n}: peak RSS {r['peak_rss_mb']:.0f} MB (after imports "
                    f"{r['rss_after_imports_mb']:.0f} MB), {r['images_written']} images "
                    f"({r['bytes_written'] / 1e6:.0f} MB written) in {r['wall_s']:.1f} s, success={r['success']}",
                    flush=True,
                )
                if not r["success"] or r["images_written"] != n:
                    print(f"ERROR: n={n}: run failed or images missing", flush=True)
                    return 1
    summary = {
        str(n): {
            "peak_rss_mb": median([r["peak_rss_mb"] for r in rs]),
            "rss_after_imports_mb": median([r["rss_after_imports_mb"] for r in rs]),
            "wall_s": median([r["wall_s"] for r in rs]),
            "bytes_written": rs[0]["bytes_written"],
        }
        for n, rs in runs.items()
    }
    peaks = [v["peak_rss_mb"] for v in summary.values()]
    summary_all = {
        "max_peak_rss_mb": max(peaks),
        "growth_first_to_last_mb": peaks[-1] - peaks[0],
        "target_mb": TARGET_MB,
        "under_target": max(peaks) < TARGET_MB,
    }
    print("medians: " + json.dumps(summary) + " " + json.dumps(summary_all), flush=True)
    write_results(
        "memory",
        {
            "image": args.image,
            "size": SIZE,
            "repeats": args.repeats,
            "summary": summary,
            **summary_all,
            "runs": runs,
        },
        smoke=args.smoke,
        out=args.out,
    )
    return 0


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    raise SystemExit(main())

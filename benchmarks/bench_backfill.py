"""Benchmark 5: Dagster's overhead per partition, single-run vs multi-run backfills of 1, 12, 48 partitions.

A synthetic prompt table (48 categories x ``--prompts-per-partition`` prompts, default 3), the
factory's job (images, spend, every asset check) with the local provider (gpt-image-2 1024x1024
low), a persistent SQLite ``DagsterInstance`` (``DagsterInstance.local_temp``), fresh outputs for
each measurement:

- ``single_run``: ``BackfillPolicy.single_run()``: ONE run over the partition range (the run tags
  ``dagster/asset_partition_range_start/end``, as the backfill daemon sets them);
- ``multi_run``: one run per partition (``BackfillPolicy.multi_run(1)``), executed in this process.
  A real multi-run backfill launches each run in a new process; that launch cost (Python start,
  imports, loading the definitions, the instance) is measured separately (``--launches`` runs of
  a one-partition child process, wall minus the run's own wall) and added per run.

Cost per partition = total wall / partitions. From it, the recommended default backfill policy.

    .venv/bin/python benchmarks/bench_backfill.py [--smoke] [--repeats 3] [--sizes 1,12,48]
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

from _common import median, parser, write_results

CATEGORIES = [f"Cat{i:02d}" for i in range(48)]


def write_table(path: Path, per_partition: int) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Prompt", "Category"])
        for cat in CATEGORIES:
            for i in range(per_partition):
                w.writerow([f"backfill {cat} prompt {i} a windmill in a field", cat])


def build(table: Path, out: Path) -> tuple[Any, Any]:
    """The job definition and the pipeline, for a fresh output root."""
    from dagster_imggen.pipeline import PromptSource, build_image_generation_assets
    from dagster_imggen.providers.local import LocalImageResource

    pipe = build_image_generation_assets(
        prompts=PromptSource(url=str(table), partition_column="Category"),
        output_root=str(out),
        provider_name="local",
        defaults={"model": "gpt-image-2", "size": "1024x1024", "quality": "low"},
    )
    defs = pipe.to_definitions(resources={"image_provider": LocalImageResource()})
    return defs.resolve_job_def(pipe.job.name), pipe


def run_once(job: Any, instance: Any, keys: list[str]) -> float:
    tags = {}
    kwargs: dict[str, Any] = {}
    if len(keys) == 1:
        kwargs["partition_key"] = keys[0]
    else:
        tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
    t0 = time.perf_counter()
    result = job.execute_in_process(instance=instance, tags=tags, raise_on_error=False, **kwargs)
    wall = time.perf_counter() - t0
    if not result.success:
        raise RuntimeError(f"run over {keys[0]}..{keys[-1]} failed")
    return wall


def count_images(out: Path) -> int:
    return sum(1 for p in (out / "images").rglob("*.png") if not p.name.startswith("_"))


def child(table: Path, out: Path, home: Path) -> dict[str, float]:
    """One-partition run in this (fresh) process; returns the run's own wall seconds."""
    import dagster as dg

    job, _ = build(table, out)
    with dg.DagsterInstance.local_temp(str(home)) as instance:
        return {"run_wall_s": run_once(job, instance, [CATEGORIES[0]])}


def launch_overhead(table: Path, work: Path, n: int) -> list[float]:
    """Seconds a new run process costs beyond its run: start, imports, definitions, instance."""
    out: list[float] = []
    for i in range(n):
        home, target = work / f"launch-home-{i}", work / f"launch-out-{i}"
        home.mkdir()
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(table), str(target), str(home)],
            capture_output=True,
            text=True,
            env={**os.environ, "DAGSTER_HOME": str(home)},
        )
        wall = time.perf_counter() - t0
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"child run failed: {proc.stderr[-2000:]}")
        out.append(wall - json.loads(lines[-1])["run_wall_s"])
    return out


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1,12,48")
    p.add_argument("--prompts-per-partition", type=int, default=3)
    p.add_argument("--launches", type=int, default=3, help="child processes timed for the launch cost")
    p.add_argument("--child", nargs=3, default=None, help=__import__("argparse").SUPPRESS)
    args = p.parse_args()
    if args.child:
        table, out, home = (Path(a) for a in args.child)
        print(json.dumps(child(table, out, home)), flush=True)
        return 0
    if args.smoke:
        args.sizes, args.prompts_per_partition, args.repeats, args.launches = "1,3", 1, 1, 1
    sizes = [int(s) for s in args.sizes.split(",")]

    import dagster as dg

    report: dict[str, Any] = {"sizes": sizes, "prompts_per_partition": args.prompts_per_partition}
    rows: dict[str, list[dict[str, float]]] = {str(k): [] for k in sizes}
    with tempfile.TemporaryDirectory(prefix="imggen-bench-backfill-") as tmp:
        work = Path(tmp)
        table = work / "prompts.csv"
        write_table(table, args.prompts_per_partition)
        launches = launch_overhead(table, work, args.launches)
        launch = median(launches)
        print(f"run launch overhead (new process): {launch:.2f} s (median of {launches})", flush=True)
        (work / "home").mkdir()
        with dg.DagsterInstance.local_temp(str(work / "home")) as instance:
            job, _ = build(table, work / "warm")
            run_once(job, instance, CATEGORIES[:2])  # warm-up: imports, first-run caches
            for rep in range(args.repeats):
                for k in sizes:
                    keys = CATEGORIES[:k]
                    out_s, out_m = work / f"single-{rep}-{k}", work / f"multi-{rep}-{k}"
                    job_s, _ = build(table, out_s)
                    single = run_once(job_s, instance, keys)
                    job_m, _ = build(table, out_m)
                    multi_in_process = sum(run_once(job_m, instance, [key]) for key in keys)
                    expected = k * args.prompts_per_partition
                    if count_images(out_s) != expected or count_images(out_m) != expected:
                        print(f"ERROR: k={k}: wrong number of images", flush=True)
                        return 1
                    row = {
                        "single_run_wall_s": single,
                        "multi_run_in_process_wall_s": multi_in_process,
                        "multi_run_with_launch_wall_s": multi_in_process + k * launch,
                        "single_run_s_per_partition": single / k,
                        "multi_run_s_per_partition": (multi_in_process + k * launch) / k,
                    }
                    rows[str(k)].append(row)
                    print(
                        f"rep {rep + 1} k={k}: single_run {single:.1f} s ({single / k:.2f} s/partition); "
                        f"multi_run {multi_in_process:.1f} s in process, {row['multi_run_with_launch_wall_s']:.1f} s "
                        f"with launches ({row['multi_run_s_per_partition']:.2f} s/partition)",
                        flush=True,
                    )
    summary = {k: {name: median([r[name] for r in rs]) for name in rs[0]} for k, rs in rows.items()}
    if len(sizes) >= 2:
        lo, hi = str(sizes[0]), str(sizes[-1])
        span = sizes[-1] - sizes[0]
        report["single_run_marginal_s_per_partition"] = (
            summary[hi]["single_run_wall_s"] - summary[lo]["single_run_wall_s"]
        ) / span
        report["single_run_fixed_s"] = (
            summary[lo]["single_run_wall_s"] - sizes[0] * report["single_run_marginal_s_per_partition"]
        )
    report.update({"launch_overhead_s": launch, "launches": launches, "summary": summary, "runs": rows})
    print("medians: " + json.dumps(summary), flush=True)
    write_results("backfill", report, smoke=args.smoke, out=args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

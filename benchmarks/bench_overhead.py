"""Benchmark 2: CPU seconds per image of the full pipeline, next to a minimal floor loop.

The emulator runs in its own process with zero latency and answers 1024x1024 PNGs (b64_json), so
``time.process_time()`` here is the client's CPU alone (every thread). Three contenders, one run:

- ``floor``: ``httpx.Client`` POST, ``json``, ``base64.b64decode``, write the file. Nothing else.
- ``generate_many``: ``OpenAIImageResource.generate_many`` (validation, retries/limits machinery,
  decode and verify the dimensions, cost) plus the same plain file write.
- ``pipeline``: the factory's asset (``build_image_generation_assets``) through ``dg.materialize``:
  request building and hashing, ``generate_many``, fsspec atomic write, Parquet ledger, manifest,
  contact sheet, spend table. Dagster's fixed start-up is removed by running it twice in the same
  warm process, with ``--small`` and ``--n`` images, and quoting the marginal cost
  ``(cpu(n) - cpu(small)) / (n - small)``: the steady-state cost of one more image.

``--image emulator`` serves the emulator's own rendered PNG (a gradient and text, ~31 KB);
``--image photo`` serves a PNG with a photograph's entropy (~2 MB, the size of a real GPT Image
PNG), which is where the bytes dominate. Both by default.

    .venv/bin/python benchmarks/bench_overhead.py [--smoke] [--repeats 3] [--n 1000]
"""

from __future__ import annotations

import base64
import csv
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import dagster as dg
from _common import EmulatorProcess, cpu_and_wall, median, parser, write_results

from dagster_imggen.pipeline import PromptSource, build_image_generation_assets
from dagster_imggen.providers.openai import OpenAIImageResource
from dagster_imggen.request import ImageRequest

MODEL, SIZE, QUALITY = "gpt-image-2", "1024x1024", "low"
KEY = "sk-bench-overhead"


def texts(n: int, tag: str) -> list[str]:
    return [f"overhead {tag} prompt {i} a red kite over the sea" for i in range(n)]


def floor(base_url: str, prompts: list[str], out: Path) -> dict[str, float]:
    import httpx

    out.mkdir(parents=True, exist_ok=True)
    with httpx.Client(timeout=60) as client, cpu_and_wall() as m:
        for i, prompt in enumerate(prompts):
            r = client.post(
                f"{base_url}/images/generations",
                headers={"Authorization": f"Bearer {KEY}"},
                json={"model": MODEL, "prompt": prompt, "size": SIZE, "quality": QUALITY, "n": 1},
            )
            r.raise_for_status()
            data = base64.b64decode(r.json()["data"][0]["b64_json"])
            (out / f"{i}.png").write_bytes(data)
    return m


def generate_many(base_url: str, prompts: list[str], out: Path) -> dict[str, float]:
    out.mkdir(parents=True, exist_ok=True)
    resource = OpenAIImageResource(api_key=KEY, base_url=base_url)
    requests = [ImageRequest(model=MODEL, prompt=p, size=SIZE, quality=QUALITY) for p in prompts]
    with resource, cpu_and_wall() as m:
        for i, result in enumerate(resource.generate_many(requests)):
            if not result.ok:
                raise RuntimeError(f"generate_many failed: {result.error}")
            (out / f"{i}.png").write_bytes(result.images[0].data)
    return m


def pipeline(base_url: str, prompts: list[str], work: Path, tag: str) -> dict[str, float]:
    table = work / f"prompts-{tag}.csv"
    with table.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Prompt", "Category"])
        w.writerows([p, "bench"] for p in prompts)
    pipe = build_image_generation_assets(
        prompts=PromptSource(url=str(table), partition_column="Category"),
        output_root=str(work / f"out-{tag}"),
        provider_name="openai",
        defaults={"model": MODEL, "size": SIZE, "quality": QUALITY},
    )
    resource = OpenAIImageResource(api_key=KEY, base_url=base_url)
    with dg.DagsterInstance.ephemeral() as instance, cpu_and_wall() as m:
        result = dg.materialize(
            pipe.assets,
            instance=instance,
            resources={"image_provider": resource},
            partition_key="bench",
        )
    if not result.success:
        raise RuntimeError("pipeline run failed")
    images = [
        p for p in (work / f"out-{tag}" / "images" / "bench").glob("*.png") if not p.name.startswith("_")
    ]
    if len(images) != len(prompts):
        raise RuntimeError(f"pipeline wrote {len(images)} images for {len(prompts)} prompts")
    return m


def measure(image: str, n: int, small: int, repeats: int, work: Path) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    with EmulatorProcess(image=image) as emu:
        base = emu.base_url("openai")
        # Warm-up (not counted): imports, the emulator's image cache, Dagster's first run.
        floor(base, texts(5, "warm"), work / "warm-floor")
        generate_many(base, texts(5, "warm"), work / "warm-gm")
        pipeline(base, texts(5, f"warm-{image}"), work, f"warm-{image}")
        for rep in range(repeats):
            tag = f"{image}-{rep}"
            f = floor(base, texts(n, tag), work / f"floor-{tag}")
            g = generate_many(base, texts(n, tag + "g"), work / f"gm-{tag}")
            p_small = pipeline(base, texts(small, tag + "s"), work, tag + "s")
            p_big = pipeline(base, texts(n, tag + "p"), work, tag + "p")
            run = {
                "floor_cpu_ms_per_image": 1000 * f["cpu_s"] / n,
                "generate_many_cpu_ms_per_image": 1000 * g["cpu_s"] / n,
                "pipeline_cpu_ms_per_image": 1000 * (p_big["cpu_s"] - p_small["cpu_s"]) / (n - small),
                "pipeline_fixed_cpu_s": p_small["cpu_s"]
                - small * (p_big["cpu_s"] - p_small["cpu_s"]) / (n - small),
                "floor_wall_s": f["wall_s"],
                "generate_many_wall_s": g["wall_s"],
                "pipeline_small_cpu_s": p_small["cpu_s"],
                "pipeline_cpu_s": p_big["cpu_s"],
                "pipeline_wall_s": p_big["wall_s"],
            }
            run["pipeline_to_floor"] = run["pipeline_cpu_ms_per_image"] / run["floor_cpu_ms_per_image"]
            run["generate_many_to_floor"] = (
                run["generate_many_cpu_ms_per_image"] / run["floor_cpu_ms_per_image"]
            )
            runs.append(run)
            print(
                f"[{image}] rep {rep + 1}: floor {run['floor_cpu_ms_per_image']:.2f} ms/image, "
                f"generate_many {run['generate_many_cpu_ms_per_image']:.2f} ms/image "
                f"({run['generate_many_to_floor']:.2f}x), pipeline {run['pipeline_cpu_ms_per_image']:.2f} "
                f"ms/image ({run['pipeline_to_floor']:.2f}x; fixed {run['pipeline_fixed_cpu_s']:.2f} s)",
                flush=True,
            )
            for d in work.glob(f"*{tag}*"):
                shutil.rmtree(d, ignore_errors=True) if d.is_dir() else d.unlink()
    summary = {k: median([r[k] for r in runs]) for k in runs[0]}
    print(f"[{image}] medians: " + ", ".join(f"{k}={v:.3f}" for k, v in summary.items()), flush=True)
    return {"summary": summary, "runs": runs}


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000, help="images per contender")
    p.add_argument("--small", type=int, default=100, help="images of the pipeline's short run")
    p.add_argument("--image", choices=["emulator", "photo", "both"], default="both")
    args = p.parse_args()
    if args.smoke:
        args.n, args.small, args.repeats, args.image = 12, 4, 1, "emulator"
    kinds = ["emulator", "photo"] if args.image == "both" else [args.image]
    report: dict[str, Any] = {"n": args.n, "small": args.small, "repeats": args.repeats}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="imggen-bench-overhead-") as tmp:
        for kind in kinds:
            report[kind] = measure(kind, args.n, args.small, args.repeats, Path(tmp))
    report["elapsed_s"] = time.perf_counter() - started
    write_results("overhead", report, smoke=args.smoke, out=args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

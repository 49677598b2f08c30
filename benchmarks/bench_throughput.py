"""Benchmark 1: throughput at the provider's limit, against what a user would otherwise write.

Emulator (own process), OpenAI wire, gpt-image-2 1024x1024 low, 500 prompts per scenario:

- (a) latency uniform 0.8-1.2 s (1.0 s +/- 20%), no rate limit, concurrency 32: bound 32 images/s;
- (b) latency 0.2 s, rate limit 20 per 2 s (AI Generate's 20 per 10 s, scaled): bound 10 images/s;
  the library's client is given the same limit (``RateLimit(requests=20, period_s=2)``).

Contenders, side by side in each repetition:

- ``library``: ``OpenAIImageResource.generate_many`` (max_concurrency 32);
- ``gather``: ``asyncio.gather`` over ``AsyncOpenAI`` with an ``asyncio.Semaphore(32)``, each image
  base64-decoded; no limiter, the SDK's own retries (2, honouring ``retry-after``);
- ``sequential``: a plain loop over ``OpenAI().images.generate``; it runs on a subset
  (``--sequential-n``, default 40) and its images/s is per-image time, extrapolated to 500.

Images/s = images received / wall seconds from the first submission to the last result. 429s are
counted from the emulator's own record.

    .venv/bin/python benchmarks/bench_throughput.py [--smoke] [--repeats 3]
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from typing import Any

from _common import EmulatorProcess, median, parser, write_results

from dagster_imggen.providers.base import RateLimit
from dagster_imggen.providers.openai import OpenAIImageResource
from dagster_imggen.request import ImageRequest

MODEL, SIZE, QUALITY = "gpt-image-2", "1024x1024", "low"

SCENARIOS: dict[str, dict[str, Any]] = {
    "a": {"latency_s": (0.8, 1.2), "mean_latency_s": 1.0, "rate_limit": None, "concurrency": 32},
    "b": {"latency_s": 0.2, "mean_latency_s": 0.2, "rate_limit": (20, 2.0), "concurrency": 32},
}


def bound(s: dict[str, Any]) -> float:
    """min(concurrency / latency, rate limit) in images per second."""
    by_concurrency = s["concurrency"] / s["mean_latency_s"]
    if s["rate_limit"] is None:
        return by_concurrency
    n, period = s["rate_limit"]
    return min(by_concurrency, n / period)


def prompts(n: int, tag: str) -> list[str]:
    return [f"benchmark {tag} prompt {i}: a lighthouse at dusk" for i in range(n)]


def run_library(emu: EmulatorProcess, s: dict[str, Any], texts: list[str]) -> dict[str, Any]:
    rate = RateLimit(requests=s["rate_limit"][0], period_s=s["rate_limit"][1]) if s["rate_limit"] else None
    resource = OpenAIImageResource(
        api_key=f"sk-bench-lib-{uuid.uuid4().hex[:8]}",  # a fresh key: a fresh provider rate window
        base_url=emu.base_url("openai"),
        max_concurrency=s["concurrency"],
        rate_limit=rate,
    )
    requests = [ImageRequest(model=MODEL, prompt=t, size=SIZE, quality=QUALITY) for t in texts]
    emu.mark()
    ok = failed = 0
    with resource:
        t0 = time.perf_counter()
        for result in resource.generate_many(requests):
            if result.ok:
                ok += len(result.images)
            else:
                failed += 1
        wall = time.perf_counter() - t0
    return _outcome(emu, ok, failed, wall)


def run_gather(emu: EmulatorProcess, s: dict[str, Any], texts: list[str]) -> dict[str, Any]:
    from openai import AsyncOpenAI

    async def main() -> tuple[int, int, float]:
        client = AsyncOpenAI(
            api_key=f"sk-bench-gather-{uuid.uuid4().hex[:8]}", base_url=emu.base_url("openai")
        )
        sem = asyncio.Semaphore(s["concurrency"])

        async def one(prompt: str) -> bytes:
            async with sem:
                r = await client.images.generate(model=MODEL, prompt=prompt, size=SIZE, quality=QUALITY)
            assert r.data and r.data[0].b64_json
            return base64.b64decode(r.data[0].b64_json)

        t0 = time.perf_counter()
        results = await asyncio.gather(*(one(p) for p in texts), return_exceptions=True)
        wall = time.perf_counter() - t0
        await client.close()
        ok = sum(1 for r in results if isinstance(r, bytes))
        return ok, len(results) - ok, wall

    emu.mark()
    ok, failed, wall = asyncio.run(main())
    return _outcome(emu, ok, failed, wall)


def run_sequential(emu: EmulatorProcess, texts: list[str]) -> dict[str, Any]:
    from openai import OpenAI, OpenAIError

    client = OpenAI(api_key=f"sk-bench-seq-{uuid.uuid4().hex[:8]}", base_url=emu.base_url("openai"))
    emu.mark()
    ok = failed = 0
    t0 = time.perf_counter()
    for prompt in texts:
        try:
            r = client.images.generate(model=MODEL, prompt=prompt, size=SIZE, quality=QUALITY)
            assert r.data and r.data[0].b64_json
            base64.b64decode(r.data[0].b64_json)
            ok += 1
        except OpenAIError:
            failed += 1
    wall = time.perf_counter() - t0
    client.close()
    out = _outcome(emu, ok, failed, wall)
    out["seconds_per_image"] = wall / max(len(texts), 1)
    return out


def _outcome(emu: EmulatorProcess, ok: int, failed: int, wall: float) -> dict[str, Any]:
    statuses = emu.statuses("openai", "generate")
    return {
        "images": ok,
        "failed": failed,
        "wall_s": round(wall, 3),
        "images_per_s": ok / wall if wall > 0 else 0.0,
        "submissions": sum(statuses.values()),
        "provider_429s": statuses.get(429, 0),
        "statuses": statuses,
    }


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=500, help="prompts per scenario")
    p.add_argument("--sequential-n", type=int, default=40, help="prompts of the sequential baseline")
    p.add_argument("--scenarios", default="ab")
    args = p.parse_args()
    if args.smoke:
        args.n, args.sequential_n, args.repeats = 24, 4, 1
        SCENARIOS["a"].update(latency_s=(0.08, 0.12), mean_latency_s=0.1, concurrency=8)
        SCENARIOS["b"].update(latency_s=0.02, mean_latency_s=0.02, rate_limit=(10, 1.0), concurrency=8)

    report: dict[str, Any] = {"n": args.n, "sequential_n": args.sequential_n, "repeats": args.repeats}
    with EmulatorProcess() as emu:
        for name in args.scenarios:
            s = SCENARIOS[name]
            emu.configure("openai", latency_s=s["latency_s"], rate_limit=s["rate_limit"])
            runs: list[dict[str, Any]] = []
            # Warm-up, not timed: imports, catalog, the emulator's image cache, pydantic models.
            warm = prompts(s["concurrency"], f"warm-{name}")
            run_library(emu, s, warm)
            run_gather(emu, s, warm)
            run_sequential(emu, warm[:2])
            for rep in range(args.repeats):
                texts = prompts(args.n, f"{name}{rep}")
                lib = run_library(emu, s, texts)
                gat = run_gather(emu, s, texts)
                seq = run_sequential(emu, texts[: args.sequential_n])
                run = {
                    "library": lib,
                    "gather": gat,
                    "sequential": seq,
                    "library_to_bound": lib["images_per_s"] / bound(s),
                    "library_to_gather": lib["images_per_s"] / gat["images_per_s"]
                    if gat["images_per_s"]
                    else None,
                    "library_to_sequential": lib["images_per_s"] / seq["images_per_s"],
                }
                runs.append(run)
                print(
                    f"({name}) rep {rep + 1}: library {lib['images_per_s']:.2f}/s "
                    f"({run['library_to_bound']:.3f} of bound {bound(s):.1f}/s, 429s {lib['provider_429s']}); "
                    f"gather {gat['images_per_s']:.2f}/s (429s {gat['provider_429s']}, failed {gat['failed']}); "
                    f"sequential {seq['images_per_s']:.2f}/s ({seq['seconds_per_image']:.3f} s/image)",
                    flush=True,
                )
            summary = {
                "bound_images_per_s": bound(s),
                "library_images_per_s": median([r["library"]["images_per_s"] for r in runs]),
                "library_to_bound": median([r["library_to_bound"] for r in runs]),
                "library_429s": median([r["library"]["provider_429s"] for r in runs]),
                "library_failed": median([r["library"]["failed"] for r in runs]),
                "gather_images_per_s": median([r["gather"]["images_per_s"] for r in runs]),
                "gather_429s": median([r["gather"]["provider_429s"] for r in runs]),
                "gather_failed": median([r["gather"]["failed"] for r in runs]),
                "sequential_images_per_s": median([r["sequential"]["images_per_s"] for r in runs]),
                "sequential_seconds_per_image": median([r["sequential"]["seconds_per_image"] for r in runs]),
                "library_to_gather": median([r["library_to_gather"] or 0.0 for r in runs]),
                "library_to_sequential": median([r["library_to_sequential"] for r in runs]),
            }
            print(f"({name}) medians: " + ", ".join(f"{k}={v:.3f}" for k, v in summary.items()), flush=True)
            report[name] = {
                "scenario": {k: v for k, v in s.items()},
                "summary": summary,
                "runs": runs,
            }
            lib_ok = all(r["library"]["images"] == args.n for r in runs)
            if not lib_ok:
                print(f"({name}) ERROR: the library did not return every image", flush=True)
                write_results("throughput", report, smoke=args.smoke, out=args.out)
                return 1
    write_results("throughput", report, smoke=args.smoke, out=args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

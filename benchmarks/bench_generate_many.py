"""Benchmark: ``generate_many`` concurrency against a plain sequential loop.

Emulator in its own process (``_common.EmulatorProcess``), OpenAI wire, gpt-image-2 1024x1024 low,
50 ms latency per request, no rate limit. 200 requests:

- ``sequential``: ``resource.generate(request)`` in a loop (what a user writes first);
- ``generate_many``: ``resource.generate_many(requests)`` with ``max_concurrency=16``.

Both use the same resource class and a fresh resource each (one HTTP client each). The target is
``generate_many`` wall time well under a tenth of the sequential wall time (the ideal with 16 in
flight is 1/16 = 0.0625). Peak in-flight requests and the client's CPU seconds are reported too.

    .venv/bin/python benchmarks/bench_generate_many.py [--smoke] [--repeats 3] [--requests 200]
        [--memory-requests 2000]

``--memory-requests N`` adds a memory check: N photo-like 1536x1024 PNGs (about 2-3 MB each, as
real GPT Image PNGs) streamed through ``generate_many`` and dropped; the RSS of this process
is sampled at the start and after each quarter, next to the bytes received (flat memory: RSS
levels off at about ``max_concurrency`` responses in flight, whatever N).
"""

from __future__ import annotations

import time
from typing import Any

from _common import EmulatorProcess, cpu_and_wall, median, parser, peak_rss_mb, write_results

from dagster_imggen.providers.openai import OpenAIImageResource
from dagster_imggen.request import ImageRequest

LATENCY_S = 0.05
CONCURRENCY = 16


def _requests(n: int, tag: str) -> list[ImageRequest]:
    return [ImageRequest(prompt=f"bench {tag} {i}: a lighthouse at dusk", quality="low") for i in range(n)]


def _resource(emu: EmulatorProcess) -> OpenAIImageResource:
    return OpenAIImageResource(
        api_key="sk-bench-0000000000", base_url=emu.base_url("openai"), max_concurrency=CONCURRENCY
    )


def run_sequential(emu: EmulatorProcess, n: int, tag: str) -> dict[str, Any]:
    requests = _requests(n, tag)
    with _resource(emu) as resource:
        resource.generate(ImageRequest(prompt="warm-up", quality="low"))
        with cpu_and_wall() as m:
            ok = sum(resource.generate(r).ok for r in requests)
    return {"ok": ok, **m}


def run_generate_many(emu: EmulatorProcess, n: int, tag: str) -> dict[str, Any]:
    requests = _requests(n, tag)
    with _resource(emu) as resource:
        resource.generate(ImageRequest(prompt="warm-up", quality="low"))
        first_result_s = None
        with cpu_and_wall() as m:
            start = time.perf_counter()
            ok = 0
            for result in resource.generate_many(iter(requests)):
                ok += result.ok
                if first_result_s is None:
                    first_result_s = time.perf_counter() - start
    return {"ok": ok, "first_result_s": first_result_s, **m}


def _rss_mb() -> float:
    """Current resident set size in MB (Linux ``/proc``; elsewhere the peak)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()


def run_memory(n: int) -> dict[str, Any]:
    """Stream ``n`` large images through ``generate_many``; RSS (MB) sampled at each quarter."""
    requests = (ImageRequest(prompt=f"mem {i}", size="1536x1024", quality="low") for i in range(n))
    with EmulatorProcess(image="photo") as emu, _resource(emu) as resource:
        resource.generate(ImageRequest(prompt="warm-up", size="1536x1024", quality="low"))
        samples = [round(_rss_mb())]
        received = ok = done = 0
        with cpu_and_wall() as m:
            for result in resource.generate_many(requests):
                ok += result.ok
                done += 1
                received += sum(len(image.data) for image in result.images)
                if done % max(n // 4, 1) == 0:
                    samples.append(round(_rss_mb()))
    return {"requests": n, "ok": ok, "received_mb": received / 1e6, "rss_mb_at_quarters": samples, **m}


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--memory-requests", type=int, default=0, help="also stream N 1536x1024 PNGs (0: skip)")
    args = p.parse_args()
    n = 20 if args.smoke else args.requests
    repeats = 1 if args.smoke else args.repeats
    runs: list[dict[str, Any]] = []
    with EmulatorProcess(latency_s=LATENCY_S) as emu:
        for rep in range(repeats):
            seq = run_sequential(emu, n, f"s{rep}")
            many = run_generate_many(emu, n, f"m{rep}")
            ratio = many["wall_s"] / seq["wall_s"]
            runs.append({"sequential": seq, "generate_many": many, "ratio": ratio})
            print(
                f"repeat {rep + 1}/{repeats}: {n} requests, latency {LATENCY_S * 1000:.0f} ms | "
                f"sequential {seq['wall_s']:.2f} s ({seq['ok']} ok, client cpu {seq['cpu_s']:.2f} s) | "
                f"generate_many(max_concurrency={CONCURRENCY}) {many['wall_s']:.2f} s ({many['ok']} ok, "
                f"client cpu {many['cpu_s']:.2f} s, first result after {many['first_result_s']:.3f} s) | "
                f"ratio {ratio:.3f}"
            )
            assert seq["ok"] == many["ok"] == n, "every request must succeed"
    summary = {
        "requests": n,
        "latency_s": LATENCY_S,
        "max_concurrency": CONCURRENCY,
        "ideal_ratio": 1 / CONCURRENCY,
        "sequential_wall_s": median([r["sequential"]["wall_s"] for r in runs]),
        "generate_many_wall_s": median([r["generate_many"]["wall_s"] for r in runs]),
        "ratio": median([r["ratio"] for r in runs]),
        "runs": runs,
    }
    print(
        f"median: sequential {summary['sequential_wall_s']:.2f} s, generate_many "
        f"{summary['generate_many_wall_s']:.2f} s, ratio {summary['ratio']:.3f} "
        f"(target < 0.1; ideal {1 / CONCURRENCY:.4f})"
    )
    if args.memory_requests:
        mem = run_memory(50 if args.smoke else args.memory_requests)
        summary["memory"] = mem
        print(
            f"memory: {mem['ok']} of {mem['requests']} 1536x1024 PNGs streamed, {mem['received_mb']:.0f} MB "
            f"received in {mem['wall_s']:.1f} s; RSS (MB) at start and each quarter: {mem['rss_mb_at_quarters']}"
        )
    write_results("generate_many", summary, smoke=args.smoke, out=args.out)


if __name__ == "__main__":
    main()

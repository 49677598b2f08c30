"""Client-side pacing (``rate_limit``): the provider never sees more than ``requests`` submissions in
any window of ``period_s``, so a paced client causes no 429 (checked on the emulator's own record)."""

from __future__ import annotations

from dagster_imggen.providers.base import RateLimit
from dagster_imggen.providers.openai import OpenAIImageResource
from dagster_imggen.request import ImageRequest
from dagster_imggen.testing import ProviderEmulator


def _max_in_window(times: list[float], period_s: float) -> int:
    return max(sum(1 for u in times if t <= u < t + period_s) for t in times)


def test_paced_submissions_never_exceed_the_window_and_cause_no_429() -> None:
    requests, period = 5, 0.5
    with ProviderEmulator() as emu:
        emu.configure("openai", rate_limit=(requests, period))
        resource = OpenAIImageResource(
            api_key="sk-test-pacing",
            base_url=emu.base_url("openai"),
            max_concurrency=16,
            rate_limit=RateLimit(requests=requests, period_s=period),
        )
        batch = [ImageRequest(prompt=f"p{i}", size="1024x1024", quality="low") for i in range(15)]
        with resource:
            results = list(resource.generate_many(batch))
        calls = emu.calls("openai", op="generate")
    assert all(r.ok for r in results) and all(r.attempts == 1 for r in results)
    assert len(calls) == 15 and all(c.status == 200 for c in calls)
    assert _max_in_window([c.timestamp for c in calls], period) <= requests

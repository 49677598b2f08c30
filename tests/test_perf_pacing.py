"""The client-side pacer (``providers.base._Pacer``): never more than ``requests`` submissions in any
window of ``period_s``, even when the event loop stalls; a late wake-up is made up, not carried.

These check the algorithm's guarantees on the loop's own clock (admission instants), not speed.
"""

from __future__ import annotations

import asyncio
import itertools
import time

from dagster_imggen.providers.base import _PACING_MARGIN, RateLimit, _Pacer, _pacer_for
from dagster_imggen.providers.openai import OpenAIImageResource


def _max_in_window(times: list[float], period_s: float) -> int:
    return max(sum(1 for u in times if t <= u < t + period_s) for t in times)


class _RecordingPacer(_Pacer):
    """Records the loop time at which each caller is admitted."""

    def __init__(self, interval_s: float, tolerance_s: float) -> None:
        super().__init__(interval_s, tolerance_s)
        self.admitted: list[float] = []

    async def acquire(self, amount: float = 1) -> None:
        await super().acquire(amount)
        self.admitted.append(self._due - self._interval_s)  # the slot granted (<= admission time)


def test_pacer_for_keeps_every_window_under_the_limit() -> None:
    for requests, period in [(1, 0.05), (3, 0.1), (20, 2.0), (500, 60.0)]:
        pacer = _pacer_for(RateLimit(requests=requests, period_s=period))
        interval = _PACING_MARGIN * period / requests
        assert abs(pacer._interval_s - interval) < 1e-12
        # GCRA bound: at most 1 + floor((period + tolerance) / interval) admissions per window.
        assert 1 + int((period + pacer._tolerance_s) / interval) <= requests
        assert 0 <= pacer._tolerance_s < interval


def test_concurrent_callers_never_exceed_the_window() -> None:
    requests, period = 5, 0.1
    rl = RateLimit(requests=requests, period_s=period)
    base = _pacer_for(rl)
    pacer = _RecordingPacer(base._interval_s, base._tolerance_s)
    admitted: list[float] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def one() -> None:
            await pacer.acquire()
            admitted.append(loop.time())

        await asyncio.gather(*(one() for _ in range(25)))

    asyncio.run(main())
    assert len(admitted) == 25
    # Granted slots are spaced by exactly one interval: no window holds more than `requests`.
    slots = pacer.admitted
    assert all(b - a >= base._interval_s - 1e-9 for a, b in itertools.pairwise(slots))
    assert _max_in_window(slots, period) <= requests
    # Admission instants can only lag their slot; within the tolerance they may catch up.
    assert _max_in_window(admitted, period - base._tolerance_s) <= requests


def test_a_stalled_loop_releases_no_burst() -> None:
    rl = RateLimit(requests=4, period_s=0.08)
    pacer = _pacer_for(rl)
    admitted: list[float] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def one() -> None:
            await pacer.acquire()
            admitted.append(loop.time())

        tasks = [asyncio.create_task(one()) for _ in range(8)]
        await asyncio.sleep(0)
        time.sleep(0.2)  # the loop is blocked while callers wait for their slots
        await asyncio.gather(*tasks)

    asyncio.run(main())
    gaps = [b - a for a, b in itertools.pairwise(admitted)]
    # After the stall, callers are still admitted one slot apart (less at most the tolerance).
    assert all(g >= pacer._interval_s - pacer._tolerance_s - 1e-9 for g in gaps)


def test_remote_resource_uses_the_pacer() -> None:
    res = OpenAIImageResource(api_key="sk-test", rate_limit=RateLimit(requests=10, period_s=1.0))

    async def main() -> object:
        state = res._new_loop_state()
        limiter = state.limiter
        await state.aclose()
        return limiter

    assert isinstance(asyncio.run(main()), _Pacer)

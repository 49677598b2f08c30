"""Fault injection: one small table of fault kinds, and the ``FaultSpec`` that picks one.

| kind           | hits (default) | effect                                                              | provider did the work? |
|----------------|----------------|---------------------------------------------------------------------|------------------------|
| status         | submit         | HTTP ``status`` (default 500) with the provider's error body          | no                     |
| error_body     | submit         | HTTP 200 carrying the provider's error body (``code`` not 200/0)     | no                     |
| reset          | submit         | connection reset (RST) right after the request was read              | no                     |
| drop           | submit         | request processed, connection closed before any response byte        | yes                    |
| hang           | submit         | request processed, response held back ``delay_s`` (read timeouts)    | yes                    |
| slow_body      | submit         | headers and half the body, a ``delay_s`` stall, then the rest         | yes                    |
| malformed_json | submit         | HTTP 200 whose body is cut-off JSON                                  | yes                    |
| truncated_b64  | submit         | ``b64_json`` cut short (a url's file cut short)                      | yes                    |
| corrupt_image  | submit         | image bytes that do not decode                                       | yes                    |
| wrong_size     | submit         | an image of another size than asked                                  | yes                    |
| task_fail      | submit         | the task or job ends failed                                          | no                     |
| task_cancel    | submit         | the task ends cancelled                                              | no                     |
| task_stuck     | submit         | the task never finishes                                              | no                     |
| expired_url    | download       | the image URL answers ``status`` (default 410; 403/404 too)          | n/a                    |
| slow_download  | download       | the image download stalls ``delay_s`` mid-body                       | n/a                    |
| oversized      | download       | a body of ``size_bytes`` (default 64 MiB)                            | yes, if on submit      |

"submit" means a generation, edit or task-creation request; "poll" a task status request;
"download" a GET of an image URL; "any" all three. "Did the work" decides billing: the provider
charges for work it did even when the answer never arrived (see ``ProviderEmulator.billed``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["FAULT_KINDS", "FaultKind", "FaultSpec", "FaultTarget"]

FaultKind = Literal[
    "status",
    "error_body",
    "reset",
    "drop",
    "hang",
    "slow_body",
    "malformed_json",
    "truncated_b64",
    "corrupt_image",
    "wrong_size",
    "task_fail",
    "task_cancel",
    "task_stuck",
    "expired_url",
    "slow_download",
    "oversized",
]
FaultTarget = Literal["submit", "poll", "download", "any"]


#: The fault table: each kind and the requests it hits by default.
FAULT_KINDS: dict[str, FaultTarget] = {
    "status": "submit",
    "error_body": "submit",
    "reset": "submit",
    "drop": "submit",
    "hang": "submit",
    "slow_body": "submit",
    "malformed_json": "submit",
    "truncated_b64": "submit",
    "corrupt_image": "submit",
    "wrong_size": "submit",
    "task_fail": "submit",
    "task_cancel": "submit",
    "task_stuck": "submit",
    "expired_url": "download",
    "slow_download": "download",
    "oversized": "download",
}

#: Faults that change the images or the task, carried with the task or file they apply to.
OUTCOME_FAULTS = frozenset(
    {"truncated_b64", "corrupt_image", "wrong_size", "task_fail", "task_cancel", "task_stuck"}
)


@dataclass
class FaultSpec:
    """One fault to inject, e.g. ``FaultSpec("status", status=503, count=2)``.

    - ``kind``: a row of the table above.
    - ``count``: how many matching requests it hits (None: every one, until ``clear_faults``).
    - ``match``: only requests whose prompt contains this text, or for which this predicate of
      the prompt is true (polls and downloads carry their task's or image's prompt).
    - ``on``: which requests it hits (default: the kind's own, per the table).
    - ``status``/``code``/``message``: the HTTP status and the provider's error code and text
      (e.g. ``FaultSpec("status", status=400, code="moderation_blocked")`` on OpenAI).
    - ``delay_s``: seconds of stall for ``hang``, ``slow_body`` and ``slow_download``.
    - ``retry_after_s``: sent as ``retry-after`` (and ``retry-after-ms``) with a status fault.
    - ``size_bytes``: the body size of ``oversized``.
    """

    kind: FaultKind
    status: int | None = None
    count: int | None = 1
    match: str | Callable[[str], bool] | None = None
    on: FaultTarget | None = None
    code: str | int | None = None
    message: str | None = None
    delay_s: float = 1.0
    retry_after_s: float | None = None
    size_bytes: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {sorted(FAULT_KINDS)}")
        if self.count is not None and self.count < 1:
            raise ValueError("count must be >= 1 (or None for every matching request)")

    @property
    def target(self) -> FaultTarget:
        return self.on or FAULT_KINDS[self.kind]

    def hits(self, op: str, prompt: str | None) -> bool:
        """Whether this fault applies to a request of ``op`` (submit/poll/download) with ``prompt``."""
        if self.target != "any" and self.target != op:
            return False
        if self.match is None:
            return True
        if prompt is None:
            return False
        if isinstance(self.match, str):
            return self.match in prompt
        return bool(self.match(prompt))

"""The interface every emulated provider implements, and the services the emulator gives it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..result import TaskState, Usage
from ._wire import Reply, WireError, WireRequest

if TYPE_CHECKING:
    from ._record import BilledCall

__all__ = ["Call", "Env", "ProviderApp", "Route", "Task"]


@dataclass
class Task:
    """An async task or job. Its state follows the clock: queued for the first quarter of ``run_s``
    seconds, running until ``run_s``, then final (succeeded unless its ``fate`` says otherwise)."""

    id: str
    provider: str
    model: str
    prompt: str
    created: float  # time.monotonic()
    created_wall: float  # time.time()
    run_s: float
    fate: str | None = None  # an outcome fault kind, or None
    payload: dict[str, Any] = field(default_factory=dict)
    #: Provider-built result (entries, images), cached once built.
    result: Any = None
    settled: bool = False
    #: Called once when the task is first seen in a final state (bills it, by the provider's rule).
    on_settle: Callable[[Task], None] | None = None

    def progress(self, now: float) -> float:
        """Fraction of ``run_s`` elapsed (>= 1.0 when done); 1.0 for ``run_s`` <= 0."""
        return 1.0 if self.run_s <= 0 else (now - self.created) / self.run_s

    def state(self, now: float) -> TaskState:
        p = self.progress(now)
        if self.fate == "task_stuck":
            return TaskState.QUEUED if p < 0.25 and self.run_s > 0 else TaskState.RUNNING
        if p >= 1.0:
            if self.fate == "task_fail":
                return TaskState.FAILED
            if self.fate == "task_cancel":
                return TaskState.CANCELLED
            return TaskState.SUCCEEDED
        return TaskState.QUEUED if p < 0.25 else TaskState.RUNNING

    def completed_wall(self) -> float:
        return self.created_wall + max(self.run_s, 0.0)


@dataclass
class Call:
    """Per-request context for a handler: the outcome fault (if any) and the id it answered with."""

    fate: str | None = None
    request_id: str | None = None


class Env(Protocol):
    """Services of the emulator that provider modules use (implemented by ``ProviderEmulator``)."""

    def now(self) -> float: ...

    def new_id(self, prefix: str) -> str: ...

    def task_seconds(self, provider: str) -> float: ...

    def render(
        self,
        prompt: str,
        width: int,
        height: int,
        fmt: str,
        *,
        n: int = 1,
        fate: str | None = None,
        transparent: bool = False,
        compression: int | None = None,
    ) -> list[bytes]: ...

    def deliver(
        self,
        provider: str,
        images: list[bytes],
        fmt: str,
        mode: str,
        *,
        fate: str | None,
        prompt: str,
        prefix: str = "",
    ) -> list[dict[str, Any]]: ...

    def new_task(
        self,
        provider: str,
        model: str,
        prompt: str,
        *,
        fate: str | None,
        payload: dict[str, Any],
        on_settle: Callable[[Task], None] | None = None,
        prefix: str = "task_",
    ) -> Task: ...

    def get_task(self, provider: str, task_id: str) -> Task | None: ...

    def settle(self, task: Task) -> None: ...

    def bill(self, call: BilledCall) -> None: ...

    def usage(self, model: str, size: str, quality: str, n: int, prompt: str, input_images: int) -> Usage: ...

    def price(
        self,
        provider: str,
        model: str,
        *,
        size: str,
        quality: str,
        n: int,
        images_returned: int,
        usage: Usage | None,
        credits: Decimal | None,
    ) -> Decimal: ...


@dataclass(frozen=True)
class Route:
    """``method`` + a regex on the provider's own path; ``op`` is submit-side (generate/edit) or poll."""

    method: str
    pattern: re.Pattern[str]
    op: str  # "generate" | "edit" | "poll"
    handler: str  # name of the ProviderApp method: (req, match, call) -> Reply


def route(method: str, pattern: str, op: str, handler: str) -> Route:
    return Route(method, re.compile(pattern + r"/?$"), op, handler)


class ProviderApp:
    """One provider's routes, validation, error shape and billing rule."""

    name: ClassVar[str]
    #: Appended to "/{name}" to give the equivalent of the provider's default API root.
    api_root: ClassVar[str]
    routes: ClassVar[tuple[Route, ...]]
    #: Settings this provider starts with (e.g. AI Generate's documented rate limit).
    default_settings: ClassVar[dict[str, Any]] = {}

    def __init__(self, env: Env) -> None:
        self.env = env

    def charge(
        self,
        model: str,
        request_id: str | None,
        *,
        size: str,
        quality: str,
        n: int,
        images_returned: int | None = None,
        usage: Usage | None = None,
        credits: Decimal | None = None,
        note: str = "",
    ) -> None:
        """Bill one call or task: USD from the cost engine for this provider's pricing scheme."""
        from ._record import BilledCall

        returned = n if images_returned is None else images_returned
        usd = self.env.price(
            self.name,
            model,
            size=size,
            quality=quality,
            n=n,
            images_returned=returned,
            usage=usage,
            credits=credits,
        )
        self.env.bill(BilledCall(self.name, model, request_id, n, credits, usd, usage, note))

    def match(self, method: str, path: str) -> tuple[Route, re.Match[str]] | None:
        for r in self.routes:
            m = r.pattern.match(path)
            if m and r.method == method:
                return r, m
        return None

    def credentials(self, req: WireRequest, route: Route | None) -> tuple[str | None, str | None]:
        """(header name, key) this route takes its key from; default ``Authorization: Bearer``."""
        value = req.headers.get("authorization")
        if value is None:
            return None, None
        scheme, _, key = value.partition(" ")
        return "authorization", (key.strip() if scheme.lower() == "bearer" and key.strip() else "")

    def error(self, err: WireError, route: Route | None) -> Reply:
        """Render ``err`` in this provider's error shape."""
        raise NotImplementedError

    def rate_limited(self, retry_after_s: float, route: Route | None) -> WireError:
        return WireError(
            429, "Rate limit reached; retry later.", code="rate_limit_exceeded", type_="requests"
        )

    def unauthorized(self, missing: bool, route: Route | None) -> WireError:
        msg = "No API key provided." if missing else "Incorrect API key provided."
        return WireError(401, msg, code=None if missing else "invalid_api_key", type_="invalid_request_error")

    def not_found(self, req: WireRequest) -> WireError:
        return WireError(404, f"Invalid URL ({req.method} {req.path})", type_="invalid_request_error")

    def fault_error(
        self, status: int, code: str | int | None, message: str | None, route: Route | None
    ) -> WireError:
        """The error a status/error_body fault answers with (override for provider-specific codes)."""
        return WireError(
            status, message or _REASONS.get(status, "Injected error"), code=code, type_="server_error"
        )

    def prompt_of(self, req: WireRequest) -> str | None:
        p = req.params().get("prompt")
        return p if isinstance(p, str) else None

    def task_prompt(self, req: WireRequest, match: re.Match[str]) -> str | None:
        """The prompt of the task a poll is about (lets prompt-matched faults hit polls)."""
        task_id = match.groupdict().get("task_id") or req.query.get("taskId")
        task = self.env.get_task(self.name, task_id) if task_id else None
        return task.prompt if task else None


_REASONS = {
    400: "Bad request",
    401: "Unauthorized",
    402: "Insufficient credits",
    403: "Forbidden",
    404: "Not found",
    422: "Prompt rejected",
    429: "Too many requests",
    455: "Service unavailable",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
}

"""Resource base classes shared by every provider.

``ImageProviderResource`` is the Dagster ``ConfigurableResource`` every provider implements. All work
runs as coroutines on one event loop owned by the resource, in a background thread started lazily (or
by ``setup_for_execution``) and stopped by ``close()``/``teardown_after_execution``. The sync API
(``generate``, ``generate_many``) blocks on that loop; the async API (``agenerate``,
``agenerate_many``) awaits it from the caller's own loop. So one ``httpx.AsyncClient``, one
concurrency cap and one rate limiter serve every caller for the resource's lifetime.

Outside Dagster use the resource as a context manager (``with res: ...`` / ``async with res: ...``)
or call ``close()`` when done; an unclosed resource's idle thread is stopped when it is collected.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

import dagster as dg
import httpx
from aiolimiter import AsyncLimiter
from pydantic import Field, PrivateAttr

from .._log import logger
from ..errors import ImgGenError, redact
from ..request import ImageRequest
from ..result import Cost, GeneratedImage, ImageResult, Usage
from ._http import RETRYABLE_STATUSES, CallState, HttpSession, RetryPolicy
from ._tasks import TaskSnapshot, poll_until_done

__all__ = ["ImageProviderResource", "ProviderOutput", "RateLimit", "RemoteImageResource"]

T = TypeVar("T")


_PACING_MARGIN = 1.05


class RateLimit(dg.Config):
    """Client-side pacing: at most ``requests`` submissions per ``period_s`` seconds.

    Submissions are spaced evenly (``1.05 x period_s / requests`` apart, no bursts), so a provider's
    sliding window never sees more than ``requests`` per ``period_s``; polls and downloads are not
    paced.
    """

    requests: int = Field(gt=0, description="Submissions allowed per period.")
    period_s: float = Field(gt=0, description="Length of the period in seconds.")


@dataclass
class ProviderOutput:
    """What a provider module returns for one request; the base class adds cost and timing."""

    images: list[GeneratedImage]
    usage: Usage | None = None
    credits: Decimal | None = None
    request_id: str | None = None
    size: str | None = None
    quality: str | None = None
    output_format: str | None = None


@dataclass
class _LoopState:
    """Per-resource runtime objects; created on, and only used from, the resource's loop."""

    semaphore: asyncio.Semaphore
    limiter: AsyncLimiter | None = None
    client: httpx.AsyncClient | None = None
    session: HttpSession | None = None

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()


class _Runtime:
    """One background event-loop thread and the ``_LoopState`` living on it."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.state: _LoopState | None = None
        self._closed = False
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"imggen-{name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        if self._closed:
            coro.close()
            raise RuntimeError("this image provider resource is closed")
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self.thread

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self.loop.is_closed():
            return
        if self.in_loop_thread():  # called from a finalizer on our own thread: just stop
            self.loop.call_soon(self.loop.stop)
            return
        state = self.state
        if state is not None and self.loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(state.aclose(), self.loop).result(timeout=10)
            except Exception:  # closing must never raise
                logger.debug("error while closing the HTTP client", exc_info=True)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


_runtime_lock = threading.Lock()


class ImageProviderResource(dg.ConfigurableResource):
    """Base of every image provider resource.

    Subclasses set ``provider_name`` (the catalog key) and implement ``_produce``. Public API:

    - ``generate(request) -> ImageResult``; raises ``ImgGenError`` subclasses.
    - ``await agenerate(request) -> ImageResult``; same, from any event loop.
    - ``generate_many(requests) -> Iterator[ImageResult]`` / ``agenerate_many`` (async iterator):
      stream results in completion order, at most ``max_concurrency`` in flight; each failure is an
      ``ImageResult`` with ``error`` set, never an exception; ``result.request is`` the input object.
    - ``estimate(request) -> Cost``: the cost engine's estimate before sending.
    """

    provider_name: ClassVar[str] = ""

    default_quality: str | None = Field(
        default=None,
        description=(
            "Quality sent when a request leaves quality unset; None means the catalog's explicit "
            "default for the model (never an implicit 'auto')."
        ),
    )
    max_concurrency: int = Field(default=8, gt=0, description="Requests in flight at once.")

    _runtime: _Runtime | None = PrivateAttr(default=None)

    # ----------------------------------------------------------------------------- lifecycle

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._ensure_runtime()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client and stop the resource's loop thread. Safe to call twice."""
        runtime, self._runtime = self._runtime, None
        if runtime is not None:
            runtime.close()

    async def aclose(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self: T) -> T:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _ensure_runtime(self) -> _Runtime:
        runtime = self._runtime
        if runtime is not None:
            return runtime
        with _runtime_lock:
            if self._runtime is None:
                runtime = _Runtime(self.provider_name or type(self).__name__)
                weakref.finalize(self, runtime.close)
                self._runtime = runtime
            return self._runtime

    async def _loop_state(self) -> _LoopState:
        """The runtime state; call only on the resource's loop."""
        runtime = self._ensure_runtime()
        if runtime.state is None:
            runtime.state = self._new_loop_state()
        return runtime.state

    def _new_loop_state(self) -> _LoopState:
        return _LoopState(semaphore=asyncio.Semaphore(self.max_concurrency))

    # -------------------------------------------------------------------------------- public

    def generate(self, request: ImageRequest) -> ImageResult:
        """Run one request and wait for it. Raises ``ImgGenError`` subclasses on failure."""
        runtime = self._ensure_runtime()
        if runtime.in_loop_thread():
            raise RuntimeError("generate() called from the resource's own loop; use agenerate()")
        box: list[ImageResult] = []
        runtime.submit(_boxed(self._run(request, CallState()), box)).result()
        return box.pop()

    async def agenerate(self, request: ImageRequest) -> ImageResult:
        """Async ``generate``: awaits the work on the resource's loop from the caller's loop."""
        runtime = self._ensure_runtime()
        if runtime.in_loop_thread():
            return await self._run(request, CallState())
        box: list[ImageResult] = []
        await asyncio.wrap_future(runtime.submit(_boxed(self._run(request, CallState()), box)))
        return box.pop()

    def generate_many(self, requests: Iterable[ImageRequest]) -> Iterator[ImageResult]:
        """Yield one ``ImageResult`` per request, in completion order, as soon as each completes.

        The iterable is consumed lazily in the caller's thread: at most ``max_concurrency`` requests
        are in flight and finished results are not kept, so memory stays flat for any number of
        requests. Failures (invalid request, provider error, network) come back as results with
        ``error`` set. Closing the iterator early cancels what is still in flight.
        """
        runtime = self._ensure_runtime()
        iterator = iter(requests)
        pending: dict[concurrent.futures.Future[None], list[ImageResult]] = {}
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < self.max_concurrency:
                    try:
                        request = next(iterator)
                    except StopIteration:
                        exhausted = True
                        break
                    box: list[ImageResult] = []
                    pending[runtime.submit(_boxed(self._run_safe(request), box))] = box
                if not pending:
                    return
                done, _ = concurrent.futures.wait(
                    list(pending), return_when=concurrent.futures.FIRST_COMPLETED
                )
                for future in done:
                    box = pending.pop(future)
                    future.result()  # re-raises only what _run_safe cannot turn into a result
                    yield box.pop()
        finally:
            self._cancel_pending(pending)

    async def agenerate_many(
        self, requests: Iterable[ImageRequest] | AsyncIterable[ImageRequest]
    ) -> AsyncIterator[ImageResult]:
        """Async ``generate_many``; accepts a sync or an async iterable of requests."""
        runtime = self._ensure_runtime()
        source = _aiter(requests)
        pending: dict[asyncio.Future[None], list[ImageResult]] = {}
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < self.max_concurrency:
                    try:
                        request = await source.__anext__()
                    except StopAsyncIteration:
                        exhausted = True
                        break
                    box: list[ImageResult] = []
                    coro = _boxed(self._run_safe(request), box)
                    if runtime.in_loop_thread():
                        pending[asyncio.ensure_future(coro)] = box
                    else:
                        pending[asyncio.wrap_future(runtime.submit(coro))] = box
                if not pending:
                    return
                done, _ = await asyncio.wait(list(pending), return_when=asyncio.FIRST_COMPLETED)
                for future in done:
                    box = pending.pop(future)
                    future.result()
                    yield box.pop()
        finally:
            self._cancel_pending(pending)

    def estimate(self, request: ImageRequest) -> Cost:
        """The cost engine's estimate for ``request`` on this provider (USD ``Decimal`` + basis).

        Raises ``ImageRequestError`` when the request is invalid for this provider.
        """
        from ..cost import estimate_cost

        return estimate_cost(self._prepare(request), self.provider_name)

    # ------------------------------------------------------------------------------ internals

    def _prepare(self, request: ImageRequest) -> ImageRequest:
        """Validate for this provider and make the quality explicit (the resource's default)."""
        from ..cost import resolve_quality

        request.validate_for(self.provider_name)
        if request.quality is None:
            quality = resolve_quality(request, self.provider_name, self.default_quality)
            request = request.model_copy(update={"quality": quality})
        return request

    async def _run(self, request: ImageRequest, call: CallState) -> ImageResult:
        effective = self._prepare(request)
        state = await self._loop_state()
        async with state.semaphore:
            call.started = time.monotonic()
            try:
                out = await self._produce(effective, call, state)
            except ImgGenError as exc:
                if call.paid or call.possibly_billed:
                    exc.possibly_billed = True  # paid for (or maybe), but no usable image came of it
                raise
        return ImageResult(
            request=request,
            provider=self.provider_name,
            model=effective.model,
            images=out.images,
            usage=out.usage,
            credits=out.credits,
            cost=self._cost(effective, out),
            request_id=out.request_id or call.request_id,
            latency_s=call.elapsed_s,
            attempts=call.attempts,
            size=out.size,
            quality=out.quality,
            output_format=out.output_format,
            possibly_billed=call.possibly_billed,
        )

    async def _run_safe(self, request: ImageRequest) -> ImageResult:
        """``_run`` that turns every failure into an ``ImageResult`` with ``error`` set."""
        call = CallState()
        try:
            return await self._run(request, call)
        except ImgGenError as exc:
            error = exc
        except Exception as exc:  # a bug or an unexpected shape: keep the batch going, say so
            logger.exception("%s: unexpected error", self.provider_name)
            error = ImgGenError(redact(f"unexpected {type(exc).__name__}: {exc}", self._secret()))
            error.possibly_billed = call.attempts > 0
        billed = call.possibly_billed or error.possibly_billed
        logger.info("%s: request failed after %d attempt(s): %s", self.provider_name, call.attempts, error)
        return ImageResult(
            request=request,
            provider=self.provider_name,
            model=getattr(request, "model", ""),
            error=error,
            request_id=call.request_id or getattr(error, "request_id", None),
            latency_s=call.elapsed_s,
            attempts=call.attempts,
            possibly_billed=billed,
        )

    def _cancel_pending(
        self, pending: Iterable[concurrent.futures.Future[Any] | asyncio.Future[Any]]
    ) -> None:
        cancelled = sum(1 for future in pending if future.cancel())
        if cancelled:
            logger.warning(
                "%s: generate_many closed early; cancelled %d request(s) in flight (they may be billed)",
                self.provider_name,
                cancelled,
            )

    def _secret(self) -> str | None:
        return None

    def _cost(self, request: ImageRequest, out: ProviderOutput) -> Cost:
        from ..cost import cost_of_response

        return cost_of_response(
            request, self.provider_name, usage=out.usage, credits=out.credits, images_returned=len(out.images)
        )

    async def _produce(self, request: ImageRequest, call: CallState, state: _LoopState) -> ProviderOutput:
        """Turn one validated request (explicit quality) into images. Implemented per provider."""
        raise NotImplementedError


async def _boxed(coro: Coroutine[Any, Any, T], box: list[T]) -> None:
    """Await ``coro`` and put its result in ``box``.

    Futures chained across threads (``run_coroutine_threadsafe``, ``wrap_future``) keep references
    to each other through their callbacks, so a result handed back through them can outlive the
    caller's last reference (megabytes of images). The caller empties the box instead.
    """
    box.append(await coro)


async def _aiter(items: Iterable[T] | AsyncIterable[T]) -> AsyncIterator[T]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


class RemoteImageResource(ImageProviderResource):
    """Config shared by the HTTP providers (in the style of dagster-aws resources).

    ``api_key`` is meant for ``dg.EnvVar("...")``; it is excluded from ``repr`` and never logged.
    Timeouts are in seconds. ``idempotent`` (a ClassVar per provider, with its source) says whether a
    request that may already have been billed (read timeout, drop after send) is retried.
    """

    #: Whether re-sending a possibly-billed submission is safe (no double charge).
    idempotent: ClassVar[bool] = False
    #: Where ``idempotent`` comes from.
    idempotency_source: ClassVar[str] = "not documented; assumed not idempotent"

    #: HTTP statuses this provider documents as retryable.
    retryable_statuses: ClassVar[frozenset[int]] = RETRYABLE_STATUSES

    api_key: str = Field(repr=False, description="API key; use dg.EnvVar('...'). Never logged.")
    base_url: str = Field(default="", description="API root; the provider's documented paths are appended.")
    timeout_s: float = Field(
        default=360.0,
        gt=0,
        description="Read timeout in seconds per HTTP call (APIYI recommends 360 s for image calls).",
    )
    connect_timeout_s: float = Field(default=10.0, gt=0, description="Connect timeout in seconds.")
    rate_limit: RateLimit | None = Field(default=None, description="Client-side pacing of submissions.")
    max_retries: int = Field(default=3, ge=0, description="Retries after the first attempt.")
    backoff_base_s: float = Field(default=1.0, ge=0, description="Backoff base in seconds (full jitter).")
    backoff_max_s: float = Field(default=60.0, ge=0, description="Longest single backoff in seconds.")
    poll_interval_s: float = Field(default=2.0, gt=0, description="First poll interval for async tasks.")
    task_deadline_s: float = Field(default=900.0, gt=0, description="Overall deadline for an async task.")
    max_download_bytes: int = Field(
        default=50 * 1024 * 1024, gt=0, description="Byte cap for one downloaded result image."
    )
    max_response_bytes: int = Field(
        default=256 * 1024 * 1024, gt=0, description="Byte cap for one API answer (JSON with base64 images)."
    )

    #: Test hook: an ``httpx.AsyncBaseTransport`` (e.g. ``httpx.MockTransport``) used instead of the network.
    _transport: httpx.AsyncBaseTransport | None = PrivateAttr(default=None)

    def _secret(self) -> str | None:
        return self.api_key

    def _new_loop_state(self) -> _LoopState:
        state = super()._new_loop_state()
        timeout = httpx.Timeout(self.timeout_s, connect=self.connect_timeout_s)
        limits = httpx.Limits(max_connections=max(self.max_concurrency * 2, 10))
        state.client = httpx.AsyncClient(
            timeout=timeout, limits=limits, follow_redirects=False, transport=self._transport
        )
        if self.rate_limit is not None:
            # One slot every 1.05 x period/requests seconds: even pacing, no burst, and a 5% margin
            # so network jitter cannot squeeze requests+1 sends into one provider window.
            # aiolimiter with capacity 1: a late wake-up delays later slots a little (measured 0.935 of
            # the bound in benchmarks/README.md), which we accept over a home-made pacer.
            interval = _PACING_MARGIN * self.rate_limit.period_s / self.rate_limit.requests
            state.limiter = AsyncLimiter(1, interval)
        state.session = HttpSession(
            state.client,
            provider=self.provider_name,
            api_key=self.api_key,
            base_url=self.base_url,
            policy=RetryPolicy(
                max_retries=self.max_retries,
                backoff_base_s=self.backoff_base_s,
                backoff_max_s=self.backoff_max_s,
                retry_possibly_billed=self.idempotent,
                retryable_statuses=self.retryable_statuses,
            ),
            limiter=state.limiter,
            max_download_bytes=self.max_download_bytes,
            max_response_bytes=self.max_response_bytes,
        )
        return state

    @staticmethod
    def _session(state: _LoopState) -> HttpSession:
        assert state.session is not None
        return state.session

    async def _poll(
        self, fetch: Callable[[], Awaitable[TaskSnapshot]], task_id: str, call: CallState
    ) -> TaskSnapshot:
        """Poll a task with this resource's ``poll_interval_s`` and ``task_deadline_s`` until it succeeds."""
        return await poll_until_done(
            fetch,
            provider=self.provider_name,
            task_id=task_id,
            interval_s=self.poll_interval_s,
            deadline_s=self.task_deadline_s,
            started=call.started,
            secret=self.api_key,
        )

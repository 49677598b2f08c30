"""Shared HTTP pieces for the remote providers.

- :func:`error_from_response` / :func:`error_for_status`: a provider answer -> the ``errors`` hierarchy,
  parsing every documented error body shape (``{"error": {...}}`` with a numeric or string code,
  ``{code, msg}``, ``{code, message}``).
- :class:`HttpSession`: one retrying sender per resource over its one ``httpx.AsyncClient``.
- :meth:`HttpSession.download`: safe download of a result URL (https, SSRF guard, byte cap).
- :func:`decode_b64_image` and :func:`decode_image`: strict image decoding with Pillow.

Retries use a small loop of our own rather than tenacity: each attempt must be counted on the
``CallState``, the wait must honour ``retry-after``/``retry-after-ms`` from the error at hand, and read
timeouts are retried or not depending on the provider's idempotency. That is about 30 lines here,
versus a custom ``wait``/``retry``/``before_sleep`` trio in tenacity that would hide the same logic.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import email.utils
import io
import ipaddress
import json
import random
import socket
import time
import warnings
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import httpx
from aiolimiter import AsyncLimiter

from .._log import logger
from ..errors import (
    AuthenticationError,
    ContentRejectedError,
    DownloadError,
    ImageDecodeError,
    ImgGenError,
    InsufficientCreditsError,
    MalformedResponseError,
    ProviderError,
    RateLimitError,
    RetryableProviderError,
    TerminalProviderError,
    TransportError,
    UnsafeURLError,
    redact,
)
from ..result import GeneratedImage

__all__ = [
    "MAX_IMAGE_PIXELS",
    "CallState",
    "HttpSession",
    "ImageRef",
    "RetryPolicy",
    "decode_b64_image",
    "decode_image",
    "error_for_status",
    "error_from_body_code",
    "error_from_response",
    "fetch_images",
    "is_loopback_url",
    "parse_error_body",
    "parse_retry_after",
    "parse_size",
    "request_id_of",
    "response_json",
    "run_in_thread",
]

T = TypeVar("T")

#: Retryable HTTP statuses: 429 rate limited, 500/502/503 transient, 455 Kie "service unavailable".
RETRYABLE_STATUSES = frozenset({429, 455, 500, 502, 503})
#: Largest image we agree to decode, in pixels (gpt-image-2 tops out at 8,294,400 = 3840x2160;
#: OpenAI Images API docs). Anything claiming more is refused from its header, before decoding.
MAX_IMAGE_PIXELS = 16_777_216  # 4096 x 4096
_MAX_ERROR_TEXT = 500  # characters of a provider body kept in an exception message


# --------------------------------------------------------------------------------------------- errors


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` (milliseconds) or ``retry-after`` (seconds or HTTP date)."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(float(raw_ms) / 1000.0, 0.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def parse_error_body(body: Any) -> tuple[str | None, str | int | None, str | None]:
    """``(message, code, type)`` from any documented error body shape; Nones when absent.

    Shapes: ``{"error": {"message", "type", "param", "code"}}`` (code numeric or string),
    ``{"error": "text"}``, ``{"code", "msg"}``, ``{"code", "message"}``, ``{"detail": ...}``, and the
    PiAPI task wrapper ``{"code", "message", "data": {"error": {"code", "message"}}}``.
    """
    if not isinstance(body, dict):
        return None, None, None
    err = body.get("error")
    if isinstance(err, dict):
        msg = err.get("message") or err.get("msg")
        return (str(msg) if msg else None), _code(err.get("code")), _str_or_none(err.get("type"))
    if isinstance(err, str) and err:
        return err, _code(body.get("code")), None
    msg = body.get("msg") or body.get("message") or body.get("detail")
    code = _code(body.get("code"))
    data = body.get("data")
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        inner = data["error"]
        inner_msg = inner.get("message") or inner.get("msg")
        if inner_msg:
            msg = f"{msg}: {inner_msg}" if msg else inner_msg
        code = _code(inner.get("code")) or code
    if isinstance(msg, (dict, list)):
        msg = json.dumps(msg)
    return (str(msg) if msg else None), code, None


def _code(value: Any) -> str | int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return value
    text = str(value)
    return int(text) if text.isdigit() else text


def _str_or_none(value: Any) -> str | None:
    return str(value) if value else None


def error_for_status(
    status: int,
    message: str,
    *,
    provider: str,
    code: str | int | None = None,
    err_type: str | None = None,
    request_id: str | None = None,
    retry_after_s: float | None = None,
) -> ProviderError:
    """Map an HTTP status (or a Kie-style body ``code`` used as a status) onto the error hierarchy.

    Retryable: 429 (``RateLimitError``), 455, 500, 502, 503. Terminal: 401/403 (auth), 402 (credits),
    422 and ``moderation_blocked`` (content), every other 4xx/5xx. Provider string codes win over the
    status: ``moderation_blocked``/``content_policy_violation`` -> ``ContentRejectedError``,
    ``insufficient_credits``/``insufficient_quota`` -> ``InsufficientCreditsError``,
    ``unauthorized``/``invalid_api_key`` -> ``AuthenticationError``, ``rate_limited`` -> ``RateLimitError``.
    """
    kw: dict[str, Any] = {"provider": provider, "status_code": status, "code": code, "request_id": request_id}
    words = {str(code).lower() if code is not None else "", (err_type or "").lower()}
    if words & {"moderation_blocked", "content_policy_violation"}:
        return ContentRejectedError(message, **kw)
    if words & {"insufficient_credits", "insufficient_quota", "insufficient_balance"}:
        return InsufficientCreditsError(message, **kw)
    if words & {"unauthorized", "invalid_api_key", "authentication_error"}:
        return AuthenticationError(message, **kw)
    if status == 429 or words & {"rate_limited", "rate_limit_exceeded"}:
        return RateLimitError(message, retry_after_s=retry_after_s, **kw)
    if status in RETRYABLE_STATUSES:
        return RetryableProviderError(message, retry_after_s=retry_after_s, **kw)
    if status in (401, 403):
        return AuthenticationError(message, **kw)
    if status == 402:
        return InsufficientCreditsError(message, **kw)
    if status == 422:
        return ContentRejectedError(message, **kw)
    return TerminalProviderError(message, **kw)


def error_from_body_code(
    code: Any,
    message: str | None,
    *,
    provider: str,
    api_key: str | None,
    request_id: str | None = None,
    retry_after_s: float | None = None,
) -> ProviderError:
    """An error for a 2xx answer whose body ``code`` says failure (Kie/PiAPI wrappers).

    A numeric code in 400-599 is mapped like an HTTP status (so Kie's 455 and 429 are retryable);
    anything else is a ``MalformedResponseError`` carrying the code.
    """
    text = redact((message or "no message")[:_MAX_ERROR_TEXT], api_key)
    parsed = _code(code)
    if isinstance(parsed, int) and 400 <= parsed <= 599:
        return error_for_status(
            parsed, text, provider=provider, code=parsed, request_id=request_id, retry_after_s=retry_after_s
        )
    if isinstance(parsed, str):
        mapped = error_for_status(0, text, provider=provider, code=parsed, request_id=request_id)
        if type(mapped) is not TerminalProviderError:
            return mapped
    return MalformedResponseError(
        f"body code {code!r}: {text}", provider=provider, code=parsed, request_id=request_id
    )


def error_from_response(response: httpx.Response, *, provider: str, api_key: str | None) -> ProviderError:
    """Turn a non-2xx ``response`` into a ``ProviderError``; the body is redacted of ``api_key``."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    message, code, err_type = parse_error_body(body)
    if not message:
        message = response.text[:_MAX_ERROR_TEXT] or response.reason_phrase or "no error body"
    return error_for_status(
        response.status_code,
        redact(message[:_MAX_ERROR_TEXT], api_key),
        provider=provider,
        code=code,
        err_type=err_type,
        request_id=request_id_of(response),
        retry_after_s=parse_retry_after(response.headers),
    )


def request_id_of(response: httpx.Response) -> str | None:
    """The provider's request id header, when sent."""
    for name in ("x-request-id", "request-id", "x-oneapi-request-id", "cf-ray"):
        value = response.headers.get(name)
        if value:
            return value
    return None


def response_json(response: httpx.Response, *, provider: str, api_key: str | None) -> dict[str, Any]:
    """The JSON object of a 2xx response, or ``MalformedResponseError`` naming what came instead."""
    try:
        body = response.json()
    except ValueError:
        snippet = redact(response.text[:200], api_key)
        raise MalformedResponseError(
            f"response is not JSON: {snippet!r}", provider=provider, status_code=response.status_code
        ) from None
    if not isinstance(body, dict):
        raise MalformedResponseError(
            f"response JSON is a {type(body).__name__}, not an object",
            provider=provider,
            status_code=response.status_code,
        )
    return body


# ------------------------------------------------------------------------------------------ sessions


@dataclass
class RetryPolicy:
    """How one resource retries: ``max_retries`` extra attempts, full-jitter backoff in seconds."""

    max_retries: int = 3
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    #: Retry read timeouts / drops after the request was sent (only for idempotent providers).
    retry_possibly_billed: bool = False

    #: HTTP statuses this provider documents as retryable (Pixapi: only 429, 500, 503).
    retryable_statuses: frozenset[int] = RETRYABLE_STATUSES

    def delay(self, retry_number: int, retry_after_s: float | None) -> float:
        """Full jitter: ``uniform(0, min(max, base * 2**n))`` seconds, added on top of the server's
        ``retry-after`` when it sent one (so clients sharing a key do not all return at once)."""
        jitter = random.uniform(0.0, min(self.backoff_max_s, self.backoff_base_s * (2**retry_number)))
        return retry_after_s + jitter if retry_after_s is not None else jitter


@dataclass
class CallState:
    """Book-keeping for one ``ImageRequest``: HTTP submissions, billing doubt, provider id, timing."""

    attempts: int = 0  # HTTP submissions (retries included; polls and downloads excluded)
    possibly_billed: bool = False  # a submission was sent and its answer lost (timeout, drop)
    #: The provider accepted billable work (a 2xx sync answer, a task billed at creation, a task that
    #: succeeded): a failure after this point (bad image, expired URL) was still paid for.
    paid: bool = False
    request_id: str | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started


def is_loopback_url(url: str) -> bool:
    host = httpx.URL(url).host
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HttpSession:
    """Retrying HTTP for one provider over one ``httpx.AsyncClient`` (bound to one event loop).

    Authentication headers are passed per request (never as client defaults), so result downloads
    from a CDN never carry the API key.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        provider: str,
        api_key: str | None,
        base_url: str,
        policy: RetryPolicy,
        limiter: AsyncLimiter | None = None,
        max_download_bytes: int = 50 * 1024 * 1024,
        max_response_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        self.client = client
        self.provider = provider
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.policy = policy
        self.limiter = limiter
        self.max_download_bytes = max_download_bytes
        self.max_response_bytes = max_response_bytes
        base = httpx.URL(self.base_url)
        self._base_is_http = base.scheme == "http"
        self._base_is_loopback = is_loopback_url(self.base_url)

    def url(self, path: str) -> str:
        """``base_url`` + a documented path (absolute URLs pass through)."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    async def send(
        self,
        call: CallState,
        method: str,
        path: str,
        *,
        submission: bool = True,
        bills: bool = True,
        check: Callable[[httpx.Response], None] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send with retries and return the 2xx response; raise the mapped error otherwise.

        ``bills``: a 2xx answer to this submission is paid for (sets ``call.paid``); False for the
        creation of a task that is billed only when it succeeds.

        ``check`` inspects a 2xx response and raises a ``ProviderError`` when its body says failure
        (Kie/PiAPI body codes); a retryable one is retried like the matching HTTP status.

        ``submission=True`` (a request that may create billable work): counted in ``call.attempts``,
        paced by the rate limiter, and a read timeout or a drop after sending marks
        ``call.possibly_billed`` and is retried only when ``policy.retry_possibly_billed``.
        ``submission=False`` (a poll): not counted, not paced, every transient failure retried.

        Raises ``TransportError``, ``RetryableProviderError`` (after the last retry) or a
        ``TerminalProviderError`` subclass.
        """
        url = self.url(path)
        retry = 0
        while True:
            if submission:
                if self.limiter is not None:
                    await self.limiter.acquire()
                call.attempts += 1
            error: ImgGenError
            try:
                response = await self._request(method, url, **kwargs)
            except _TooLarge as exc:
                # A 2xx answer far beyond any image: it was processed (and billed) but is unusable.
                call.paid = call.paid or (submission and bills)
                raise MalformedResponseError(
                    f"answer to {method} {url} exceeded the {exc.cap}-byte cap", provider=self.provider
                ) from None
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteError) as exc:
                error = TransportError(f"{self.provider}: {type(exc).__name__} on {method} {url}: {exc}")
            except (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteTimeout) as exc:
                billed = submission
                call.possibly_billed = call.possibly_billed or billed
                error = TransportError(
                    f"{self.provider}: {type(exc).__name__} after sending {method} {url}"
                    + ("; the provider may have billed it" if billed else ""),
                    possibly_billed=billed,
                    retryable=not billed or self.policy.retry_possibly_billed,
                )
            except httpx.HTTPError as exc:
                error = TransportError(f"{self.provider}: {type(exc).__name__} on {method} {url}: {exc}")
            else:
                if response.is_success:
                    try:
                        if check is not None:
                            check(response)
                    except ProviderError as exc:
                        error = exc
                    else:
                        call.paid = call.paid or (submission and bills)
                        return response
                else:
                    error = error_from_response(response, provider=self.provider, api_key=self.api_key)
                    if error.retryable and response.status_code not in self.policy.retryable_statuses:
                        error.retryable = False  # this provider documents the status as final
                if response.status_code == 504 and submission:
                    # A gateway timeout: the upstream may have run (and billed) the request.
                    call.possibly_billed = True
                    error.possibly_billed = True
                    error.retryable = self.policy.retry_possibly_billed
            if not error.retryable or retry >= self.policy.max_retries:
                raise error
            retry_after = getattr(error, "retry_after_s", None)
            delay = self.policy.delay(retry, retry_after)
            retry += 1
            logger.warning(
                "%s: retry %d/%d of %s %s in %.2fs: %s",
                self.provider,
                retry,
                self.policy.max_retries,
                method,
                url,
                delay,
                redact(str(error), self.api_key),
            )
            await asyncio.sleep(delay)

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One HTTP exchange, the body read with a cap (``max_response_bytes`` for 2xx answers, a
        few KiB of an error page). Returns a fully read ``Response`` (no stream, no reference cycle).
        """
        async with _stream(self.client, method, url, **kwargs) as streamed:
            if streamed.is_success:
                body = await _read_capped(streamed, self.max_response_bytes, url)
            else:
                body = await _read_start(streamed, 64 * 1024)
            return httpx.Response(
                streamed.status_code, headers=streamed.headers, content=body, request=streamed.request
            )

    async def send_json(
        self,
        call: CallState,
        method: str,
        path: str,
        *,
        submission: bool = True,
        bills: bool = True,
        check: Callable[[dict[str, Any], httpx.Response], None] | None = None,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], httpx.Response]:
        """:meth:`send`, then the body as a JSON object (``MalformedResponseError`` otherwise).

        ``check(body, response)`` runs inside the retry loop (see :meth:`send`).
        """

        def check_response(response: httpx.Response) -> None:
            if check is not None:
                try:
                    body = response_json(response, provider=self.provider, api_key=self.api_key)
                except MalformedResponseError:
                    # A 2xx that does not parse was still processed (a task may exist and complete),
                    # unlike a body code saying failure: it may be billed.
                    call.possibly_billed = call.possibly_billed or submission
                    raise
                check(body, response)

        response = await self.send(
            call,
            method,
            path,
            submission=submission,
            bills=bills,
            check=check_response if check else None,
            **kwargs,
        )
        return response_json(response, provider=self.provider, api_key=self.api_key), response

    # ----------------------------------------------------------------------------------- downloads

    async def check_url(self, url: str) -> httpx.URL:
        """Refuse a result URL before fetching it (``UnsafeURLError``).

        https is required unless the base URL itself is http. When the base URL is not loopback,
        hosts that are (or resolve to) private, loopback, link-local, reserved or multicast addresses
        are refused (SSRF guard).
        """
        try:
            parsed = httpx.URL(url)
        except Exception:
            raise UnsafeURLError(f"not a URL: {url[:100]!r}", provider=self.provider) from None
        allowed = ("https", "http") if self._base_is_http else ("https",)
        if parsed.scheme not in allowed:
            raise UnsafeURLError(
                f"refusing {parsed.scheme or 'scheme-less'} result URL (need https): {url[:200]}",
                provider=self.provider,
            )
        if self._base_is_loopback:
            return parsed
        host = parsed.host
        if not host:
            raise UnsafeURLError(f"result URL without host: {url[:200]}", provider=self.provider)
        if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
            raise UnsafeURLError(f"refusing local host {host!r} in result URL", provider=self.provider)
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, parsed.port or 443, type=socket.SOCK_STREAM
                )
            except OSError as exc:
                raise DownloadError(f"cannot resolve {host!r}: {exc}", provider=self.provider) from None
            addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        for address in addresses:
            mapped = getattr(address, "ipv4_mapped", None)
            if (
                not address.is_global
                or (mapped is not None and not mapped.is_global)
                or address.is_private
                or address.is_loopback
                or address.is_link_local
                or address.is_reserved
                or address.is_multicast
                or address.is_unspecified
            ):
                raise UnsafeURLError(
                    f"refusing result URL on non-public address {address} ({host})", provider=self.provider
                )
        return parsed

    async def download(self, url: str, *, max_redirects: int = 5) -> bytes:
        """GET a result URL on the same client; at most ``max_download_bytes`` bytes.

        ``data:`` URLs are decoded in place. Redirects are followed by hand (each hop re-checked).
        Transient failures (connect errors, 429/5xx) are retried under the session's policy.
        Raises ``UnsafeURLError``, ``DownloadError`` (4xx such as an expired URL, byte cap, network),
        or ``ImageDecodeError`` for a bad ``data:`` URL.
        """
        if url.startswith("data:"):
            return decode_b64_image(url)
        retry = 0
        hops = 0
        while True:
            parsed = await self.check_url(url)
            try:
                async with _stream(self.client, "GET", parsed) as response:
                    if response.is_redirect and hops < max_redirects:
                        location = response.headers.get("location")
                        if not location:
                            raise DownloadError("redirect without location", provider=self.provider)
                        url = str(parsed.join(location))
                        hops += 1
                        continue
                    if not response.is_success:
                        status = response.status_code
                        snippet = await _read_start(response, 1024)  # an error page: its start only
                        text = redact(snippet[:200].decode("utf-8", "replace"), self.api_key)
                        exc: ImgGenError = DownloadError(
                            f"download of {url[:200]} failed: HTTP {status} {text}",
                            provider=self.provider,
                            status_code=status,
                        )
                        exc.retryable = status in RETRYABLE_STATUSES
                        raise exc
                    try:
                        return await _read_capped(response, self.max_download_bytes, url)
                    except _TooLarge as exc:
                        raise DownloadError(
                            f"download of {url[:200]} exceeded the {exc.cap}-byte cap", provider=self.provider
                        ) from None
            except DownloadError as err:
                if not err.retryable or retry >= self.policy.max_retries:
                    raise
                error: ImgGenError = err
            except httpx.HTTPError as err:
                error = DownloadError(
                    f"download of {url[:200]} failed: {type(err).__name__}: {err}", provider=self.provider
                )
                if retry >= self.policy.max_retries:
                    raise error from None
            delay = self.policy.delay(retry, None)
            retry += 1
            logger.warning(
                "%s: retry %d/%d of download %s in %.2fs: %s",
                self.provider,
                retry,
                self.policy.max_retries,
                url[:200],
                delay,
                error,
            )
            await asyncio.sleep(delay)


@contextlib.asynccontextmanager
async def _stream(
    client: httpx.AsyncClient, method: str, url: str | httpx.URL, **kwargs: Any
) -> AsyncIterator[httpx.Response]:
    """``client.stream(...)``, then (once closed) the Response <-> stream reference cycle is broken,
    so the response and its buffers go with their last reference rather than at the next cyclic GC."""
    response: httpx.Response | None = None
    try:
        async with client.stream(method, url, **kwargs) as response:
            yield response
    finally:
        if response is not None:
            response.stream = httpx.ByteStream(b"")


class _TooLarge(Exception):
    def __init__(self, cap: int) -> None:
        self.cap = cap


async def _read_capped(response: httpx.Response, cap: int, url: str) -> bytes:
    """The streamed body, or ``_TooLarge`` as soon as it (or its content-length) passes ``cap`` bytes."""
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise _TooLarge(cap)
    buffer = bytearray()
    async for chunk in response.aiter_bytes():
        buffer += chunk
        if len(buffer) > cap:
            raise _TooLarge(cap)
    return bytes(buffer)


async def _read_start(response: httpx.Response, limit: int) -> bytes:
    """At most about ``limit`` bytes of the streamed body (an error page)."""
    buffer = bytearray()
    async for chunk in response.aiter_bytes():
        buffer += chunk
        if len(buffer) >= limit:
            break
    return bytes(buffer)


# ------------------------------------------------------------------------------------------- images


@dataclass(frozen=True)
class ImageRef:
    """One image in a response: inline base64 (``kind="b64"``) or a URL to download."""

    kind: Literal["b64", "url"]
    value: str

    def __repr__(self) -> str:  # base64 payloads are megabytes: never print them
        return f"ImageRef({self.kind}, {self.value[:60]!r}{'...' if len(self.value) > 60 else ''})"


async def fetch_images(
    session: HttpSession, refs: list[ImageRef], *, expect_size: tuple[int, int] | None
) -> list[GeneratedImage]:
    """Decode (b64) or download (url) each ref, then decode the bytes in the default thread pool.

    Raises ``ImageDecodeError``, ``DownloadError`` or ``UnsafeURLError``.
    """

    async def one(ref: ImageRef) -> GeneratedImage:
        if ref.kind == "b64":
            data = await _offload(decode_b64_image, ref.value, size=len(ref.value))
        else:
            data = await session.download(ref.value)
        return await _offload(_decode_expecting, data, expect_size, size=len(data))

    outcomes = await asyncio.gather(*(one(ref) for ref in refs), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return [outcome for outcome in outcomes if isinstance(outcome, GeneratedImage)]


#: Payloads below this many bytes are decoded inline: a thread hop costs more than the work.
_INLINE_BYTES = 256 * 1024


async def run_in_thread(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` in the running loop's default thread pool.

    The result comes back through a list, not the executor's future: asyncio chains that future to
    its own in a reference cycle, which would hold the result (megabytes of image) until the cyclic
    GC runs rather than until the caller drops it.
    """
    box: list[T] = []
    await asyncio.get_running_loop().run_in_executor(None, lambda: box.append(func(*args)))
    return box.pop()


async def _offload(func: Callable[..., T], *args: Any, size: int) -> T:
    """``func(*args)`` inline for small payloads (a thread hop costs more), else in the thread pool."""
    if size < _INLINE_BYTES:
        return func(*args)
    return await run_in_thread(func, *args)


def _decode_expecting(data: bytes, expect_size: tuple[int, int] | None) -> GeneratedImage:
    return decode_image(data, expect_size=expect_size)


def decode_b64_image(text: str) -> bytes:
    """Decode base64 image data, with or without a ``data:image/...;base64,`` prefix.

    Strict: invalid characters or a truncated string (bad padding) raise ``ImageDecodeError``.
    """
    if not isinstance(text, str) or not text:
        raise ImageDecodeError("empty or non-string base64 image data")
    data = text.strip()
    if data.startswith("data:"):
        header, sep, data = data.partition(",")
        if not sep or ";base64" not in header:
            raise ImageDecodeError(f"unsupported data URL header {header[:60]!r}")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        pass
    # Line-wrapped base64 is valid too; only then pay for a copy without the whitespace.
    compact = "".join(data.split())
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageDecodeError(
            f"invalid or truncated base64 image data ({len(compact)} chars): {exc}"
        ) from None


def parse_size(size: str | None) -> tuple[int, int] | None:
    """``"1536x1024"`` -> ``(1536, 1024)``; None for ``auto``/None/unparseable."""
    if not size or size == "auto":
        return None
    width, sep, height = size.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        return None
    return int(width), int(height)


def decode_image(data: bytes, *, expect_size: tuple[int, int] | None = None) -> GeneratedImage:
    """Identify ``data`` and return a ``GeneratedImage`` read from the bytes (Pillow).

    Checks, cheapest first, none of which decodes the pixels: the container is complete (PNG ends
    with ``IEND``, JPEG with the EOI marker, WebP is as long as its RIFF header says); the header's
    dimensions are within ``MAX_IMAGE_PIXELS`` (Pillow's decompression-bomb warning is an error too);
    then ``GeneratedImage.from_bytes`` (Pillow ``verify``). ``expect_size`` (width, height) must match
    when given. Raises ``ImageDecodeError``.
    """
    from PIL import Image

    _check_complete(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                width, height = im.size
    except Exception as exc:  # Pillow raises many types (OSError, SyntaxError, DecompressionBomb*)
        raise ImageDecodeError(f"image does not decode: {type(exc).__name__}: {exc}") from None
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageDecodeError(
            f"image claims {width}x{height} pixels, over the {MAX_IMAGE_PIXELS}-pixel limit"
        )
    image = GeneratedImage.from_bytes(data)
    if expect_size is not None and (image.width, image.height) != expect_size:
        raise ImageDecodeError(
            f"received a {image.width}x{image.height} image, asked for {expect_size[0]}x{expect_size[1]}"
        )
    return image


_PNG_END = b"IEND\xaeB`\x82"


def _check_complete(data: bytes) -> None:
    """Refuse truncated PNG/JPEG/WebP containers (``ImageDecodeError``); other bytes pass to Pillow."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        if not data.endswith(_PNG_END):
            raise ImageDecodeError(f"truncated PNG ({len(data)} bytes, no IEND chunk at the end)")
    elif data.startswith(b"\xff\xd8\xff"):
        if b"\xff\xd9" not in data.rstrip(b"\x00\r\n")[-64:]:
            raise ImageDecodeError(f"truncated JPEG ({len(data)} bytes, no end-of-image marker)")
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        declared = int.from_bytes(data[4:8], "little") + 8
        if len(data) < declared:
            raise ImageDecodeError(f"truncated WebP ({len(data)} of {declared} bytes)")

"""Public exception hierarchy, in the spirit of httpx's explicit errors.

``ImgGenError``
├── ``ImageRequestError`` (also ``ValueError``): a request or input row breaks a rule; never sent.
├── ``ProviderError``: the provider answered with an error, or with something unusable.
│   ├── ``RetryableProviderError``: 429, 500, 502, 503, Kie's 455; retried with backoff.
│   │   └── ``RateLimitError``: 429; ``retry_after_s`` from ``retry-after`` / ``retry-after-ms``.
│   ├── ``TerminalProviderError``: 400, 401, 402, 404, 422; never retried.
│   │   ├── ``AuthenticationError`` (401/403), ``InsufficientCreditsError`` (402),
│   │   └── ``ContentRejectedError`` (422, OpenAI ``moderation_blocked``).
│   ├── ``MalformedResponseError``: 200 with a body that is not the documented shape.
│   ├── ``ImageDecodeError``: image bytes that do not decode, or do not match what was asked.
│   ├── ``DownloadError`` / ``UnsafeURLError``: a result URL that fails or is refused (SSRF guard).
│   └── ``TaskFailedError`` / ``TaskCancelledError`` / ``TaskTimeoutError``: async task outcomes.
└── ``TransportError``: the network failed. ``possibly_billed`` is True when the request was sent
    and no answer came back (a read timeout): the provider may have charged for it.

Messages never contain API keys: provider bodies are passed through :func:`redact` first.
"""

from __future__ import annotations

import re

__all__ = [
    "AuthenticationError",
    "ContentRejectedError",
    "DownloadError",
    "ImageDecodeError",
    "ImageRequestError",
    "ImgGenError",
    "InsufficientCreditsError",
    "MalformedResponseError",
    "ProviderError",
    "RateLimitError",
    "RetryableProviderError",
    "TaskCancelledError",
    "TaskFailedError",
    "TaskTimeoutError",
    "TerminalProviderError",
    "TransportError",
    "UnsafeURLError",
    "redact",
]

_SECRET_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-~+/=]{6,}"),
    re.compile(r"(?i)((?:api[_-]?key|x-api-key|authorization|token)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{6,}"),
    re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"),
]


def redact(text: str, *secrets: str | None) -> str:
    """Return ``text`` with the given secrets and anything shaped like a key replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.lastindex else "") + "***", text)
    return text


class ImgGenError(Exception):
    """Base class of every error this library raises on purpose."""

    #: True when the provider may have charged for the request that raised this error.
    possibly_billed: bool = False
    #: Whether the client may retry the request that raised this error.
    retryable: bool = False


class ImageRequestError(ImgGenError, ValueError):
    """A request (or an input row) breaks a documented rule. Raised before anything is sent.

    ``field`` names the offending field; ``row`` the input row (0-based) when it came from a table.
    """

    def __init__(self, message: str, *, field: str | None = None, row: int | str | None = None) -> None:
        self.field = field
        self.row = row
        prefix = f"row {row}: " if row is not None else ""
        super().__init__(prefix + message)


class ProviderError(ImgGenError):
    """The provider answered, but not with a usable image.

    Attributes: ``provider``, ``status_code`` (HTTP status, or None), ``code`` (the provider's own
    error code, numeric or string), ``request_id``.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status_code: int | None = None,
        code: str | int | None = None,
        request_id: str | None = None,
    ) -> None:
        self.provider = provider
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        parts = [
            p for p in (provider, str(status_code) if status_code else None, str(code) if code else None) if p
        ]
        super().__init__(f"[{' '.join(parts)}] {message}" if parts else message)


class RetryableProviderError(ProviderError):
    """A transient provider failure (429, 500, 502, 503, Kie 455): safe to retry after a pause."""

    retryable = True

    def __init__(self, message: str, *, retry_after_s: float | None = None, **kw: object) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message, **kw)  # type: ignore[arg-type]


class RateLimitError(RetryableProviderError):
    """HTTP 429. ``retry_after_s`` holds the server's ``retry-after``/``retry-after-ms`` when sent."""


class TerminalProviderError(ProviderError):
    """A failure that retrying cannot fix (400, 404 and the subclasses below)."""


class AuthenticationError(TerminalProviderError):
    """HTTP 401/403: the key is missing, wrong or not allowed."""


class InsufficientCreditsError(TerminalProviderError):
    """HTTP 402, or a provider's ``insufficient_credits`` code."""


class ContentRejectedError(TerminalProviderError):
    """The prompt or image was refused: HTTP 422, or OpenAI's ``moderation_blocked``. Never retried."""


class MalformedResponseError(ProviderError):
    """A 2xx answer whose body is not the documented shape (bad JSON, missing fields, body error code)."""


class ImageDecodeError(ProviderError):
    """Image bytes that are truncated, corrupt, too large to decode safely, or of another size than asked."""


class DownloadError(ProviderError):
    """A result URL that answered 4xx/5xx, expired, was too slow, or exceeded the byte cap."""


class UnsafeURLError(DownloadError):
    """A result URL refused before download: not https, or a private/loopback/link-local host (SSRF)."""


class TaskFailedError(ProviderError):
    """An async task or job that ended in the provider's failed state."""


class TaskCancelledError(TaskFailedError):
    """An async task that the provider reports as cancelled."""


class TaskTimeoutError(ProviderError):
    """An async task that had not finished by the client's deadline. It may still complete and bill."""

    possibly_billed = True


class TransportError(ImgGenError):
    """The network failed: connect error, reset, or timeout.

    ``possibly_billed`` is True when the request body had been sent (read timeout, reset after send).
    """

    def __init__(self, message: str, *, possibly_billed: bool = False, retryable: bool = True) -> None:
        self.possibly_billed = possibly_billed
        self.retryable = retryable
        super().__init__(message)

"""Submit-then-poll helpers for async tasks and Kie-style jobs.

Each provider module maps its own status words (any case) onto ``TaskState`` with
:func:`map_state`, fetches snapshots its own way, and calls :func:`poll_until_done`, which polls with
backoff until the task is done or the overall deadline passes. :func:`find_image_refs` digs the result
images out of any of the documented nestings (``data[]``, ``output.data[]``, ``result.images[]``,
``url`` as a string or a list, Kie's ``resultJson`` string with ``resultUrls``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from .._log import logger
from ..errors import (
    ImgGenError,
    MalformedResponseError,
    TaskCancelledError,
    TaskFailedError,
    TaskTimeoutError,
    redact,
)
from ..result import TaskState, Usage
from ._http import ImageRef

__all__ = [
    "ImageRef",
    "TaskSnapshot",
    "find_credits",
    "find_image_refs",
    "find_usage",
    "map_state",
    "poll_until_done",
]


@dataclass
class TaskSnapshot:
    """One poll of a task: its state, the task object as sent, and the failure reason if any."""

    task_id: str
    state: TaskState
    body: dict[str, Any] = field(default_factory=dict)
    error_message: str | None = None
    error_code: str | int | None = None


def map_state(word: Any, mapping: Mapping[str, TaskState], *, provider: str) -> TaskState:
    """Map a provider status word (any case, surrounding blanks ignored) via ``mapping`` (lowercase keys).

    Raises ``MalformedResponseError`` for a word the provider does not document.
    """
    key = str(word).strip().lower() if word is not None else ""
    try:
        return mapping[key]
    except KeyError:
        raise MalformedResponseError(f"unknown task status {word!r}", provider=provider) from None


async def poll_until_done(
    fetch: Callable[[], Awaitable[TaskSnapshot]],
    *,
    provider: str,
    task_id: str,
    interval_s: float,
    deadline_s: float,
    started: float | None = None,
    max_interval_s: float = 15.0,
    backoff: float = 1.5,
    secret: str | None = None,
) -> TaskSnapshot:
    """Poll ``fetch`` until the task succeeds; return that snapshot.

    The first poll comes after ``interval_s`` seconds; intervals grow by ``backoff`` up to
    ``max_interval_s``. ``deadline_s`` counts from ``started`` (a ``time.monotonic()`` value, default
    now). Raises ``TaskFailedError``, ``TaskCancelledError``, or ``TaskTimeoutError`` (possibly
    billed: the task may still finish) naming the task id. The provider's failure message is
    redacted of ``secret`` (the API key) and anything shaped like a key.
    """
    start = time.monotonic() if started is None else started
    deadline = start + deadline_s
    delay = interval_s
    polls = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TaskTimeoutError(
                f"task {task_id} not finished after {deadline_s:.0f}s ({polls} polls); it may still "
                "complete and be billed",
                provider=provider,
                request_id=task_id,
            )
        await asyncio.sleep(min(delay, remaining))
        polls += 1
        try:
            snapshot = await fetch()
        except ImgGenError as exc:
            if not exc.retryable:
                raise
            # A transient failure of the poll itself (after the session's own retries): the task is
            # still alive on the provider's side, so keep polling until the deadline.
            logger.warning(
                "%s: poll %d of task %s failed, polling on: %s",
                provider,
                polls,
                task_id,
                redact(str(exc), secret),
            )
            delay = min(delay * backoff, max_interval_s)
            continue
        if snapshot.state is TaskState.SUCCEEDED:
            return snapshot
        reason = redact(str(snapshot.error_message or "no reason given")[:500], secret)
        if snapshot.state is TaskState.CANCELLED:
            raise TaskCancelledError(
                f"task {task_id} was cancelled: {reason}",
                provider=provider,
                code=snapshot.error_code,
                request_id=task_id,
            )
        if snapshot.state is TaskState.FAILED:
            raise TaskFailedError(
                f"task {task_id} failed: {reason}",
                provider=provider,
                code=snapshot.error_code,
                request_id=task_id,
            )
        logger.debug("%s: task %s is %s (poll %d)", provider, task_id, snapshot.state.value, polls)
        delay = min(delay * backoff, max_interval_s)


_B64_KEYS = ("b64_json", "b64", "base64", "image_base64")
_URL_KEYS = ("url", "urls", "image_url", "image_urls", "imageUrl", "resultUrls", "result_urls")
_NEST_KEYS = ("data", "output", "result", "images", "resultJson", "result_json", "response")


def find_image_refs(node: Any, *, _depth: int = 0) -> list[ImageRef]:
    """All result images under ``node`` in document order, from the first key that holds any.

    Accepts ``{"data": [{"b64_json"|"url"}]}``, ``{"output": {"data": [...]}}``,
    ``{"result": {"images": [{"url": "..." | [...]}]}}``, ``{"url": "..." | [...]}``,
    ``{"resultJson": "{\\"resultUrls\\": [...]}"}`` and plain strings (URLs or ``data:`` URLs).
    """
    if _depth > 6 or node is None:
        return []
    if isinstance(node, str):
        text = node.strip()
        if text.startswith(("http://", "https://", "data:")):
            return [ImageRef("url" if not text.startswith("data:") else "b64", text)]
        return []
    if isinstance(node, list):
        return [ref for item in node for ref in find_image_refs(item, _depth=_depth + 1)]
    if not isinstance(node, dict):
        return []
    refs: list[ImageRef] = []
    for key in _B64_KEYS:
        value = node.get(key)
        if isinstance(value, str) and value:
            refs.append(ImageRef("b64", value))
    if not refs:
        for key in _URL_KEYS:
            refs.extend(find_image_refs(node.get(key), _depth=_depth + 1))
            if refs:
                break
    if refs:
        return refs
    for key in _NEST_KEYS:
        value = node.get(key)
        if isinstance(value, str) and key in ("resultJson", "result_json"):
            text = value
            try:
                value = json.loads(text) if text else None
            except ValueError:
                raise MalformedResponseError(f"{key} is not JSON: {text[:100]!r}") from None
        refs = find_image_refs(value, _depth=_depth + 1)
        if refs:
            return refs
    return []


def find_usage(node: Any, *, _depth: int = 0) -> Usage | None:
    """The first OpenAI-style ``usage`` object under ``node`` (``output``/``result``/``data`` nests)."""
    if not isinstance(node, dict) or _depth > 4:
        return None
    usage = Usage.from_openai(node.get("usage")) if isinstance(node.get("usage"), dict) else None
    if usage is not None:
        return usage
    for key in ("output", "result", "data"):
        found = find_usage(node.get(key), _depth=_depth + 1)
        if found is not None:
            return found
    return None


_CREDIT_KEYS = ("credits", "costCredits", "cost_credits", "credits_charged", "creditsCharged")


def find_credits(node: Any, *, _depth: int = 0) -> Decimal | None:
    """Credits charged, from the first credits-like field under ``node`` (None when absent)."""
    if not isinstance(node, dict) or _depth > 4:
        return None
    for key in _CREDIT_KEYS:
        value = node.get(key)
        if value is not None and not isinstance(value, (dict, list, bool)):
            try:
                return Decimal(str(value))
            except InvalidOperation:
                continue
    for key in ("data", "output", "result", "task"):
        found = find_credits(node.get(key), _depth=_depth + 1)
        if found is not None:
            return found
    return None

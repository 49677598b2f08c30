"""``PixapiImageResource``: Pixapi's OpenAI-compatible GPT Image routes, sync or as async tasks.

Quirks (source: ``../shared/providers/001_d01986769ffd2010.txt`` and ``README.md`` there, as of
2026-11-21):

- API root ``https://api.pixapi.ai``; sync ``POST /v1/images/generations`` and multipart
  ``/v1/images/edits`` (field ``image``, a file or several); ``response_format`` url | b64_json;
- async ``POST /v1/async/images/generations`` (JSON) and ``/v1/async/images/edits`` (multipart)
  return a task with ``id``; it is polled at ``GET /v1/async/tasks/{id}`` [likely] until
  ``completed`` (then it carries the image URLs) or ``failed``;
- billing is in credits (size tier x quality x n); a ``credits``/``costCredits`` field is read when
  present;
- errors: ``{"error": {"code": 400 | "insufficient_credits" | ..., "message", "type"}}``; only 429,
  500 and 503 are retryable, and async creation is not idempotent (a repeat is charged again).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator

from ..errors import MalformedResponseError
from ..request import ImageRequest
from ..result import TaskState
from ._http import CallState, HttpSession, fetch_images
from ._openai_wire import (
    RESPONSE_FORMATS,
    TASK_MODES,
    OpenAICompatibleResource,
    check_choice,
)
from ._tasks import TaskSnapshot, find_credits, find_image_refs, find_usage, map_state
from .base import ProviderOutput, _LoopState

__all__ = ["PixapiImageResource"]

_STATES = {
    "queued": TaskState.QUEUED,
    "pending": TaskState.QUEUED,
    "submitted": TaskState.QUEUED,
    "processing": TaskState.RUNNING,
    "running": TaskState.RUNNING,
    "in_progress": TaskState.RUNNING,
    "completed": TaskState.SUCCEEDED,
    "succeeded": TaskState.SUCCEEDED,
    "success": TaskState.SUCCEEDED,
    "failed": TaskState.FAILED,
    "error": TaskState.FAILED,
    "cancelled": TaskState.CANCELLED,
    "canceled": TaskState.CANCELLED,
}


class PixapiImageResource(OpenAICompatibleResource):
    """Pixapi (``https://api.pixapi.ai``): sync OpenAI-compatible routes, or async tasks (``mode="async"``)."""

    provider_name: ClassVar[str] = "pixapi"
    idempotent: ClassVar[bool] = False
    idempotency_source: ClassVar[str] = (
        "Pixapi docs: async creation is not idempotent (a repeat is charged again)"
    )
    # Pixapi documents retrying only 429, 500 and 503 (README.md in ../shared/providers/).
    retryable_statuses: ClassVar[frozenset[int]] = frozenset({429, 500, 503})
    generations_path: ClassVar[str] = "v1/images/generations"
    edits_path: ClassVar[str] = "v1/images/edits"
    async_generations_path: ClassVar[str] = "v1/async/images/generations"
    async_edits_path: ClassVar[str] = "v1/async/images/edits"
    task_path: ClassVar[str] = "v1/async/tasks/{task_id}"

    base_url: str = Field(default="https://api.pixapi.ai", description="API root (no /v1).")
    mode: str = Field(default="sync", description="sync routes or async tasks.")
    response_format: str | None = Field(default=None, description="Sent when set.")

    check_response_format = field_validator("response_format")(check_choice(RESPONSE_FORMATS))
    check_mode = field_validator("mode")(check_choice(TASK_MODES))

    def _edit_image_field(self, count: int) -> str:
        return "image"

    def _response_format(self, request: ImageRequest) -> str | None:
        return self.response_format

    async def _produce(self, request: ImageRequest, call: CallState, state: _LoopState) -> ProviderOutput:
        if self.mode == "sync":
            return await super()._produce(request, call, state)
        session = self._session(state)
        headers = self._auth_headers()
        body, _ = await self._post_images(
            request, call, state, paths=(self.async_generations_path, self.async_edits_path)
        )
        self._refuse_error_body(body, call, None)
        first = self._snapshot(body)
        call.request_id = first.task_id

        async def fetch() -> TaskSnapshot:
            polled, _ = await session.send_json(
                call, "GET", self.task_path.format(task_id=first.task_id), headers=headers, submission=False
            )
            return self._snapshot(polled)

        done = first
        if first.state is not TaskState.SUCCEEDED:
            done = await self._poll(fetch, first.task_id, call)
        return await self._output_from_task(done, request, session, submitted=body)

    async def _output_from_body(
        self, body: dict[str, Any], request_id: str | None, request: ImageRequest, state: _LoopState
    ) -> ProviderOutput:
        out = await super()._output_from_body(body, request_id, request, state)
        out.credits = find_credits(body)
        return out

    def _snapshot(self, body: dict[str, Any]) -> TaskSnapshot:
        task = body.get("data") if isinstance(body.get("data"), dict) and "id" not in body else body
        if not isinstance(task, dict) or not task.get("id"):
            raise MalformedResponseError("async response without a task id", provider=self.provider_name)
        error = task.get("error")
        message = error.get("message") if isinstance(error, dict) else error
        code = error.get("code") if isinstance(error, dict) else None
        return TaskSnapshot(
            task_id=str(task["id"]),
            state=map_state(task.get("status"), _STATES, provider=self.provider_name),
            body=task,
            error_message=str(message)
            if message
            else task.get("error_message") or task.get("failure_reason"),
            error_code=code,
        )

    async def _output_from_task(
        self,
        snapshot: TaskSnapshot,
        request: ImageRequest,
        session: HttpSession,
        *,
        submitted: dict[str, Any],
    ) -> ProviderOutput:
        task = snapshot.body
        refs = find_image_refs(
            {key: task.get(key) for key in ("data", "output", "result", "images", "urls", "url")}
        )
        if not refs:
            raise MalformedResponseError(
                f"completed task {snapshot.task_id} carries no image URLs",
                provider=self.provider_name,
                request_id=snapshot.task_id,
            )
        images = await fetch_images(session, refs, expect_size=self._expected_dims(request))
        credits = find_credits(task)
        return ProviderOutput(
            images=images,
            usage=find_usage(task),
            credits=credits if credits is not None else find_credits(submitted),
            request_id=snapshot.task_id,
            size=task.get("size") or images[0].size,
            quality=task.get("quality") or request.quality,
            output_format=task.get("output_format") or images[0].format,
        )

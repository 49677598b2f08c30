"""``GPTImage2ImageResource``: GPTImage2's OpenAI-compatible routes, sync or async by the response.

Quirks (source: ``../shared/providers/004_be499b8a5e35d015.txt`` and ``README.md`` there, as of
2026-11-21):

- API root ``https://api.gptimage2/v1`` (as written on its page); OpenAI-compatible
  ``/images/generations`` and multipart ``/images/edits`` (``image``/``image[]`` and ``mask``);
- gpt-image-1 generation is asynchronous there. The response decides, not the model: ``data[]`` is
  a sync result; a ``task_id`` is an async task polled at ``GET {base}/tasks/{task_id}`` [likely]
  with status pending / processing / completed / failed / cancelled and the images under
  ``result.images[].url`` (a string or a list);
- sizes 1024x1024, 1024x1792, 1792x1024; quality standard | hd; 1-4 images per request.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator

from ..errors import MalformedResponseError
from ..request import ImageRequest
from ..result import TaskState
from ._http import CallState, fetch_images, request_id_of
from ._openai_wire import RESPONSE_FORMATS, OpenAICompatibleResource, check_choice
from ._tasks import TaskSnapshot, find_image_refs, find_usage, map_state
from .base import ProviderOutput, _LoopState

__all__ = ["GPTImage2ImageResource"]

_STATES = {
    "pending": TaskState.QUEUED,
    "queued": TaskState.QUEUED,
    "processing": TaskState.RUNNING,
    "running": TaskState.RUNNING,
    "completed": TaskState.SUCCEEDED,
    "succeeded": TaskState.SUCCEEDED,
    "failed": TaskState.FAILED,
    "cancelled": TaskState.CANCELLED,
    "canceled": TaskState.CANCELLED,
}


class GPTImage2ImageResource(OpenAICompatibleResource):
    """GPTImage2 (``https://api.gptimage2/v1``): OpenAI-compatible, with async tasks where it answers one."""

    provider_name: ClassVar[str] = "gptimage2"
    idempotent: ClassVar[bool] = False
    idempotency_source: ClassVar[str] = "004_be499b8a5e35d015.txt: no idempotency documented"
    task_path: ClassVar[str] = "tasks/{task_id}"

    base_url: str = Field(default="https://api.gptimage2/v1", description="API root.")
    response_format: str | None = Field(default=None, description="Sent when set.")

    check_response_format = field_validator("response_format")(check_choice(RESPONSE_FORMATS))

    def _response_format(self, request: ImageRequest) -> str | None:
        return self.response_format

    async def _produce(self, request: ImageRequest, call: CallState, state: _LoopState) -> ProviderOutput:
        body, response = await self._post_images(request, call, state)
        request_id = request_id_of(response)
        del response  # free the raw body before the images are decoded
        self._refuse_error_body(body, call, request_id)
        if isinstance(body.get("data"), list):
            return await self._output_from_body(body, request_id, request, state)
        task_id = _task_id(body)
        if task_id is None:
            raise MalformedResponseError(
                "response has neither data[] nor a task_id", provider=self.provider_name
            )
        call.request_id = task_id
        call.paid = False  # a task: "failed generations are not billed" (004_be499b8a5e35d015.txt)
        session = self._session(state)
        headers = self._auth_headers()

        async def fetch() -> TaskSnapshot:
            polled, _ = await session.send_json(
                call, "GET", self.task_path.format(task_id=task_id), headers=headers, submission=False
            )
            return self._snapshot(polled, task_id)

        done = await self._poll(fetch, task_id, call)
        call.paid = True
        refs = find_image_refs({"result": done.body.get("result"), "data": done.body.get("data")})
        if not refs:
            raise MalformedResponseError(
                f"completed task {task_id} has no result images",
                provider=self.provider_name,
                request_id=task_id,
            )
        images = await fetch_images(session, refs, expect_size=self._expected_dims(request))
        return ProviderOutput(
            images=images,
            usage=find_usage(done.body),
            request_id=task_id,
            size=images[0].size,
            quality=request.quality,
            output_format=images[0].format,
        )

    def _snapshot(self, body: dict[str, Any], task_id: str) -> TaskSnapshot:
        task = body.get("data") if isinstance(body.get("data"), dict) else body
        assert isinstance(task, dict)
        error = task.get("error")
        return TaskSnapshot(
            task_id=task_id,
            state=map_state(task.get("status"), _STATES, provider=self.provider_name),
            body=task,
            error_message=(error.get("message") if isinstance(error, dict) else error) or None,
            error_code=error.get("code") if isinstance(error, dict) else None,
        )


def _task_id(body: dict[str, Any]) -> str | None:
    for node in (body, body.get("data")):
        if isinstance(node, dict):
            for key in ("task_id", "taskId", "id"):
                if node.get(key):
                    return str(node[key])
    return None

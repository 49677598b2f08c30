"""``PiAPIImageResource``: PiAPI's GPT Image routes.

Quirks (source: ``../shared/providers/000_305fa6c5cb57ea7f.txt`` and ``README.md`` there, as of
2026-11-21):

- the API root is ``https://api.piapi.ai``; sync routes are ``/v1/images/generations`` and multipart
  ``/v1/images/edits`` (one file field named ``image``, repeated for several) with ``Bearer`` auth;
- ``response_format`` is accepted (``b64_json`` by default, ``url`` for a hosted link);
- omitting ``quality`` bills ``auto`` (~2x), so the resource always sends an explicit quality;
- async generation: ``POST /api/v1/images/generations/async`` with header ``X-API-Key``, polled at
  ``GET /api/v1/task/{task_id}``; both answer ``{code, message, data {task_id, status, output,
  error {code, message}}}`` with ``code`` 200 or 0 and ``status`` pending / processing / running /
  staged / completed / failed / cancelled in mixed case. Async edits are not documented, so edits
  always use the sync route.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
from pydantic import Field, field_validator

from ..errors import MalformedResponseError
from ..request import ImageRequest
from ..result import TaskState
from ._http import CallState, HttpSession, error_from_body_code, fetch_images, parse_retry_after
from ._openai_wire import (
    RESPONSE_FORMATS,
    TASK_MODES,
    OpenAICompatibleResource,
    check_choice,
    generation_body,
)
from ._tasks import TaskSnapshot, find_image_refs, find_usage, map_state
from .base import ProviderOutput, _LoopState

__all__ = ["PiAPIImageResource"]

_STATES = {
    "pending": TaskState.QUEUED,
    "staged": TaskState.QUEUED,
    "processing": TaskState.RUNNING,
    "running": TaskState.RUNNING,
    "completed": TaskState.SUCCEEDED,
    "failed": TaskState.FAILED,
    "cancelled": TaskState.CANCELLED,
    "canceled": TaskState.CANCELLED,
}


class PiAPIImageResource(OpenAICompatibleResource):
    """PiAPI (``https://api.piapi.ai``): OpenAI-compatible sync routes, or async tasks (``mode="async"``)."""

    provider_name: ClassVar[str] = "piapi"
    # Nothing in PiAPI's docs makes a re-sent generation free; a disconnected call may be billed.
    idempotent: ClassVar[bool] = False
    idempotency_source: ClassVar[str] = "000_305fa6c5cb57ea7f.txt: no idempotency documented"
    generations_path: ClassVar[str] = "v1/images/generations"
    edits_path: ClassVar[str] = "v1/images/edits"
    async_path: ClassVar[str] = "api/v1/images/generations/async"
    task_path: ClassVar[str] = "api/v1/task/{task_id}"

    base_url: str = Field(default="https://api.piapi.ai", description="API root (no /v1).")
    mode: str = Field(
        default="sync", description="sync: /v1 routes; async: submit a task and poll it (generations)."
    )
    response_format: str | None = Field(
        default=None, description="Sent when set; PiAPI's default is b64_json."
    )

    check_response_format = field_validator("response_format")(check_choice(RESPONSE_FORMATS))
    check_mode = field_validator("mode")(check_choice(TASK_MODES))

    def _edit_image_field(self, count: int) -> str:
        return "image"

    def _response_format(self, request: ImageRequest) -> str | None:
        return self.response_format

    async def _produce(self, request: ImageRequest, call: CallState, state: _LoopState) -> ProviderOutput:
        if self.mode == "sync" or request.is_edit:
            return await super()._produce(request, call, state)
        session = self._session(state)
        headers = {"X-API-Key": self.api_key}
        body, _ = await session.send_json(
            call,
            "POST",
            self.async_path,
            headers=headers,
            json=generation_body(request, response_format=self._response_format(request)),
            check=self._check_code,
            bills=False,  # PiAPI bills a task that completes, not its creation
        )
        first = self._snapshot(body)
        call.request_id = first.task_id

        async def fetch() -> TaskSnapshot:
            polled, _ = await session.send_json(
                call,
                "GET",
                self.task_path.format(task_id=first.task_id),
                headers=headers,
                submission=False,
                check=self._check_code,
            )
            return self._snapshot(polled)

        done = first
        if first.state is not TaskState.SUCCEEDED:
            done = await self._poll(fetch, first.task_id, call)
        call.paid = True
        return await self._output_from_task(done, request, session)

    def _check_code(self, body: dict[str, Any], response: httpx.Response) -> None:
        """Raise the mapped error when the wrapper's ``code`` is neither 200 nor 0."""
        code = body.get("code")
        if code not in (200, 0, "200", "0"):
            raise error_from_body_code(
                code,
                str(body.get("message") or body.get("msg") or ""),
                provider=self.provider_name,
                api_key=self.api_key,
                retry_after_s=parse_retry_after(response.headers),
            )

    def _snapshot(self, body: dict[str, Any]) -> TaskSnapshot:
        """Read the wrapper's ``data`` as a task snapshot."""
        data = body.get("data")
        if not isinstance(data, dict) or not data.get("task_id"):
            raise MalformedResponseError("task wrapper without data.task_id", provider=self.provider_name)
        error = data.get("error") if isinstance(data.get("error"), dict) else {}
        return TaskSnapshot(
            task_id=str(data["task_id"]),
            state=map_state(data.get("status"), _STATES, provider=self.provider_name),
            body=data,
            error_message=(error or {}).get("message") or None,
            error_code=(error or {}).get("code") or None,
        )

    async def _output_from_task(
        self, snapshot: TaskSnapshot, request: ImageRequest, session: HttpSession
    ) -> ProviderOutput:
        output = snapshot.body.get("output")
        refs = find_image_refs(output)
        if not refs:
            raise MalformedResponseError(
                f"completed task {snapshot.task_id} has no images in output",
                provider=self.provider_name,
                request_id=snapshot.task_id,
            )
        images = await fetch_images(session, refs, expect_size=self._expected_dims(request))
        meta = output if isinstance(output, dict) else {}
        return ProviderOutput(
            images=images,
            usage=find_usage(snapshot.body),
            request_id=snapshot.task_id,
            size=meta.get("size") or images[0].size,
            quality=meta.get("quality") or request.quality,
            output_format=meta.get("output_format") or images[0].format,
        )

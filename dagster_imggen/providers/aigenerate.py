"""``AIGenerateImageResource``: AI Generate's Kie-style jobs.

Quirks (source: ``../shared/providers/002_7794215a2f478efb.txt`` and ``README.md`` there, as of
2026-11-21):

- API root ``https://aimarcusimage.eu/api/v1``; ``POST /jobs/createTask`` with
  ``{"model": <variant slug>, "input": {"prompt": ...}}``; the slug names model, mode
  (text-to-image | image-to-image) and quality, and comes from the catalog's variants;
- the answer is ``{"code": 200, "msg": "success", "data": {"taskId": ...}}``: the body ``code`` is
  checked, not only the HTTP status (Kie answers some errors, e.g. 455, with HTTP 200);
- credits charged arrive in the ``X-AI-Credits-Charged`` response header (1 credit = $0.007);
- results are polled at ``GET /jobs/recordInfo?taskId=...`` [likely, Kie shape]:
  ``data {state: waiting|queuing|generating|success|fail, resultJson: "{\\"resultUrls\\": [...]}",
  failCode, failMsg}``;
- 20 requests per 10 s per key (excess gets 429, not queued), so ``rate_limit`` defaults to that;
- "retries are idempotent via taskId" means re-polling a known taskId; a ``createTask`` whose answer
  was lost has no taskId to reuse, and a re-sent one is a new, billed job. So a possibly-billed
  submission is NOT re-sent (``idempotent = False``).

Image-to-image: reference images are sent as ``input.input_urls`` (Kie's field); http(s) paths pass
through as URLs, local files go as ``data:`` URLs.
"""

from __future__ import annotations

import base64
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import httpx
from pydantic import Field

from ..errors import MalformedResponseError
from ..request import ImageRequest
from ..result import TaskState
from ._http import CallState, error_from_body_code, fetch_images, parse_retry_after, parse_size, run_in_thread
from ._openai_wire import read_reference
from ._tasks import TaskSnapshot, find_image_refs, map_state
from .base import ProviderOutput, RateLimit, RemoteImageResource, _LoopState

__all__ = ["AIGenerateImageResource"]

CREDITS_HEADER = "X-AI-Credits-Charged"

_STATES = {
    "waiting": TaskState.QUEUED,
    "queuing": TaskState.QUEUED,
    "generating": TaskState.RUNNING,
    "success": TaskState.SUCCEEDED,
    "fail": TaskState.FAILED,
}

#: Kie-style aspect ratios for the preset sizes (``auto`` sends none).
_ASPECT = {"1024x1024": "1:1", "1536x1024": "3:2", "1024x1536": "2:3"}


class AIGenerateImageResource(RemoteImageResource):
    """AI Generate (``https://aimarcusimage.eu/api/v1``): Kie-style ``createTask`` + ``recordInfo`` jobs."""

    provider_name: ClassVar[str] = "aigenerate"
    # "retries are idempotent via taskId" (002_7794215a2f478efb.txt) covers polling a known taskId,
    # not a createTask whose answer (and taskId) was lost: that re-send would be a second job.
    idempotent: ClassVar[bool] = False
    idempotency_source: ClassVar[str] = (
        "002_7794215a2f478efb.txt: idempotent only via taskId; a lost createTask has none"
    )
    create_path: ClassVar[str] = "jobs/createTask"
    record_path: ClassVar[str] = "jobs/recordInfo"

    base_url: str = Field(default="https://aimarcusimage.eu/api/v1", description="API root.")
    rate_limit: RateLimit | None = Field(
        default_factory=lambda: RateLimit(requests=20, period_s=10.0),
        description="Documented limit: 20 requests per 10 s per key (002_7794215a2f478efb.txt).",
    )

    def _slug(self, request: ImageRequest) -> str:
        from ..catalog import get_catalog

        mode = "image-to-image" if request.is_edit else "text-to-image"
        quality = request.quality or ""
        return get_catalog().model(self.provider_name, request.model).variant(mode, quality).slug

    async def _input(self, request: ImageRequest) -> dict[str, Any]:
        fields: dict[str, Any] = {"prompt": request.prompt}
        if request.size in _ASPECT:
            fields["aspect_ratio"] = _ASPECT[request.size]
        if request.output_format != "png":  # png is the default; send only a departure from it
            fields["output_format"] = request.output_format
        if request.is_edit:
            urls = []
            for path in request.images:
                if path.startswith(("http://", "https://")):
                    urls.append(path)
                    continue
                _, data, mime = await run_in_thread(read_reference, path)
                urls.append(f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}")
            fields["input_urls"] = urls
        fields.update(request.extra)
        return fields

    async def _produce(self, request: ImageRequest, call: CallState, state: _LoopState) -> ProviderOutput:
        session = self._session(state)
        headers = {"Authorization": f"Bearer {self.api_key}"}
        payload = {"model": self._slug(request), "input": await self._input(request)}
        body, response = await session.send_json(
            call, "POST", self.create_path, headers=headers, json=payload, check=self._check_code
        )
        data = body.get("data")
        task_id = data.get("taskId") if isinstance(data, dict) else None
        if not task_id:
            raise MalformedResponseError("createTask answer without data.taskId", provider=self.provider_name)
        task_id = str(task_id)
        call.request_id = task_id
        credits = _credits(response)

        async def fetch() -> TaskSnapshot:
            nonlocal credits
            polled, polled_response = await session.send_json(
                call,
                "GET",
                self.record_path,
                params={"taskId": task_id},
                headers=headers,
                submission=False,
                check=self._check_code,
            )
            credits = _credits(polled_response) or credits
            record = polled.get("data")
            if not isinstance(record, dict):
                raise MalformedResponseError("recordInfo answer without data", provider=self.provider_name)
            return TaskSnapshot(
                task_id=task_id,
                state=map_state(record.get("state"), _STATES, provider=self.provider_name),
                body=record,
                error_message=record.get("failMsg") or None,
                error_code=record.get("failCode") or None,
            )

        done = await self._poll(fetch, task_id, call)
        refs = find_image_refs({"resultJson": done.body.get("resultJson")})
        if not refs:
            raise MalformedResponseError(
                f"job {task_id} succeeded without resultUrls", provider=self.provider_name, request_id=task_id
            )
        images = await fetch_images(session, refs, expect_size=parse_size(request.size))
        return ProviderOutput(
            images=images,
            credits=credits,
            request_id=task_id,
            size=images[0].size,
            quality=request.quality,
            output_format=images[0].format,
        )

    def _check_code(self, body: dict[str, Any], response: httpx.Response) -> None:
        """Raise the mapped error when the body ``code`` is not 200 (Kie answers errors with HTTP 200)."""
        code = body.get("code")
        if code in (200, "200"):
            return
        raise error_from_body_code(
            code,
            str(body.get("msg") or body.get("message") or ""),
            provider=self.provider_name,
            api_key=self.api_key,
            retry_after_s=parse_retry_after(response.headers),
        )


def _credits(response: httpx.Response) -> Decimal | None:
    raw = response.headers.get(CREDITS_HEADER)
    if raw is None or not raw.strip():
        return None
    try:
        return Decimal(raw.strip())
    except InvalidOperation:
        return None

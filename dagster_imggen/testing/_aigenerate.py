"""AI Generate (Kie-style jobs), mounted at ``/aigenerate``; base URL ``/aigenerate/api/v1``.

Routes (key in ``Authorization: Bearer``):
- ``POST /api/v1/jobs/createTask`` with ``{"model": <variant slug>, "input": {"prompt", ...},
  "callBackUrl"?}``. Slugs: ``openai-gpt-image-1-5-{text-to-image|image-to-image}-{medium|high}``
  (4 and 22 credits, $0.007 per credit). ``input`` may carry ``size`` (1024x1024, 1536x1024,
  1024x1536, auto) or ``aspect_ratio`` (1:1, 3:2, 2:3), ``output_format``, and for image-to-image
  ``image_urls`` (http(s) or ``data:`` URLs; ``input_urls``/``image_url`` also read); one image per
  job (``input.n`` must be 1 if sent). Answer: ``{"code": 200, "msg": "success", "data":
  {"taskId"}}`` with header ``X-AI-Credits-Charged``.
- ``GET /api/v1/jobs/recordInfo?taskId=...`` answers ``{code, msg, data {taskId, model, state,
  param, resultJson, failCode, failMsg, costTime, createTime, completeTime, updateTime}}``;
  ``state`` waiting -> queuing -> generating -> success | fail; ``resultJson`` is a JSON string
  ``{"resultUrls": [...]}`` ("" before success); times in epoch milliseconds.
- Errors: ``{"code", "msg", "data": null}``. Validation errors come with HTTP 200 and body
  ``code`` 422 (check the body, not only the status); 401, 402, 404, 429, 455, 500 carry the same
  HTTP status. Rate limit: 20 requests per 10 s per key; excess gets 429, not queued.
Source: 002_7794215a2f478efb.txt and ../shared/providers/README.md (Kie shape [likely]),
as of 2026-11-21. Billing: the credits of the header, charged at creation (no refund is documented).
"""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal
from typing import Any

from ..result import TaskState
from ._base import Call, ProviderApp, Route, Task, route
from ._wire import Reply, WireError, WireRequest

# slug -> (model, mode, quality, credits per image) [002_7794215a2f478efb.txt]
VARIANTS: dict[str, tuple[str, str, str, int]] = {
    "openai-gpt-image-1-5-text-to-image-medium": ("gpt-image-1.5", "text-to-image", "medium", 4),
    "openai-gpt-image-1-5-image-to-image-medium": ("gpt-image-1.5", "image-to-image", "medium", 4),
    "openai-gpt-image-1-5-text-to-image-high": ("gpt-image-1.5", "text-to-image", "high", 22),
    "openai-gpt-image-1-5-image-to-image-high": ("gpt-image-1.5", "image-to-image", "high", 22),
}
_SIZES = {"1024x1024", "1536x1024", "1024x1536"}
_ASPECTS = {"1:1": "1024x1024", "3:2": "1536x1024", "2:3": "1024x1536"}
_FORMATS = {"png", "jpeg", "webp"}


def _invalid(message: str) -> WireError:
    return WireError(422, message, code=422, type_="validation")


class AIGenerateApp(ProviderApp):
    name = "aigenerate"
    api_root = "/api/v1"
    default_settings = {"rate_limit": (20, 10.0)}
    routes = (
        route("POST", r"/api/v1/jobs/createTask", "generate", "create"),
        route("GET", r"/api/v1/jobs/recordInfo", "poll", "record_info"),
    )

    def error(self, err: WireError, route: Route | None) -> Reply:
        http = 200 if err.type_ == "validation" else err.status
        code = err.code if isinstance(err.code, int) else err.status
        return Reply.json(http, {"code": code, "msg": err.message, "data": None}, err.headers)

    def unauthorized(self, missing: bool, route: Route | None) -> WireError:
        return WireError(401, "You do not have access permissions" if missing else "Invalid API key")

    def rate_limited(self, retry_after_s: float, route: Route | None) -> WireError:
        return WireError(429, "Rate limited: at most 20 requests per 10 seconds per API key")

    def not_found(self, req: WireRequest) -> WireError:
        return WireError(404, f"Not found: {req.path}")

    def prompt_of(self, req: WireRequest) -> str | None:
        body = req.json if isinstance(req.json, dict) else {}
        inp = body.get("input")
        prompt = inp.get("prompt") if isinstance(inp, dict) else None
        return prompt if isinstance(prompt, str) else None

    def create(self, req: WireRequest, match: re.Match[str], call: Call) -> Reply:
        body = req.json
        if req.body_error is not None or not isinstance(body, dict):
            raise _invalid("Request body must be a JSON object")
        slug = body.get("model")
        if not slug:
            raise _invalid("model is required")
        if slug not in VARIANTS:
            raise _invalid(f"model {slug!r} is not supported")
        model, mode, quality, credits_each = VARIANTS[slug]
        inp = body.get("input")
        if not isinstance(inp, dict):
            raise _invalid("input is required")
        prompt = inp.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise _invalid("input.prompt is required")
        if len(prompt) > 32000:
            raise _invalid("input.prompt is too long (max 32000)")
        n = inp.get("n", 1)
        if n != 1:
            raise _invalid("input.n must be 1: one image per task")
        size = self._size(inp)
        fmt = inp.get("output_format", "png")
        if fmt not in _FORMATS:
            raise _invalid("input.output_format must be png, jpeg or webp")
        urls = self._image_urls(inp)
        if mode == "image-to-image" and not urls:
            raise _invalid("input.image_urls is required for image-to-image")
        if mode == "text-to-image" and urls:
            raise _invalid("input.image_urls is not accepted by a text-to-image model")
        credits = Decimal(credits_each)
        payload = {"size": size, "format": fmt, "quality": quality, "param": json.dumps(body), "slug": slug}
        task = self.env.new_task(self.name, model, prompt, fate=call.fate, payload=payload, prefix="")
        call.request_id = task.id
        self.charge(model, task.id, size=size, quality=quality, n=1, credits=credits, note=slug)
        return Reply.json(
            200,
            {"code": 200, "msg": "success", "data": {"taskId": task.id}},
            [("X-AI-Credits-Charged", str(credits_each))],
        )

    @staticmethod
    def _size(inp: dict[str, Any]) -> str:
        if "aspect_ratio" in inp:
            if inp["aspect_ratio"] not in _ASPECTS:
                raise _invalid(f"input.aspect_ratio must be one of {', '.join(_ASPECTS)}")
            return _ASPECTS[inp["aspect_ratio"]]
        size = inp.get("size", "1024x1024")
        if size == "auto":
            return "1024x1024"
        if size not in _SIZES:
            raise _invalid(f"input.size must be one of {', '.join(sorted(_SIZES))} or auto")
        return str(size)

    @staticmethod
    def _image_urls(inp: dict[str, Any]) -> list[str]:
        raw = inp.get("image_urls", inp.get("input_urls", inp.get("image_url")))
        urls = [raw] if isinstance(raw, str) else raw or []
        if not isinstance(urls, list) or not all(
            isinstance(u, str) and u.startswith(("http://", "https://", "data:image/")) for u in urls
        ):
            raise _invalid("input.image_urls must be a list of http(s) or data:image URLs")
        if len(urls) > 16:
            raise _invalid("input.image_urls takes at most 16 images")
        return urls

    def record_info(self, req: WireRequest, match: re.Match[str], call: Call) -> Reply:
        task_id = req.query.get("taskId")
        if not task_id:
            raise _invalid("taskId is required")
        task = self.env.get_task(self.name, task_id)
        if task is None:
            raise WireError(404, f"Task {task_id} not found")
        call.request_id = task.id
        return Reply.json(200, {"code": 200, "msg": "success", "data": self._record(task)})

    def task_prompt(self, req: WireRequest, match: re.Match[str]) -> str | None:
        task = self.env.get_task(self.name, req.query.get("taskId", ""))
        return task.prompt if task else None

    def _record(self, task: Task) -> dict[str, Any]:
        now = self.env.now()
        state = task.state(now)
        created_ms = int(task.created_wall * 1000)
        done_ms = int(task.completed_wall() * 1000)
        word = {
            TaskState.SUCCEEDED: "success",
            TaskState.FAILED: "fail",
            TaskState.CANCELLED: "fail",
            TaskState.RUNNING: "generating",
        }.get(state) or ("waiting" if task.progress(now) < 0.1 else "queuing")
        record: dict[str, Any] = {
            "taskId": task.id,
            "model": task.payload["slug"],
            "state": word,
            "param": task.payload["param"],
            "resultJson": "",
            "failCode": "",
            "failMsg": "",
            "costTime": 0,
            "createTime": created_ms,
            "completeTime": None,
            "updateTime": int(time.time() * 1000),
        }
        if state.done:
            record.update(completeTime=done_ms, costTime=done_ms - created_ms)
        if state is TaskState.SUCCEEDED:
            if task.result is None:
                w, _, h = task.payload["size"].partition("x")
                fmt = task.payload["format"]
                images = self.env.render(task.prompt, int(w), int(h), fmt, fate=task.fate)
                entries = self.env.deliver(self.name, images, fmt, "url", fate=task.fate, prompt=task.prompt)
                task.result = json.dumps({"resultUrls": [e["url"] for e in entries]})
            record["resultJson"] = task.result
        elif state is TaskState.FAILED:
            record.update(failCode="501", failMsg="Generation failed")
        elif state is TaskState.CANCELLED:
            record.update(failCode="501", failMsg="Task cancelled")
        return record

"""PiAPI, mounted at ``/piapi``; base URL ``/piapi`` (its API root is https://api.piapi.ai).

OpenAI-compatible sync routes, key in ``Authorization: Bearer``:
``POST /v1/images/generations`` (JSON) and ``POST /v1/images/edits`` (multipart, file field
``image``; repeated ``image``/``image[]`` and ``mask`` accepted as upstream OpenAI does).
Defaults: size 1024x1024, n 1, quality ``auto`` (``standard`` for gpt-image-2-preview),
``response_format`` ``b64_json`` (``url`` gives a hosted link), output_format png.
Response ``{data[{b64_json}|{url}], created, usage}``; errors in the OpenAI shape.

Async routes, key in ``X-API-Key``: ``POST /api/v1/images/generations/async`` (same JSON body)
answers ``{code: 200, message: "success", data: {task_id, status, output: null, error}}``;
``GET /api/v1/task/{task_id}`` answers the same wrapper with ``status`` moving through
``pending``, ``Staged``, ``Processing`` to ``Completed`` / ``Failed`` / ``cancelled`` (mixed case, as
documented) and, once completed, ``output {data[...], usage}``. Errors on these routes:
``{code, message, data: null}`` with the same HTTP status.
Source: 000_305fa6c5cb57ea7f.txt and ../shared/providers/README.md (as of 2026-11-21).
Billing: tokens from ``usage`` (gpt-image-2-preview flat $0.10 per image), per processed sync
call and per async task that completes.
"""

from __future__ import annotations

import re
import time
from typing import Any

from ..result import TaskState
from ._base import Call, ProviderApp, Route, Task, route
from ._openai_compat import (
    GPT_IMAGE_QUALITIES,
    ImageCall,
    ModelRules,
    openai_error_body,
    parse_image_call,
    render_call,
)
from ._wire import Reply, WireError, WireRequest

_Q = GPT_IMAGE_QUALITIES | {"standard"}
_AS = (("auto", "high"), ("standard", "medium"))
MODELS = {
    "gpt-image-1": ModelRules(qualities=_Q, quality_as=_AS),
    "gpt-image-1.5": ModelRules(qualities=_Q, quality_as=_AS),
    "gpt-image-2": ModelRules(qualities=_Q, quality_as=_AS, custom_sizes=True, transparent=False),
    "gpt-image-2-preview": ModelRules(qualities=_Q, quality_as=_AS, default_quality="standard"),
}
_FORMATS = frozenset({"url", "b64_json"})
# Status words by lifecycle step, in the mixed case PiAPI documents.
_WORDS = {
    TaskState.RUNNING: "Processing",
    TaskState.SUCCEEDED: "Completed",
    TaskState.FAILED: "Failed",
    TaskState.CANCELLED: "cancelled",
}


class PiAPIApp(ProviderApp):
    name = "piapi"
    api_root = ""
    routes = (
        route("POST", r"/v1/images/generations", "generate", "images"),
        route("POST", r"/v1/images/edits", "edit", "images"),
        route("POST", r"/api/v1/images/generations/async", "generate", "submit"),
        route("GET", r"/api/v1/task/(?P<task_id>[^/]+)", "poll", "poll"),
    )

    @staticmethod
    def _is_task_api(route: Route | None) -> bool:
        return route is not None and route.pattern.pattern.startswith("/api/")

    def credentials(self, req: WireRequest, route: Route | None) -> tuple[str | None, str | None]:
        if self._is_task_api(route):
            key = req.headers.get("x-api-key")
            return ("x-api-key", key.strip()) if key is not None else (None, None)
        return super().credentials(req, route)

    def error(self, err: WireError, route: Route | None) -> Reply:
        if self._is_task_api(route):
            return Reply.json(
                err.status, {"code": err.status, "message": err.message, "data": None}, err.headers
            )
        return Reply.json(err.status, openai_error_body(err), err.headers)

    def unauthorized(self, missing: bool, route: Route | None) -> WireError:
        if self._is_task_api(route):
            return WireError(
                401, "Unauthorized: missing X-API-Key" if missing else "Unauthorized: invalid X-API-Key"
            )
        return super().unauthorized(missing, route)

    def images(self, req: WireRequest, match: re.Match[str], call: Call) -> Reply:
        ic = parse_image_call(req, MODELS, edit=req.path.endswith("/edits"), response_formats=_FORMATS)
        data = render_call(self.env, self.name, ic, call.fate, ic.response_format or "b64_json")
        usage = self.env.usage(ic.model, ic.size, ic.quality, ic.n, ic.prompt, len(ic.images))
        call.request_id = self.env.new_id("piapi-")
        self.charge(ic.model, call.request_id, size=ic.size, quality=ic.quality, n=ic.n, usage=usage)
        body = {"data": data, "created": int(time.time()), "usage": usage.to_openai()}
        return Reply.json(200, body)

    def submit(self, req: WireRequest, match: re.Match[str], call: Call) -> Reply:
        ic = parse_image_call(req, MODELS, edit=False, response_formats=_FORMATS)
        task = self.env.new_task(
            self.name,
            ic.model,
            ic.prompt,
            fate=call.fate,
            payload={"call": ic},
            on_settle=self._settle,
            prefix="",
        )
        call.request_id = task.id
        return Reply.json(200, self._wrapper(task))

    def poll(self, req: WireRequest, match: re.Match[str], call: Call) -> Reply:
        task = self.env.get_task(self.name, match["task_id"])
        if task is None:
            raise WireError(404, f"task {match['task_id']} not found")
        call.request_id = task.id
        self.env.settle(task)
        return Reply.json(200, self._wrapper(task))

    def _settle(self, task: Task) -> None:
        if task.state(self.env.now()) is TaskState.SUCCEEDED:
            ic: ImageCall = task.payload["call"]
            usage = self.env.usage(ic.model, ic.size, ic.quality, ic.n, ic.prompt, 0)
            self.charge(ic.model, task.id, size=ic.size, quality=ic.quality, n=ic.n, usage=usage)

    def _wrapper(self, task: Task) -> dict[str, Any]:
        state = task.state(self.env.now())
        if state is TaskState.QUEUED:
            word = "pending" if task.progress(self.env.now()) < 0.1 else "Staged"
        else:
            word = _WORDS[state]
        output = None
        error = {"code": 0, "message": ""}
        if state is TaskState.SUCCEEDED:
            if task.result is None:
                ic: ImageCall = task.payload["call"]
                entries = render_call(self.env, self.name, ic, task.fate, ic.response_format or "b64_json")
                usage = self.env.usage(ic.model, ic.size, ic.quality, ic.n, ic.prompt, 0)
                task.result = {"data": entries, "usage": usage.to_openai()}
            output = task.result
        elif state is TaskState.FAILED:
            error = {"code": 10000, "message": "image generation failed"}
        elif state is TaskState.CANCELLED:
            error = {"code": 10001, "message": "task cancelled"}
        body = {"task_id": task.id, "model": task.model, "status": word, "output": output, "error": error}
        return {"code": 200, "message": "success", "data": body}

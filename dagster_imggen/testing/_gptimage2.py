"""GPTImage2, mounted at ``/gptimage2``; base URL ``/gptimage2/v1`` (its page: https://api.gptimage2/v1).

Routes (key in ``Authorization: Bearer``): ``POST /v1/images/generations`` (JSON) and
``POST /v1/images/edits`` (multipart ``image``/``image[]``, optional ``mask``), and
``GET /v1/tasks/{task_id}`` [likely].
- ``gpt-image-1.5`` is synchronous: ``{created, data[{url}|{b64_json}]}``, ``url`` by default.
- ``gpt-image-1`` is asynchronous: the same routes answer ``{task_id, status: "pending", model,
  created}``; the task moves ``pending`` -> ``processing`` -> ``completed`` | ``failed`` |
  ``cancelled``, and once completed carries ``result {images: [{url}]}`` where ``url`` is a string
  (n = 1) or a list of strings (n > 1, a single entry) -- clients must take both.
- Sizes 1024x1024, 1024x1792, 1792x1024 (its table) plus OpenAI's 1536x1024, 1024x1536, auto;
  quality standard | hd (and OpenAI's words); n 1-4.
- Errors: the OpenAI shape ``{"error": {"message", "type", "param", "code"}}``.
Source: 004_be499b8a5e35d015.txt ("Last verified: April 2026") and ../shared/providers/README.md.
Billing: per successfully generated image, $0.034 (gpt-image-1) and $0.013 (gpt-image-1.5);
failed generations are not billed [doc].
"""

from __future__ import annotations

import re
import time
from typing import Any

from ..result import TaskState
from ._base import Call, ProviderApp, Route, Task, route
from ._openai_compat import (
    GPT_IMAGE_QUALITIES,
    PRESET_SIZES,
    ImageCall,
    ModelRules,
    openai_error_body,
    parse_image_call,
    render_call,
)
from ._wire import Reply, WireError, WireRequest

_RULES = ModelRules(
    sizes=PRESET_SIZES | {"1024x1792", "1792x1024"},
    qualities=GPT_IMAGE_QUALITIES | {"standard", "hd"},
    quality_as=(("auto", "high"), ("standard", "medium"), ("hd", "high")),
    default_quality="standard",
    max_n=4,
)
MODELS = {"gpt-image-1": _RULES, "gpt-image-1.5": _RULES}
ASYNC_MODELS = frozenset({"gpt-image-1"})
_FORMATS = frozenset({"url", "b64_json"})
_WORDS = {
    TaskState.QUEUED: "pending",
    TaskState.RUNNING: "processing",
    TaskState.SUCCEEDED: "completed",
    TaskState.FAILED: "failed",
    TaskState.CANCELLED: "cancelled",
}


class GPTImage2App(ProviderApp):
    name = "gptimage2"
    api_root = "/v1"
    routes = (
        route("POST", r"/v1/images/generations", "generate", "images"),
        route("POST", r"/v1/images/edits", "edit", "images"),
        route("GET", r"/v1/tasks/(?P<task_id>[^/]+)", "poll", "poll"),
    )

    def error(self, err: WireError, route: Route | None) -> Reply:
        return Reply.json(err.status, openai_error_body(err), err.headers)

    def images(self, req: WireRequest, match: re.Match[str], call: Call) -> Reply:
        ic = parse_image_call(req, MODELS, edit=req.path.endswith("/edits"), response_formats=_FORMATS)
        if ic.model in ASYNC_MODELS:
            task = self.env.new_task(
                self.name, ic.model, ic.prompt, fate=call.fate, payload={"call": ic}, on_settle=self._settle
            )
            call.request_id = task.id
            return Reply.json(200, self._task(task))
        data = render_call(self.env, self.name, ic, call.fate, ic.response_format or "url")
        call.request_id = self.env.new_id("gen_")
        self.charge(ic.model, call.request_id, size=ic.size, quality=ic.quality, n=ic.n)
        return Reply.json(200, {"created": int(time.time()), "data": data})

    def poll(self, req: WireRequest, match: re.Match[str], call: Call) -> Reply:
        task = self.env.get_task(self.name, match["task_id"])
        if task is None:
            raise WireError(404, f"Task {match['task_id']} not found", code="task_not_found")
        call.request_id = task.id
        self.env.settle(task)
        return Reply.json(200, self._task(task))

    def _settle(self, task: Task) -> None:
        if task.state(self.env.now()) is TaskState.SUCCEEDED:
            ic: ImageCall = task.payload["call"]
            self.charge(ic.model, task.id, size=ic.size, quality=ic.quality, n=ic.n, note="async task")

    def _task(self, task: Task) -> dict[str, Any]:
        state = task.state(self.env.now())
        body: dict[str, Any] = {
            "task_id": task.id,
            "status": _WORDS[state],
            "model": task.model,
            "created": int(task.created_wall),
        }
        if state is TaskState.SUCCEEDED:
            if task.result is None:
                ic: ImageCall = task.payload["call"]
                urls = [e["url"] for e in render_call(self.env, self.name, ic, task.fate, "url")]
                task.result = {"images": [{"url": urls[0]}] if len(urls) == 1 else [{"url": urls}]}
            body["result"] = task.result
        elif state is TaskState.FAILED:
            body["error"] = {"code": "generation_failed", "message": "Image generation failed"}
        elif state is TaskState.CANCELLED:
            body["error"] = {"code": "cancelled", "message": "Task was cancelled"}
        return body

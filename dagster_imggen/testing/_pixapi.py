"""Pixapi, mounted at ``/pixapi``; base URL ``/pixapi`` (its API root is https://api.pixapi.ai).

Routes (key in ``Authorization: Bearer``): ``POST /v1/images/generations`` and
``POST /v1/images/edits`` (sync, multipart field ``image``, one or several), and the async
``POST /v1/async/images/generations`` / ``POST /v1/async/images/edits``, polled at
``GET /v1/async/tasks/{id}`` [likely].
- Sync response: ``{created, data[{url}|{b64_json}], costCredits}``; ``response_format`` defaults to
  ``url``. ``costCredits`` is the size-tier x quality matrix value times n [doc: "the displayed
  costCredits"; its place in the body is likely].
- Async: creation answers the task ``{id, object: "image.task", status: "queued", model, created,
  costCredits}``; the task moves ``queued`` -> ``processing`` -> ``completed`` (then ``data[{url}]``)
  or ``failed`` (then ``error {code, message}``) or ``cancelled``.
- Errors: ``{"error": {"code": 400, "message", "type"}}`` for numeric codes, or
  ``{"error": {"code": "insufficient_credits"|"unauthorized"|"rate_limited", "message"}}``;
  402 insufficient credits, 422 prompt rejected, 429 rate limited, 503 model unavailable.
- Sizes: presets or custom (multiples of 16, 655,360-8,294,400 pixels, aspect <= 3:1, long edge
  <= 3840 by the 4K tier). Credits per image: 1K (long edge <= 1536) low 1 / medium 4 / high 14;
  2K (<= 2048) 2 / 17 / 67; 4K (<= 3840) 4 / 34 / 133; ``quality=auto`` billed as high,
  ``size=auto`` as 1K.
Source: 001_d01986769ffd2010.txt and ../shared/providers/README.md (as of 2026-11-21).
Billing: sync calls when processed; async tasks at creation, whatever their outcome (async
creation is not idempotent: a repeat is charged again [doc]).
"""

from __future__ import annotations

import re
import time
from decimal import Decimal
from typing import Any

from ..result import TaskState
from ._base import Call, ProviderApp, Route, Task, route
from ._openai_compat import ImageCall, ModelRules, parse_image_call, render_call
from ._wire import Reply, WireError, WireRequest

MODELS = {
    "gpt-image-2": ModelRules(custom_sizes=True, transparent=False),
    "gpt-image-1.5": ModelRules(),
}
_FORMATS = frozenset({"url", "b64_json"})
# (max long edge in pixels, {quality: credits per image}) [001_d01986769ffd2010.txt]
CREDIT_TIERS: tuple[tuple[int, dict[str, int]], ...] = (
    (1536, {"low": 1, "medium": 4, "high": 14}),
    (2048, {"low": 2, "medium": 17, "high": 67}),
    (3840, {"low": 4, "medium": 34, "high": 133}),
)
_STRING_CODES = {401: "unauthorized", 402: "insufficient_credits", 429: "rate_limited"}
_TYPES = {400: "invalid_request_error", 422: "content_policy_violation", 503: "model_unavailable"}
_WORDS = {
    TaskState.QUEUED: "queued",
    TaskState.RUNNING: "processing",
    TaskState.SUCCEEDED: "completed",
    TaskState.FAILED: "failed",
    TaskState.CANCELLED: "cancelled",
}


def credits_for(ic: ImageCall) -> Decimal:
    """Credits for the call: the tier x quality matrix value for its size, times n."""
    long_edge = max(ic.width, ic.height)
    for max_edge, by_quality in CREDIT_TIERS:
        if long_edge <= max_edge:
            return Decimal(by_quality[ic.quality] * ic.n)
    raise WireError(400, "size above the 4K tier", param="size")


class PixapiApp(ProviderApp):
    name = "pixapi"
    api_root = ""
    routes = (
        route("POST", r"/v1/images/generations", "generate", "sync"),
        route("POST", r"/v1/images/edits", "edit", "sync"),
        route("POST", r"/v1/async/images/generations", "generate", "submit"),
        route("POST", r"/v1/async/images/edits", "edit", "submit"),
        route("GET", r"/v1/async/tasks/(?P<task_id>[^/]+)", "poll", "poll"),
    )

    def error(self, err: WireError, route: Route | None) -> Reply:
        """``{"error": {"code": <int>, "message", "type"}}``, or a documented string code."""
        body: dict[str, Any]
        if err.code in _STRING_CODES.values() or (err.code is None and err.status in _STRING_CODES):
            body = {"code": err.code or _STRING_CODES[err.status], "message": err.message}
        else:
            code = err.code if isinstance(err.code, int) else err.status
            kind = err.code if isinstance(err.code, str) else err.type_ or _TYPES.get(err.status, "api_error")
            body = {"code": code, "message": err.message, "type": kind}
            if err.param:
                body["param"] = err.param
        return Reply.json(err.status, {"error": body}, err.headers)

    def unauthorized(self, missing: bool, route: Route | None) -> WireError:
        return WireError(401, "Missing API key" if missing else "Invalid API key", code="unauthorized")

    def rate_limited(self, retry_after_s: float, route: Route | None) -> WireError:
        return WireError(429, "Rate limit exceeded", code="rate_limited")

    def not_found(self, req: WireRequest) -> WireError:
        return WireError(404, f"No route for {req.method} {req.path}", type_="not_found")

    def fault_error(
        self, status: int, code: str | int | None, message: str | None, route: Route | None
    ) -> WireError:
        messages = {402: "Insufficient credits", 422: "Prompt rejected", 503: "Model unavailable"}
        return WireError(status, message or messages.get(status, "Internal error"), code=code)

    def _call(self, req: WireRequest) -> ImageCall:
        edit = req.path.endswith("/edits")
        return parse_image_call(
            req, MODELS, edit=edit, response_formats=_FORMATS, image_fields=("image", "image[]")
        )

    def sync(self, req: WireRequest, match: re.Match[str], call: Call) -> Reply:
        ic = self._call(req)
        credits = credits_for(ic)
        data = render_call(self.env, self.name, ic, call.fate, ic.response_format or "url")
        call.request_id = self.env.new_id("img_")
        self.charge(ic.model, call.request_id, size=ic.size, quality=ic.quality, n=ic.n, credits=credits)
        return Reply.json(200, {"created": int(time.time()), "data": data, "costCredits": int(credits)})

    def submit(self, req: WireRequest, match: re.Match[str], call: Call) -> Reply:
        ic = self._call(req)
        credits = credits_for(ic)
        task = self.env.new_task(
            self.name, ic.model, ic.prompt, fate=call.fate, payload={"call": ic, "credits": credits}
        )
        call.request_id = task.id
        self.charge(
            ic.model, task.id, size=ic.size, quality=ic.quality, n=ic.n, credits=credits, note="async task"
        )
        return Reply.json(200, self._task(task))

    def poll(self, req: WireRequest, match: re.Match[str], call: Call) -> Reply:
        task = self.env.get_task(self.name, match["task_id"])
        if task is None:
            raise WireError(404, f"Task {match['task_id']} not found", type_="not_found")
        call.request_id = task.id
        return Reply.json(200, self._task(task))

    def _task(self, task: Task) -> dict[str, Any]:
        state = task.state(self.env.now())
        body: dict[str, Any] = {
            "id": task.id,
            "object": "image.task",
            "status": _WORDS[state],
            "model": task.model,
            "created": int(task.created_wall),
            "costCredits": int(task.payload["credits"]),
        }
        if state is TaskState.SUCCEEDED:
            if task.result is None:
                task.result = render_call(self.env, self.name, task.payload["call"], task.fate, "url")
            body["data"] = task.result
            body["completed_at"] = int(task.completed_wall())
        elif state is TaskState.FAILED:
            body["error"] = {"code": "generation_failed", "message": "Image generation failed"}
        elif state is TaskState.CANCELLED:
            body["error"] = {"code": "cancelled", "message": "Task cancelled"}
        return body

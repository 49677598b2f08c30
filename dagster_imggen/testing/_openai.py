"""OpenAI Images API (official), mounted at ``/openai``; base URL ``/openai/v1``.

Routes: ``POST /v1/images/generations`` (JSON), ``POST /v1/images/edits`` (multipart ``image`` or
repeated ``image[]``, optional ``mask``). GPT Image models always answer ``b64_json``; sending
``response_format`` is a 400 ``unknown_parameter``, as is any parameter OpenAI does not know.
Response: ``{created, data[{b64_json}], background, output_format, quality, size, usage}``.
Errors: ``{"error": {"message", "type", "param", "code"}}``; 401 for a missing or wrong
``Authorization: Bearer`` key; ``moderation_blocked`` is a 400 of type ``image_generation_user_error``.
gpt-image-1 was shut down on 2026-10-23 (404 ``model_not_found``). Source: OpenAI Images API
docs as restated in ../shared/providers/README.md (as of 2026-11-21). Billing: tokens from
``usage`` at OpenAI's rates (the cost engine), for every processed call.
"""

from __future__ import annotations

import re
import time
from typing import Any

from ._base import Call, ProviderApp, Route, route
from ._openai_compat import (
    PRESET_SIZES,
    ImageCall,
    ModelRules,
    openai_error_body,
    parse_image_call,
    render_call,
)
from ._wire import Reply, WireError, WireRequest

MODELS = {
    "gpt-image-2": ModelRules(custom_sizes=True, transparent=False),
    "gpt-image-1.5": ModelRules(sizes=PRESET_SIZES),
    "gpt-image-1-mini": ModelRules(sizes=PRESET_SIZES),
}
RETIRED = {"gpt-image-1": "2026-10-23"}
_KNOWN = frozenset(
    {
        "model", "prompt", "n", "size", "quality", "output_format", "output_compression", "background",
        "moderation", "user", "response_format", "input_fidelity", "partial_images", "stream",
    }
)  # fmt: skip


class OpenAIApp(ProviderApp):
    name = "openai"
    api_root = "/v1"
    routes = (
        route("POST", r"/v1/images/generations", "generate", "images"),
        route("POST", r"/v1/images/edits", "edit", "images"),
    )

    def error(self, err: WireError, route: Route | None) -> Reply:
        return Reply.json(
            err.status, openai_error_body(err), [("x-request-id", self.env.new_id("req_")), *err.headers]
        )

    def rate_limited(self, retry_after_s: float, route: Route | None) -> WireError:
        return WireError(
            429,
            f"Rate limit reached for images per min. Please try again in {retry_after_s:.3f}s.",
            code="rate_limit_exceeded",
            type_="requests",
        )

    def fault_error(
        self, status: int, code: str | int | None, message: str | None, route: Route | None
    ) -> WireError:
        if code == "moderation_blocked":
            return WireError(
                status,
                message or "Your request was rejected as a result of our safety system.",
                code=code,
                type_="image_generation_user_error",
            )
        if status == 429:
            return self.rate_limited(1.0, route)
        return super().fault_error(status, code, message, route)

    def images(self, req: WireRequest, match: re.Match[str], call: Call) -> Reply:
        edit = req.path.endswith("/edits")
        params = req.params()
        if params.get("model") in RETIRED:
            model = params["model"]
            raise WireError(
                404,
                f"The model `{model}` has been shut down (since {RETIRED[model]}).",
                code="model_not_found",
                param="model",
            )
        if params.get("stream") in (True, "true"):
            raise WireError(
                400, "Streaming is not supported by the emulator.", code="unsupported_value", param="stream"
            )
        for name in ("moderation",):
            if name in params and params[name] not in ("low", "auto"):
                raise WireError(400, f"Invalid value: '{params[name]}'.", code="invalid_value", param=name)
        ic = parse_image_call(req, MODELS, edit=edit, response_formats=None, known_params=_KNOWN)
        return self._generate(ic, call)

    def _generate(self, ic: ImageCall, call: Call) -> Reply:
        data = render_call(self.env, self.name, ic, call.fate, "b64_json")
        usage = self.env.usage(ic.model, ic.size, ic.quality, ic.n, ic.prompt, len(ic.images))
        call.request_id = self.env.new_id("req_")
        self.charge(ic.model, call.request_id, size=ic.size, quality=ic.quality, n=ic.n, usage=usage)
        body: dict[str, Any] = {
            "created": int(time.time()),
            "data": data,
            "background": ic.background,
            "output_format": ic.output_format,
            "quality": ic.quality,
            "size": ic.size,
            "usage": usage.to_openai(),
        }
        return Reply.json(200, body, [("x-request-id", call.request_id), ("openai-processing-ms", "1")])

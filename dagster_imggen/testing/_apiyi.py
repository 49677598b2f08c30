"""APIYI, mounted at ``/apiyi``; base URL ``/apiyi/v1`` (its API root is https://api.apiyi.com/v1).

Routes (key in ``Authorization: Bearer``), all synchronous: ``POST /v1/images/generations``
(JSON) and ``POST /v1/images/edits`` (multipart, repeated ``image[]`` (or ``image``), up to 16,
optional ``mask``).
- ``gpt-image-2-all`` (reverse channel): size, quality and n are ignored; one 1024x1024 PNG comes
  back even for n > 1, but n images are billed (flat $0.03 each); ``response_format`` defaults to
  ``url``; its ``b64_json`` carries a ``data:image/png;base64,`` prefix; no ``usage``.
- ``gpt-image-2`` (official channel): OpenAI's rules; ``b64_json`` by default; OpenAI's response
  fields including ``usage``.
- Legacy ``gpt-image-1.5``, ``gpt-image-1``, ``gpt-image-1-mini``: prompt up to 1000 chars,
  sizes 1024x1024/1536x1024/1024x1536/auto, n 1-10, ``url`` by default (the doc's example reads
  ``data[0].url``); only ``gpt-image-1`` takes edits (with mask).
- Errors: the OpenAI shape ``{"error": {"message", "type", "param", "code"}}``.
Source: 003_d307cd8db33a550d.txt and ../shared/providers/README.md (as of 2026-11-21).
Billing: every processed call, also when the client disconnected before the answer [doc];
legacy models the cheaper of tokens or the per-image table (the cost engine).
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import Any

from ._base import Call, ProviderApp, Route, route
from ._openai_compat import ModelRules, openai_error_body, parse_image_call, render_call
from ._wire import Reply, WireError, WireRequest

_LEGACY_EDITS = ModelRules(max_prompt=1000)
_LEGACY = ModelRules(max_prompt=1000, edits=False, masks=False)
MODELS = {
    "gpt-image-2": ModelRules(custom_sizes=True, transparent=False),
    "gpt-image-2-all": ModelRules(),
    "gpt-image-1.5": _LEGACY,
    "gpt-image-1": _LEGACY_EDITS,
    "gpt-image-1-mini": _LEGACY,
}
_FORMATS = frozenset({"url", "b64_json"})
_IGNORED_BY_ALL = ("size", "quality", "n")
_ALL_PREFIX = "data:image/png;base64,"


class APIYIApp(ProviderApp):
    name = "apiyi"
    api_root = "/v1"
    routes = (
        route("POST", r"/v1/images/generations", "generate", "images"),
        route("POST", r"/v1/images/edits", "edit", "images"),
    )

    def error(self, err: WireError, route: Route | None) -> Reply:
        return Reply.json(err.status, openai_error_body(err), err.headers)

    def images(self, req: WireRequest, match: re.Match[str], call: Call) -> Reply:
        edit = req.path.endswith("/edits")
        params = req.params()
        if params.get("model") == "gpt-image-2-all":
            return self._reverse(req, params, edit, call)
        ic = parse_image_call(req, MODELS, edit=edit, response_formats=_FORMATS)
        mode = ic.response_format or ("b64_json" if ic.model == "gpt-image-2" else "url")
        data = render_call(self.env, self.name, ic, call.fate, mode)
        usage = self.env.usage(ic.model, ic.size, ic.quality, ic.n, ic.prompt, len(ic.images))
        call.request_id = self.env.new_id("apiyi-")
        self.charge(ic.model, call.request_id, size=ic.size, quality=ic.quality, n=ic.n, usage=usage)
        body: dict[str, Any] = {"created": int(time.time()), "data": data, "usage": usage.to_openai()}
        if ic.model == "gpt-image-2":
            body.update(
                background=ic.background, output_format=ic.output_format, quality=ic.quality, size=ic.size
            )
        return Reply.json(200, body)

    def _reverse(self, req: WireRequest, params: dict[str, Any], edit: bool, call: Call) -> Reply:
        """gpt-image-2-all: size/quality/n ignored (n still billed), one PNG back."""
        try:
            n_billed = max(1, int(params.get("n") or 1))
        except (TypeError, ValueError):
            n_billed = 1
        kept = {k: v for k, v in params.items() if k not in _IGNORED_BY_ALL}
        kept["output_format"] = "png"
        stripped = replace(req, json=kept if isinstance(req.json, dict) else None)
        if not isinstance(req.json, dict):
            stripped.form = {k: [str(v)] for k, v in kept.items()}
        ic = parse_image_call(stripped, MODELS, edit=edit, response_formats=_FORMATS)
        mode = ic.response_format or "url"
        data = render_call(
            self.env, self.name, ic, call.fate, mode, prefix=_ALL_PREFIX if mode == "b64_json" else ""
        )
        call.request_id = self.env.new_id("apiyi-")
        self.charge(
            ic.model, call.request_id, size=ic.size, quality=ic.quality, n=n_billed, images_returned=1
        )
        return Reply.json(200, {"created": int(time.time()), "data": data})

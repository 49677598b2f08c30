"""``OpenAIImageResource``: the official OpenAI Images API.

Quirks: GPT Image models always answer ``b64_json`` and reject ``response_format`` with 400
``unknown_parameter``, so it is never sent; edits take ``image`` for one file and repeated ``image[]``
for several, plus an optional ``mask``. Source: OpenAI Images API reference, as summarised in
``../shared/providers/README.md`` (as of 2026-11-21).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from ._openai_wire import OpenAICompatibleResource

__all__ = ["OpenAIImageResource"]


class OpenAIImageResource(OpenAICompatibleResource):
    """OpenAI Images API (``POST /images/generations``, multipart ``POST /images/edits``).

    Example: ``OpenAIImageResource(api_key=dg.EnvVar("OPENAI_API_KEY"))``. ``organization`` and
    ``project`` are sent as ``OpenAI-Organization`` / ``OpenAI-Project`` headers when set.
    """

    provider_name: ClassVar[str] = "openai"
    # The Images API takes no idempotency key, so a request that timed out after sending may have
    # been billed and is not re-sent (conservative; nothing in the API reference says otherwise).
    idempotent: ClassVar[bool] = False
    idempotency_source: ClassVar[str] = "OpenAI Images API: no idempotency key documented"

    base_url: str = Field(default="https://api.openai.com/v1", description="API root.")
    organization: str | None = Field(default=None, description="OpenAI-Organization header.")
    project: str | None = Field(default=None, description="OpenAI-Project header.")

    def _auth_headers(self) -> dict[str, str]:
        headers = super()._auth_headers()
        if self.organization:
            headers["OpenAI-Organization"] = self.organization
        if self.project:
            headers["OpenAI-Project"] = self.project
        return headers

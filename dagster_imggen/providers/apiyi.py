"""``APIYIImageResource``: APIYI's OpenAI-compatible GPT Image routes (all synchronous).

Quirks (source: ``../shared/providers/003_d307cd8db33a550d.txt`` and ``README.md`` there, as of
2026-11-21):

- API root ``https://api.apiyi.com/v1``; ``POST /images/generations`` and multipart
  ``/images/edits`` with repeated ``image[]`` parts (up to 16) and an optional ``mask``;
- ``gpt-image-2-all`` (reverse channel, flat $0.03): ignores size, quality and n, returns one image
  but bills n, answers ``url`` by default, and its ``b64_json`` carries a ``data:image/png;base64,``
  prefix. Its images are therefore not checked against the requested size;
- a disconnected call is still billed, hence the 360 s read timeout APIYI recommends and no retry of
  a request that may already have been sent.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from ..request import ImageRequest
from ._http import parse_size
from ._openai_wire import RESPONSE_FORMATS, OpenAICompatibleResource, check_choice

__all__ = ["APIYIImageResource"]


class APIYIImageResource(OpenAICompatibleResource):
    """APIYI (``https://api.apiyi.com/v1``): synchronous, OpenAI-compatible."""

    provider_name: ClassVar[str] = "apiyi"
    idempotent: ClassVar[bool] = False
    idempotency_source: ClassVar[str] = "APIYI docs: a disconnected call is still billed"

    base_url: str = Field(default="https://api.apiyi.com/v1", description="API root.")
    response_format: str | None = Field(
        default=None, description="Sent when set; gpt-image-2-all defaults to url."
    )

    check_response_format = field_validator("response_format")(check_choice(RESPONSE_FORMATS))

    def _edit_image_field(self, count: int) -> str:
        return "image[]"

    def _response_format(self, request: ImageRequest) -> str | None:
        return self.response_format

    def _expected_dims(self, request: ImageRequest) -> tuple[int, int] | None:
        from ..catalog import get_catalog

        if get_catalog().model(self.provider_name, request.model).ignores_size_quality_n:
            return None
        return parse_size(request.size)

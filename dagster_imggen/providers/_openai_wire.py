"""The OpenAI-compatible Images API wire family (OpenAI, APIYI, PiAPI ``/v1``, Pixapi sync, GPTImage2).

- generations: a JSON ``POST {base}/images/generations`` (:func:`generation_body`);
- edits: a multipart ``POST {base}/images/edits`` with the reference images as repeated file parts
  (``image`` or ``image[]``, as each provider documents) and an optional ``mask`` (:func:`edit_form`);
- ``response_format`` only where the provider accepts it (OpenAI rejects it for GPT Image models);
- responses: ``data[].b64_json`` (with or without a ``data:`` prefix) or ``data[].url``, plus
  ``usage`` and the top-level ``size``/``quality``/``output_format``/``background``
  (:meth:`OpenAICompatibleResource._output_from_body`).

Source: OpenAI Images API reference, as summarised in ``../shared/providers/README.md`` (2026-11-21).
"""

from __future__ import annotations

import functools
import os
from typing import Any, ClassVar

import httpx

from ..errors import ImageRequestError, MalformedResponseError, redact
from ..request import ImageRequest
from ..result import Usage
from ._http import CallState, fetch_images, parse_error_body, parse_size, request_id_of, run_in_thread
from ._tasks import find_image_refs
from .base import ProviderOutput, RemoteImageResource, _LoopState

__all__ = [
    "RESPONSE_FORMATS",
    "TASK_MODES",
    "OpenAICompatibleResource",
    "check_choice",
    "edit_form",
    "generation_body",
    "read_reference",
]

Files = list[tuple[str, tuple[str, bytes, str]]]


def generation_body(request: ImageRequest, *, response_format: str | None = None) -> dict[str, Any]:
    """The JSON body of ``POST /images/generations``; optional fields only when set.

    ``quality`` must already be explicit (the resource resolves it). ``request.extra`` is merged last.
    """
    body: dict[str, Any] = {
        "model": request.model,
        "prompt": request.prompt,
        "n": request.n,
        "size": request.size,
    }
    if request.quality is not None:
        body["quality"] = request.quality
    body["output_format"] = request.output_format
    if request.output_compression is not None:
        body["output_compression"] = request.output_compression
    if request.background is not None:
        body["background"] = request.background
    if request.moderation is not None:
        body["moderation"] = request.moderation
    if response_format is not None:
        body["response_format"] = response_format
    body.update(request.extra)
    return body


def edit_form(request: ImageRequest, *, response_format: str | None = None) -> dict[str, str]:
    """The non-file fields of a multipart ``POST /images/edits`` (all values as strings)."""
    return {
        key: _form_value(value)
        for key, value in generation_body(request, response_format=response_format).items()
    }


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"))


def _mime_of(data: bytes) -> str:
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def read_reference(path: str, *, field: str = "images") -> tuple[str, bytes, str]:
    """Read a reference image (local path or fsspec URL) -> ``(file name, bytes, mime type)``.

    Raises ``ImageRequestError`` naming ``field`` when it cannot be read.
    """
    import fsspec

    try:
        with fsspec.open(path, "rb") as handle:
            data: bytes = handle.read()
    except Exception as exc:
        raise ImageRequestError(
            f"cannot read {field} {path!r}: {type(exc).__name__}: {exc}", field=field
        ) from None
    name = os.path.basename(path.rstrip("/")) or "image.png"
    return name, data, _mime_of(data)


async def read_references(
    request: ImageRequest,
) -> tuple[list[tuple[str, bytes, str]], tuple[str, bytes, str] | None]:
    """The request's reference images and mask, read in the default thread pool."""
    images = [await run_in_thread(read_reference, path) for path in request.images]
    mask = None
    if request.mask:
        mask = await run_in_thread(functools.partial(read_reference, request.mask, field="mask"))
    return images, mask


RESPONSE_FORMATS = ("url", "b64_json")
TASK_MODES = ("sync", "async")


def check_choice(choices: tuple[str, ...]) -> Any:
    """A pydantic ``field_validator`` body: the value is None or one of ``choices``.

    (Dagster config has no ``Literal`` type, so string fields are checked here.)
    """

    def check(cls: type, value: str | None) -> str | None:
        if value is not None and value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    return classmethod(check)


class OpenAICompatibleResource(RemoteImageResource):
    """Base of the OpenAI-compatible providers: sync generations and multipart edits.

    Subclasses set ``base_url`` and override the hooks for their quirks: ``_auth_headers``,
    ``_edit_image_field``, ``_response_format``, ``_expected_dims``, and the paths.
    """

    generations_path: ClassVar[str] = "images/generations"
    edits_path: ClassVar[str] = "images/edits"

    # ------------------------------------------------------------------------------- hooks

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def _edit_image_field(self, count: int) -> str:
        """OpenAI's convention: ``image`` for one file, repeated ``image[]`` for several."""
        return "image" if count == 1 else "image[]"

    def _response_format(self, request: ImageRequest) -> str | None:
        """``response_format`` to send, or None to leave it out."""
        return None

    def _expected_dims(self, request: ImageRequest) -> tuple[int, int] | None:
        """The (width, height) the images must have; None when the provider may choose."""
        return parse_size(request.size)

    # -------------------------------------------------------------------------------- wire

    async def _produce(self, request: ImageRequest, call: CallState, state: _LoopState) -> ProviderOutput:
        body, response = await self._post_images(request, call, state)
        request_id = request_id_of(response)
        del response  # free the raw body (megabytes of base64) before the images are decoded
        self._refuse_error_body(body, call, request_id)
        return await self._output_from_body(body, request_id, request, state)

    def _refuse_error_body(self, body: dict[str, Any], call: CallState, request_id: str | None) -> None:
        """A 2xx answer whose body is an error object: nothing was generated (nor billed).

        Raises ``MalformedResponseError`` with the provider's message (redacted) and code.
        """
        if not body.get("error") or isinstance(body.get("data"), list):
            return
        call.paid = False
        message, code, _ = parse_error_body(body)
        raise MalformedResponseError(
            f"a 2xx answer carrying an error: {redact(message or 'no message', self.api_key)}",
            provider=self.provider_name,
            code=code,
            request_id=request_id,
        )

    async def _post_images(
        self,
        request: ImageRequest,
        call: CallState,
        state: _LoopState,
        *,
        paths: tuple[str, str] | None = None,
    ) -> tuple[dict[str, Any], httpx.Response]:
        """POST a generation (JSON) or an edit (multipart) to the OpenAI-compatible route.

        ``paths`` = (generations, edits) overrides the sync routes, e.g. with a provider's async ones.
        """
        generations_path, edits_path = paths or (self.generations_path, self.edits_path)
        session = self._session(state)
        response_format = self._response_format(request)
        if not request.is_edit:
            return await session.send_json(
                call,
                "POST",
                generations_path,
                headers=self._auth_headers(),
                json=generation_body(request, response_format=response_format),
            )
        images, mask = await read_references(request)
        field = self._edit_image_field(len(images))
        files: Files = [(field, image) for image in images]
        if mask is not None:
            files.append(("mask", mask))
        return await session.send_json(
            call,
            "POST",
            edits_path,
            headers=self._auth_headers(),
            data=edit_form(request, response_format=response_format),
            files=files,
        )

    async def _output_from_body(
        self, body: dict[str, Any], request_id: str | None, request: ImageRequest, state: _LoopState
    ) -> ProviderOutput:
        """Images, usage and the response's own size/quality/output_format from a ``data[]`` body."""
        session = self._session(state)
        data = body.get("data")
        if not isinstance(data, list) or not data:
            raise MalformedResponseError(
                "response has no data[] images", provider=self.provider_name, request_id=request_id
            )
        refs = find_image_refs({"data": data})
        if not refs:
            raise MalformedResponseError(
                "data[] holds neither b64_json nor url",
                provider=self.provider_name,
                request_id=request_id,
            )
        images = await fetch_images(session, refs, expect_size=self._expected_dims(request))
        return ProviderOutput(
            images=images,
            usage=Usage.from_openai(body.get("usage")),
            request_id=request_id,
            size=_str(body.get("size")) or images[0].size,
            quality=_str(body.get("quality")) or request.quality,
            output_format=_str(body.get("output_format")) or images[0].format,
        )


def _str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None

"""Wire-level pieces shared by every emulated provider: the parsed request, the reply, multipart parsing.

Nothing provider-specific lives here; each provider module turns a :class:`WireRequest` into a
:class:`Reply` in its own documented shape.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import parse_qs

__all__ = ["Reply", "UploadedFile", "WireError", "WireRequest", "parse_multipart"]


@dataclass(frozen=True, repr=False)
class UploadedFile:
    """One file part of a multipart body."""

    field: str  # the part name, e.g. "image", "image[]", "mask"
    filename: str | None
    content_type: str | None
    data: bytes

    def __repr__(self) -> str:
        return f"UploadedFile({self.field!r}, {self.filename!r}, {len(self.data)} bytes)"


class WireError(Exception):
    """A request the provider refuses; each provider renders it in its own error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | int | None = None,
        param: str | None = None,
        type_: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.type_ = type_
        self.headers = headers or []


@dataclass
class Reply:
    """An HTTP answer: status, body bytes and extra headers (Content-Length is added on send)."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    #: The JSON object behind ``body`` when there is one (faults rewrite it).
    obj: Any = None

    @classmethod
    def json(cls, status: int, obj: Any, headers: list[tuple[str, str]] | None = None) -> Reply:
        body = json.dumps(obj, separators=(",", ":")).encode()
        return cls(status, body, "application/json", list(headers or []), obj)


_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


def _header_params(value: str) -> Message:
    msg = Message()
    msg["content-disposition"] = value
    return msg


def parse_multipart(body: bytes, content_type: str) -> tuple[dict[str, list[str]], list[UploadedFile]]:
    """Split a ``multipart/form-data`` body into text fields (repeated names kept) and file parts.

    Raises ``ValueError`` for a body without a boundary or with a part missing its headers.
    """
    m = _BOUNDARY.search(content_type)
    if not m:
        raise ValueError("multipart body without a boundary")
    delimiter = b"--" + m.group(1).encode("latin-1")
    fields: dict[str, list[str]] = {}
    files: list[UploadedFile] = []
    chunks = body.split(delimiter)
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        part = chunk[2:] if chunk.startswith(b"\r\n") else chunk
        head, sep, data = part.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("multipart part without headers")
        if data.endswith(b"\r\n"):
            data = data[:-2]
        headers: dict[str, str] = {}
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = _header_params(headers.get("content-disposition", ""))
        name = disposition.get_param("name", header="content-disposition")
        filename = disposition.get_filename()
        if not isinstance(name, str):
            raise ValueError("multipart part without a name")
        if filename is not None:
            files.append(UploadedFile(name, filename, headers.get("content-type"), data))
        else:
            fields.setdefault(name, []).append(data.decode("utf-8", errors="replace"))
    return fields, files


@dataclass
class WireRequest:
    """One request as it arrived: parsed JSON, form fields and files (whatever the body held)."""

    provider: str
    method: str
    url_path: str  # the full path, e.g. "/openai/v1/images/generations"
    path: str  # the provider's own path, after "/{provider}", e.g. "/v1/images/generations"
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    json: Any = None
    form: dict[str, list[str]] = field(default_factory=dict)
    files: list[UploadedFile] = field(default_factory=list)
    #: Why the body could not be parsed (bad JSON, broken multipart), or None.
    body_error: str | None = None

    @classmethod
    def parse(
        cls,
        provider: str,
        method: str,
        url_path: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
    ) -> WireRequest:
        req = cls(
            provider=provider,
            method=method,
            url_path=url_path,
            path=path,
            query={k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()},
            headers=headers,
            body=body,
        )
        ctype = headers.get("content-type", "").lower()
        if not body:
            return req
        try:
            if ctype.startswith("multipart/form-data"):
                req.form, req.files = parse_multipart(body, headers.get("content-type", ""))
            elif ctype.startswith("application/x-www-form-urlencoded"):
                req.form = parse_qs(body.decode(), keep_blank_values=True)
            else:
                req.json = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            req.body_error = f"{type(exc).__name__}: {exc}"
        return req

    @property
    def is_multipart(self) -> bool:
        return self.headers.get("content-type", "").lower().startswith("multipart/form-data")

    def params(self) -> dict[str, Any]:
        """The request's parameters: the JSON object, or the form fields (last value of each)."""
        if isinstance(self.json, dict):
            return self.json
        return {k: v[-1] for k, v in self.form.items()}

    def files_named(self, *names: str) -> list[UploadedFile]:
        return [f for f in self.files if f.field in names]

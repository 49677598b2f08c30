"""What the emulator remembers: every request it received, and every charge a provider would make."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..result import Usage

__all__ = ["Billed", "BilledCall", "RecordedFile", "RecordedRequest", "key_fingerprint"]

#: Header names whose values never enter the record.
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "proxy-authorization", "cookie"})


def key_fingerprint(key: str) -> str:
    """The first 16 hex digits of the SHA-256 of an API key, as kept in ``RecordedRequest.key_sha256``."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def redact_header(name: str, value: str) -> str:
    """``"Bearer ***"`` for a bearer token, ``"***"`` for any other secret header value."""
    if name not in SECRET_HEADERS:
        return value
    scheme, sep, _ = value.partition(" ")
    return f"{scheme} ***" if sep and scheme.lower() in ("bearer", "basic", "token") else "***"


@dataclass(frozen=True)
class RecordedFile:
    """One uploaded file part: its field name, and the bytes' size, digest and (if an image) pixels."""

    field: str  # "image", "image[]", "mask", ...
    filename: str | None
    content_type: str | None
    size: int  # bytes
    sha256: str  # hex digest of the bytes
    format: str | None  # "png" | "jpeg" | "webp", read with Pillow; None if not an image
    width: int | None  # pixels
    height: int | None
    has_alpha: bool = False

    @classmethod
    def of(cls, field_name: str, filename: str | None, content_type: str | None, data: bytes) -> RecordedFile:
        fmt = width = height = None
        alpha = False
        try:
            from PIL import Image

            with Image.open(io.BytesIO(data)) as im:
                fmt = (im.format or "").lower() or None
                width, height = im.size
                alpha = "A" in im.getbands() or "transparency" in im.info
        except Exception:  # not an image: keep size and digest only
            pass
        return cls(
            field_name,
            filename,
            content_type,
            len(data),
            hashlib.sha256(data).hexdigest(),
            fmt,
            width,
            height,
            alpha,
        )


@dataclass
class RecordedRequest:
    """One request as the emulator received it. API keys are never stored.

    - ``provider``: route prefix (``openai``, ``piapi``, ...); ``op``: ``generate``, ``edit``,
      ``poll``, ``download`` or ``unknown``.
    - ``path``: the provider's documented path (``/v1/images/generations``); ``url_path``: as sent,
      with the ``/{provider}`` prefix; ``query``: query parameters (last value of each).
    - ``headers``: lower-case names; secret values redacted (``"Bearer ***"``, ``"***"``).
    - ``auth_header``: which header carried a key (``authorization``/``x-api-key``) or None;
      ``auth_ok``: whether the emulator accepted it; ``key_sha256``: ``key_fingerprint(key)``.
    - ``json``: the parsed JSON body; ``form``: multipart or urlencoded text fields (repeated names
      kept as lists); ``files``: the file parts; ``body_size`` in bytes.
    - ``status``: the HTTP status sent (None when the connection was dropped or reset);
      ``fault``: the injected fault kind that hit this request; ``request_id``: the response's or
      task's id; ``timestamp``: ``time.time()`` on arrival.
    """

    provider: str
    op: str
    method: str
    path: str
    url_path: str
    query: dict[str, str]
    headers: dict[str, str]
    auth_header: str | None
    auth_ok: bool
    key_sha256: str | None
    json: Any
    form: dict[str, list[str]]
    files: tuple[RecordedFile, ...]
    body_size: int
    timestamp: float
    status: int | None = None
    fault: str | None = None
    request_id: str | None = None

    @property
    def prompt(self) -> str | None:
        if isinstance(self.json, dict):
            p = self.json.get("prompt")
            if p is None and isinstance(self.json.get("input"), dict):
                p = self.json["input"].get("prompt")
            return p if isinstance(p, str) else None
        values = self.form.get("prompt")
        return values[-1] if values else None

    def field(self, name: str) -> Any:
        """A body parameter by name: from the JSON object, else the last form value."""
        if isinstance(self.json, dict):
            return self.json.get(name)
        values = self.form.get(name)
        return values[-1] if values else None


@dataclass(frozen=True)
class BilledCall:
    """One charge: what the provider would bill for one call or task (USD as ``Decimal``)."""

    provider: str
    model: str
    request_id: str | None
    images: int  # images billed (APIYI gpt-image-2-all bills n even when it returns one)
    credits: Decimal | None  # provider credits, where the provider bills in credits
    usd: Decimal
    usage: Usage | None
    note: str = ""


@dataclass(frozen=True)
class Billed:
    """The sum of a provider's charges: ``calls``, ``images``, ``credits``, ``usd`` and token ``usage``."""

    calls: int
    images: int
    credits: Decimal
    usd: Decimal
    usage: Usage
    entries: tuple[BilledCall, ...] = field(default=(), repr=False)

    @classmethod
    def of(cls, entries: list[BilledCall]) -> Billed:
        def total(attr: str) -> int:
            return sum(getattr(e.usage, attr) for e in entries if e.usage is not None)

        return cls(
            calls=len(entries),
            images=sum(e.images for e in entries),
            credits=sum((e.credits or Decimal(0) for e in entries), Decimal(0)),
            usd=sum((e.usd for e in entries), Decimal(0)),
            usage=Usage(
                input_text_tokens=total("input_text_tokens"),
                input_image_tokens=total("input_image_tokens"),
                cached_input_tokens=total("cached_input_tokens"),
                output_tokens=total("output_tokens"),
            ),
            entries=tuple(entries),
        )

"""Shared helpers for the provider tests (tests/test_providers_*.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from dagster_imggen.render import render_image
from dagster_imggen.result import ImageResult
from dagster_imggen.testing import ProviderEmulator, RecordedRequest, key_fingerprint

#: A key shaped like a real one; tests assert it never leaks.
KEY = "sk-imggen-test-7f3a9c1e5b2d46801234"
KEY_SHA = key_fingerprint(KEY)
#: Fast retry and polling for tests (seconds).
FAST: dict[str, Any] = {
    "backoff_base_s": 0.01,
    "backoff_max_s": 0.05,
    "poll_interval_s": 0.02,
    "task_deadline_s": 10.0,
}

R = TypeVar("R")


def make(cls: type[R], emu: ProviderEmulator, **config: Any) -> R:
    """A resource of ``cls`` pointed at the emulator, with fast retries."""
    return cls(api_key=KEY, base_url=emu.base_url(cls.provider_name), **{**FAST, **config})  # type: ignore[attr-defined,call-arg]


@dataclass
class Refs:
    """Two distinct 1024x1024 PNG reference images and an RGBA PNG mask."""

    first: str
    second: str
    mask: str


def write_refs(tmp_path: Path) -> Refs:
    paths = []
    for name, prompt, transparent in (
        ("a.png", "first", False),
        ("b.png", "second", False),
        ("m.png", "m", True),
    ):
        path = tmp_path / name
        path.write_bytes(render_image(prompt, 1024, 1024, "png", transparent=transparent))
        paths.append(str(path))
    return Refs(*paths)


def assert_images(result: ImageResult, count: int, size: str, fmt: str) -> None:
    """The result holds ``count`` real images of ``size`` (read from the bytes) in ``fmt``."""
    assert result.ok, result.error
    assert len(result.images) == count
    for image in result.images:
        assert image.size == size
        assert image.format == fmt
        assert len(image.data) > 1000


def only(calls: list[RecordedRequest]) -> RecordedRequest:
    assert len(calls) == 1, [(c.method, c.path, c.status) for c in calls]
    return calls[0]


def assert_bearer(call: RecordedRequest) -> None:
    assert call.auth_header == "authorization"
    assert call.headers["authorization"] == "Bearer ***"
    assert call.key_sha256 == KEY_SHA
    assert call.auth_ok

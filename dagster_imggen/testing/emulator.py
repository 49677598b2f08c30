"""``ProviderEmulator``: a loopback HTTP server that speaks every provider's wire format.

Usage::

    with ProviderEmulator() as emu:
        resource = OpenAIImageResource(api_key="sk-test", base_url=emu.base_url("openai"))
        emu.configure("openai", latency_s=(0.04, 0.06), rate_limit=(20, 2.0))
        emu.inject("openai", FaultSpec("status", status=503), count=2)
        ...
        assert emu.calls("openai", op="generate")[0].json["model"] == "gpt-image-2"
        assert emu.billed("openai").usd > 0

Each provider is mounted under ``/{provider}`` followed by its documented paths; ``base_url(name)``
is the equivalent of the provider's default API root (e.g. ``http://127.0.0.1:PORT/openai/v1``).
Image URLs in url responses point at ``/{provider}/files/{id}.{ext}`` and expire after
``url_ttl_s``. Standard library only (``http.server``), HTTP/1.1 keep-alive, one thread per connection.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import math
import random
import socket
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from ..render import render_image
from ..result import Usage
from . import _pricing
from ._aigenerate import AIGenerateApp
from ._apiyi import APIYIApp
from ._base import Call, ProviderApp, Route, Task
from ._faults import OUTCOME_FAULTS, FaultSpec
from ._gptimage2 import GPTImage2App
from ._openai import OpenAIApp
from ._piapi import PiAPIApp
from ._pixapi import PixapiApp
from ._record import Billed, BilledCall, RecordedFile, RecordedRequest, key_fingerprint, redact_header
from ._wire import Reply, WireError, WireRequest

__all__ = ["PROVIDERS", "ProviderEmulator", "ProviderSettings", "serve"]

_APPS: tuple[type[ProviderApp], ...] = (OpenAIApp, PiAPIApp, PixapiApp, APIYIApp, AIGenerateApp, GPTImage2App)
#: Provider route prefixes, as in the catalog and the design card.
PROVIDERS: tuple[str, ...] = tuple(app.name for app in _APPS)
_UNSET: Any = object()
_CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
_EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp"}


@dataclass
class ProviderSettings:
    """Per-provider behaviour; change with ``ProviderEmulator.configure``.

    - ``latency_s``: seconds added before answering each API request, fixed or ``(lo, hi)`` uniform.
    - ``rate_limit``: ``(requests, period_s)`` per API key over a sliding window, counted on
      submissions (generations, edits, task creation); excess ones get 429 with ``retry-after``
      (whole seconds) and, with ``retry_after_ms``, ``retry-after-ms``. None: unlimited.
      AI Generate starts at its documented 20 per 10 s (002_7794215a2f478efb.txt).
    - ``api_key``: the only key accepted (None: any non-empty key); others get 401.
    - ``task_s``: seconds an async task takes from creation to its final state.
    - ``url_ttl_s``: seconds an image URL stays downloadable; then it answers ``expired_status``
      (default 403, as an expired signed URL does).
    """

    latency_s: float | tuple[float, float] = 0.0
    rate_limit: tuple[int, float] | None = None
    api_key: str | None = field(default=None, repr=False)  # never in a repr
    task_s: float = 0.2
    url_ttl_s: float = 3600.0
    expired_status: int = 403
    retry_after_ms: bool = False

    def latency(self) -> float:
        if isinstance(self.latency_s, tuple):
            lo, hi = self.latency_s
            return random.uniform(lo, hi)
        return self.latency_s


@dataclass
class _File:
    data: bytes
    content_type: str
    expires: float  # time.monotonic()
    prompt: str


class _SlidingWindow:
    def __init__(self, limit: int, period_s: float) -> None:
        self.limit, self.period_s = limit, period_s
        self.times: deque[float] = deque()

    def admit(self, now: float) -> float | None:
        """Admit a request at ``now``; return None, or the seconds until one would be admitted."""
        while self.times and self.times[0] <= now - self.period_s:
            self.times.popleft()
        if len(self.times) >= self.limit:
            return self.times[0] + self.period_s - now
        self.times.append(now)
        return None


@functools.lru_cache(maxsize=512)
def _render(
    text: str, width: int, height: int, fmt: str, index: int, transparent: bool, compression: int | None
) -> bytes:
    return render_image(
        text, width, height, fmt, seed=str(index), compression=compression, transparent=transparent
    )


@functools.lru_cache(maxsize=256)
def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _corrupt(data: bytes) -> bytes:
    """Keep the format signature, zero the rest: identifies as nothing, decodes as nothing."""
    return data[:8] + bytes(max(len(data) - 8, 64))


def _truncate_b64(text: str) -> str:
    cut = text[: max(len(text) // 2, 8)]
    return cut[:-1] if len(cut) % 4 == 0 else cut  # never a multiple of 4: invalid base64


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256
    allow_reuse_address = True
    emulator: ProviderEmulator

    def __init__(self, address: tuple[str, int], emulator: ProviderEmulator) -> None:
        self.emulator = emulator
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.sockets_lock:
            self.server.open_sockets.add(self.connection)

    def finish(self) -> None:
        with self.server.sockets_lock:
            self.server.open_sockets.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # no access log
        pass

    def _dispatch(self) -> None:
        self.server.emulator._handle(self)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

    # --- low-level I/O -------------------------------------------------------------------------
    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline(3)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send(self, reply: Reply, *, stall_s: float = 0.0, stream_size: int | None = None) -> None:
        """Write ``reply`` in one write (or two around a ``stall_s`` pause mid-body)."""
        body = reply.body
        length = stream_size if stream_size is not None else len(body)
        head = [f"HTTP/1.1 {reply.status} {self.responses.get(reply.status, ('',))[0]}"]
        head.append(f"Content-Type: {reply.content_type}")
        head.append(f"Content-Length: {length}")
        head.extend(f"{k}: {v}" for k, v in reply.headers)
        if self.close_connection:
            head.append("Connection: close")
        raw = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        try:
            if stream_size is not None:  # oversized: the prefix, then zeros up to stream_size
                self.wfile.write(raw + body)
                chunk = bytes(1 << 20)
                left = stream_size - len(body)
                while left > 0:
                    self.wfile.write(chunk[: min(left, len(chunk))])
                    left -= len(chunk)
            elif stall_s > 0:
                half = max(len(body) // 2, 1)
                self.wfile.write(raw + body[:half])
                self.wfile.flush()
                time.sleep(stall_s)
                self.wfile.write(body[half:])
            else:
                self.wfile.write(raw + body)
        except OSError:  # the client went away (e.g. it hit its byte cap); nothing to do
            self.close_connection = True

    def drop(self, *, reset: bool) -> None:
        """Close the connection without a response; with ``reset``, by RST instead of FIN."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            if reset:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
            self.connection.close()


class ProviderEmulator:
    """A loopback server of every provider's wire format, for tests (thread-safe).

    Args (all keyword-only):
        host, port: where to listen; port 0 picks a free port.
        latency_s, rate_limit, api_key, task_s, url_ttl_s, retry_after_ms: initial
            ``ProviderSettings`` for every provider (``rate_limit`` unset keeps AI Generate's
            documented 20 per 10 s; pass None to lift it too).
        api_keys: expected key per provider, overriding ``api_key``.
        unique_images: draw each prompt into its images (True) or, for benchmarks, serve one
            cached image per size and format (False).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_s: float | tuple[float, float] = 0.0,
        rate_limit: tuple[int, float] | None = _UNSET,
        api_key: str | None = None,
        api_keys: dict[str, str] | None = None,
        task_s: float = 0.2,
        url_ttl_s: float = 3600.0,
        retry_after_ms: bool = False,
        unique_images: bool = True,
    ) -> None:
        self.host = host
        self._port = port
        self.unique_images = unique_images
        self._lock = threading.Lock()
        self._apps: dict[str, ProviderApp] = {cls.name: cls(self) for cls in _APPS}
        self._settings: dict[str, ProviderSettings] = {}
        for name, app in self._apps.items():
            s = ProviderSettings(
                latency_s=latency_s,
                api_key=api_key,
                task_s=task_s,
                url_ttl_s=url_ttl_s,
                retry_after_ms=retry_after_ms,
            )
            s = replace(s, **app.default_settings)
            if rate_limit is not _UNSET:
                s.rate_limit = rate_limit
            if api_keys and name in api_keys:
                s.api_key = api_keys[name]
            self._settings[name] = s
        self._faults: list[tuple[str | None, FaultSpec]] = []
        self._records: list[RecordedRequest] = []
        self._charges: list[BilledCall] = []
        self._tasks: dict[tuple[str, str], Task] = {}
        self._files: dict[tuple[str, str], _File] = {}
        self._windows: dict[tuple[str, str], _SlidingWindow] = {}
        self._offset = 0.0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> ProviderEmulator:
        """Bind and serve in a daemon thread. Returns self."""
        if self._server is not None:
            return self
        self._server = _Server((self.host, self._port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="imggen-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with server.sockets_lock:
            for sock in list(server.open_sockets):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ProviderEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() or use it as a context manager")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The server root, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{self.host}:{self.port}"

    def base_url(self, provider: str) -> str:
        """The equivalent of ``provider``'s default API root, to pass as a resource's ``base_url``.

        openai ``/openai/v1``; piapi ``/piapi``; pixapi ``/pixapi``; apiyi ``/apiyi/v1``;
        aigenerate ``/aigenerate/api/v1``; gptimage2 ``/gptimage2/v1``. Raises ``KeyError``.
        """
        return f"{self.url}/{provider}{self._app(provider).api_root}"

    def _app(self, provider: str) -> ProviderApp:
        try:
            return self._apps[provider]
        except KeyError:
            raise KeyError(f"unknown provider {provider!r}; one of {', '.join(PROVIDERS)}") from None

    # --- settings and faults ----------------------------------------------------------------------
    def settings(self, provider: str) -> ProviderSettings:
        self._app(provider)
        return self._settings[provider]

    def configure(self, provider: str | None = None, **changes: Any) -> None:
        """Change ``ProviderSettings`` fields for one provider (None: all), e.g.
        ``configure("aigenerate", rate_limit=None, task_s=0.0)``. Raises ``TypeError`` on unknown fields."""
        allowed = {f.name for f in fields(ProviderSettings)}
        unknown = set(changes) - allowed
        if unknown:
            raise TypeError(f"unknown setting(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        names = [provider] if provider is not None else list(self._apps)
        with self._lock:
            for name in names:
                self._app(name)
                self._settings[name] = replace(self._settings[name], **changes)
                self._windows = {k: v for k, v in self._windows.items() if k[0] != name}

    def inject(self, provider: str | None, spec: FaultSpec, count: int | None = _UNSET) -> FaultSpec:
        """Queue a fault for ``provider`` (None: any provider); ``count`` overrides ``spec.count``.

        Faults are matched in injection order; each request takes at most one. Returns the spec.
        """
        if provider is not None:
            self._app(provider)
        if count is not _UNSET:
            spec = replace(spec, count=count)
        with self._lock:
            self._faults.append((provider, spec))
        return spec

    def clear_faults(self, provider: str | None = None) -> None:
        with self._lock:
            self._faults = [(p, f) for p, f in self._faults if provider is not None and p != provider]

    def pending_faults(self, provider: str | None = None) -> list[FaultSpec]:
        """Faults not yet used up (for ``provider``, or all)."""
        with self._lock:
            return [f for p, f in self._faults if provider is None or p in (None, provider)]

    def _take_fault(self, provider: str, op: str, prompt: str | None) -> FaultSpec | None:
        with self._lock:
            for i, (p, spec) in enumerate(self._faults):
                if p not in (None, provider) or not spec.hits(op, prompt):
                    continue
                if spec.count is not None:
                    if spec.count <= 1:
                        del self._faults[i]
                    else:
                        self._faults[i] = (p, replace(spec, count=spec.count - 1))
                return spec
        return None

    # --- the record -------------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._records)

    def calls(
        self,
        provider: str | None = None,
        *,
        op: str | None = None,
        path: str | None = None,
        method: str | None = None,
    ) -> list[RecordedRequest]:
        """Recorded requests filtered by provider, op (generate/edit/poll/download/unknown), path, method."""
        return [
            r
            for r in self.requests
            if (provider is None or r.provider == provider)
            and (op is None or r.op == op)
            and (path is None or r.path == path)
            and (method is None or r.method == method)
        ]

    def billed(self, provider: str | None = None) -> Billed:
        """What the provider(s) would have charged so far: calls, images, credits, USD, usage.

        Billing rules, each in its provider module: work done is billed even when the answer was
        lost (dropped connection, timeout; APIYI documents it); rejected requests are not.
        Pixapi bills an async task at creation; GPTImage2 and the task providers bill only
        successful results; APIYI ``gpt-image-2-all`` bills n images while returning one.
        """
        with self._lock:
            tasks = [
                t
                for t in self._tasks.values()
                if not t.settled and (provider is None or t.provider == provider)
            ]
        for task in tasks:
            self.settle(task)
        with self._lock:
            return Billed.of([c for c in self._charges if provider is None or c.provider == provider])

    def tasks(self, provider: str | None = None) -> list[Task]:
        with self._lock:
            return [t for t in self._tasks.values() if provider is None or t.provider == provider]

    # --- services for provider modules (the Env protocol) -----------------------------------------
    def now(self) -> float:
        """The emulator's clock (monotonic seconds, plus any ``advance``)."""
        return time.monotonic() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock forward: tasks progress, URLs expire, rate windows slide,
        without the test sleeping."""
        with self._lock:
            self._offset += seconds

    def new_id(self, prefix: str) -> str:
        return prefix + uuid.uuid4().hex[:20]

    def task_seconds(self, provider: str) -> float:
        return self._settings[provider].task_s

    def render(
        self,
        prompt: str,
        width: int,
        height: int,
        fmt: str,
        *,
        n: int = 1,
        fate: str | None = None,
        transparent: bool = False,
        compression: int | None = None,
    ) -> list[bytes]:
        """``n`` real images (cached by text, size, format, index), damaged as ``fate`` says."""
        if fate == "wrong_size":
            width, height = max(16, width // 2), max(16, height // 2 + 16)
        text = prompt if self.unique_images else "dagster-imggen emulator"
        images = [_render(text, width, height, fmt, i, transparent, compression) for i in range(n)]
        return [_corrupt(b) for b in images] if fate == "corrupt_image" else images

    def deliver(
        self,
        provider: str,
        images: list[bytes],
        fmt: str,
        mode: str,
        *,
        fate: str | None,
        prompt: str,
        prefix: str = "",
    ) -> list[dict[str, Any]]:
        """``data[]`` entries: ``{"b64_json": prefix + base64}`` or ``{"url": ...}`` (stored for download)."""
        out: list[dict[str, Any]] = []
        for data in images:
            if mode == "b64_json":
                text = prefix + _b64(data)
                out.append({"b64_json": _truncate_b64(text) if fate == "truncated_b64" else text})
            else:
                out.append(
                    {
                        "url": self.store_file(
                            provider, data[: len(data) // 2] if fate == "truncated_b64" else data, fmt, prompt
                        )
                    }
                )
        return out

    def store_file(self, provider: str, data: bytes, fmt: str, prompt: str = "") -> str:
        """Serve ``data`` at ``/{provider}/files/{id}.{ext}`` for ``url_ttl_s``; returns the URL."""
        file_id = uuid.uuid4().hex
        ext = _EXTENSIONS.get(fmt, fmt)
        ttl = self._settings[provider].url_ttl_s
        with self._lock:
            if len(self._files) > 8192:  # keep memory bounded: forget the oldest
                for key in list(self._files)[:1024]:
                    del self._files[key]
            self._files[(provider, f"{file_id}.{ext}")] = _File(
                data, _CONTENT_TYPES.get(fmt, "application/octet-stream"), self.now() + ttl, prompt
            )
        return f"{self.url}/{provider}/files/{file_id}.{ext}"

    def new_task(
        self,
        provider: str,
        model: str,
        prompt: str,
        *,
        fate: str | None,
        payload: dict[str, Any],
        on_settle: Callable[[Task], None] | None = None,
        prefix: str = "task_",
    ) -> Task:
        task = Task(
            id=self.new_id(prefix),
            provider=provider,
            model=model,
            prompt=prompt,
            created=self.now(),
            created_wall=time.time(),
            run_s=self._settings[provider].task_s,
            fate=fate,
            payload=payload,
            on_settle=on_settle,
        )
        with self._lock:
            self._tasks[(provider, task.id)] = task
        return task

    def get_task(self, provider: str, task_id: str) -> Task | None:
        with self._lock:
            return self._tasks.get((provider, task_id))

    def settle(self, task: Task) -> None:
        """Run the task's billing hook once, when it is first seen in a final state."""
        if not task.state(self.now()).done:
            return
        with self._lock:
            if task.settled:
                return
            task.settled = True
        if task.on_settle is not None:
            task.on_settle(task)

    def bill(self, call: BilledCall) -> None:
        with self._lock:
            self._charges.append(call)

    def usage(self, model: str, size: str, quality: str, n: int, prompt: str, input_images: int) -> Usage:
        return _pricing.expected_usage(model, size, quality, n, prompt, input_images)

    def price(
        self,
        provider: str,
        model: str,
        *,
        size: str,
        quality: str,
        n: int,
        images_returned: int,
        usage: Usage | None,
        credits: Decimal | None,
    ) -> Decimal:
        return _pricing.charge(
            provider,
            model,
            size=size,
            quality=quality,
            n=n,
            images_returned=images_returned,
            usage=usage,
            credits=credits,
        )

    # --- request handling -------------------------------------------------------------------------
    def _handle(self, h: _Handler) -> None:
        arrived = time.time()
        split = urlsplit(h.path)
        _, _, rest = split.path.partition("/")
        provider, slash, tail = rest.partition("/")
        path = "/" + tail if slash else "/"
        headers = {k.lower(): v for k, v in h.headers.items()}
        try:
            body = h.read_body()
        except (OSError, ValueError):
            h.drop(reset=False)
            return
        app = self._apps.get(provider)
        if app is None:
            h.send(
                Reply.json(
                    404, {"error": {"message": f"no provider at /{provider}; one of {', '.join(PROVIDERS)}"}}
                )
            )
            return
        req = WireRequest.parse(provider, h.command, split.path, path, split.query, headers, body)
        if path.startswith("/files/") and h.command == "GET":
            self._download(h, app, req, arrived)
            return
        found = app.match(h.command, path)
        route, match = found if found else (None, None)
        op = route.op if route else "unknown"
        group = "submit" if op in ("generate", "edit") else op
        if op in ("generate", "edit"):
            prompt = app.prompt_of(req)
        elif route is not None and match is not None:
            prompt = app.task_prompt(req, match)
        else:
            prompt = None
        fault = self._take_fault(provider, group, prompt) if route else None
        record = self._record(req, op, fault)
        if fault is not None and fault.kind == "reset":
            self._append(record)
            h.drop(reset=True)
            return
        delay = self._settings[provider].latency()
        if delay > 0:
            time.sleep(delay)
        try:
            reply = self._respond(app, req, route, match, op, fault, record)
        except Exception as exc:  # a bug in the emulator: answer 500, never hang the client
            reply = Reply.json(
                500,
                {
                    "error": {
                        "message": f"emulator error: {type(exc).__name__}: {exc}",
                        "type": "server_error",
                    }
                },
            )
        self._finish(h, reply, fault, record)

    def _record(self, req: WireRequest, op: str, fault: FaultSpec | None) -> RecordedRequest:
        return RecordedRequest(
            provider=req.provider,
            op=op,
            method=req.method,
            path=req.path,
            url_path=req.url_path,
            query=dict(req.query),
            headers={k: redact_header(k, v) for k, v in req.headers.items()},
            auth_header=None,
            auth_ok=False,
            key_sha256=None,
            json=req.json,
            form={k: list(v) for k, v in req.form.items()},
            files=tuple(RecordedFile.of(f.field, f.filename, f.content_type, f.data) for f in req.files),
            body_size=len(req.body),
            timestamp=time.time(),
            fault=fault.kind if fault else None,
        )

    def _append(self, record: RecordedRequest) -> None:
        with self._lock:
            self._records.append(record)

    def _respond(
        self,
        app: ProviderApp,
        req: WireRequest,
        route: Route | None,
        match: Any,
        op: str,
        fault: FaultSpec | None,
        record: RecordedRequest,
    ) -> Reply:
        settings = self._settings[app.name]
        header, key = app.credentials(req, route)
        record.auth_header = header
        record.key_sha256 = key_fingerprint(key) if key else None
        record.auth_ok = bool(key) and (settings.api_key is None or key == settings.api_key)
        if route is None:
            return app.error(app.not_found(req), None)
        if not record.auth_ok:
            return app.error(app.unauthorized(not key, route), route)
        if op in ("generate", "edit") and settings.rate_limit is not None:
            wait = self._admit(app.name, record.key_sha256 or "", settings.rate_limit)
            if wait is not None:
                reply = app.error(app.rate_limited(wait, route), route)
                reply.headers += self._retry_after(wait, settings.retry_after_ms)
                return reply
        if fault is not None and fault.kind in ("status", "error_body"):
            status = fault.status or 500
            reply = app.error(app.fault_error(status, fault.code, fault.message, route), route)
            if fault.kind == "error_body":
                reply.status = 200
            if fault.retry_after_s is not None:
                reply.headers += self._retry_after(fault.retry_after_s, True)
            return reply
        call = Call(fate=fault.kind if fault is not None and fault.kind in OUTCOME_FAULTS else None)
        try:
            reply = getattr(app, route.handler)(req, match, call)
        except WireError as err:
            reply = app.error(err, route)
        record.request_id = call.request_id
        return reply

    def _admit(self, provider: str, key: str, limit: tuple[int, float]) -> float | None:
        with self._lock:
            window = self._windows.get((provider, key))
            if window is None:
                window = self._windows[(provider, key)] = _SlidingWindow(*limit)
            return window.admit(self.now())

    @staticmethod
    def _retry_after(wait_s: float, with_ms: bool) -> list[tuple[str, str]]:
        out = [("retry-after", str(max(1, math.ceil(wait_s))))]
        if with_ms:
            out.append(("retry-after-ms", str(max(1, math.ceil(wait_s * 1000)))))
        return out

    def _finish(self, h: _Handler, reply: Reply, fault: FaultSpec | None, record: RecordedRequest) -> None:
        kind = fault.kind if fault is not None else None
        record.status = None if kind == "drop" else reply.status
        self._append(record)
        if kind == "drop":
            h.drop(reset=False)
            return
        if kind == "hang":
            time.sleep(fault.delay_s if fault else 0)
        if kind == "malformed_json":
            reply.body = reply.body[: max(len(reply.body) // 2, 1)]
        if kind == "oversized" and fault is not None:
            h.send(replace(reply, body=b'{"data":[{"b64_json":"'), stream_size=fault.size_bytes)
            return
        h.send(reply, stall_s=fault.delay_s if kind in ("slow_body", "slow_download") and fault else 0.0)

    def _download(self, h: _Handler, app: ProviderApp, req: WireRequest, arrived: float) -> None:
        file_id = req.path[len("/files/") :]
        with self._lock:
            stored = self._files.get((app.name, file_id))
        fault = self._take_fault(app.name, "download", stored.prompt if stored else None)
        record = self._record(req, "download", fault)
        record.auth_ok = True
        kind = fault.kind if fault else None
        if kind == "reset":
            self._append(record)
            h.drop(reset=True)
            return
        if stored is None:
            reply = Reply(404, b"file not found", "text/plain")
        elif kind in ("expired_url", "status"):
            status = (fault.status if fault else None) or (410 if kind == "expired_url" else 500)
            reply = Reply(status, b"expired" if kind == "expired_url" else b"error", "text/plain")
        elif self.now() > stored.expires:
            reply = Reply(self._settings[app.name].expired_status, b"expired", "text/plain")
        else:
            data = stored.data
            if kind == "corrupt_image":
                data = _corrupt(data)
            elif kind == "truncated_b64":
                data = data[: len(data) // 2]
            reply = Reply(200, data, stored.content_type)
        if kind == "oversized" and reply.status == 200 and fault is not None:
            record.status = 200
            self._append(record)
            h.send(replace(reply, body=reply.body[:64]), stream_size=max(fault.size_bytes, 64))
            return
        self._finish(h, reply, fault, record)


def serve(host: str = "127.0.0.1", port: int = 0, **settings: Any) -> None:
    """Run a ``ProviderEmulator`` in the foreground until interrupted, printing each base URL.

    Used by ``dagster-imggen emulate --port N``. ``settings`` go to ``ProviderEmulator``.
    """
    emu = ProviderEmulator(host=host, port=port, **settings)
    emu.start()
    print(f"dagster-imggen emulator listening on {emu.url}", flush=True)
    for name in PROVIDERS:
        print(f"  {name:<11} {emu.base_url(name)}", flush=True)
    stop = threading.Event()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()

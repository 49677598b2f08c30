"""The image store: generated images under an fsspec root, written atomically, found again by hash.

Layout (``root`` is any fsspec URL: a local path, ``memory://...``, ``s3://bucket/prefix``)::

    {root}/images/{partition}/{prompt_id}-{request_hash}-{i}.{ext}
    {root}/images/{partition}/_manifest.json       # the partition's rows and their images
    {root}/images/{partition}/_contact_sheet.png   # thumbnails (written by the pipeline)

``{partition}`` is the partition key made safe for paths by ``sanitize_id`` (no ``/``, ``..``, NUL).
Writes are atomic: on a local disk a temp name then ``rename``; on object stores one PUT, which
never leaves a partial object.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from .prompts import sanitize_id

__all__ = ["IMAGE_NAME", "ImageStore", "ManifestEntry", "partition_dir_name", "write_atomic"]

#: ``{prompt_id}-{request_hash}-{i}.{ext}``; hashes are lowercase hex.
IMAGE_NAME = re.compile(
    r"^(?P<prompt_id>.+)-(?P<hash>[0-9a-f]{8,128})-(?P<index>\d+)\.(?P<ext>png|jpg|jpeg|webp)$"
)
MANIFEST_NAME = "_manifest.json"
CONTACT_SHEET_NAME = "_contact_sheet.png"
#: Partition directory of unpartitioned pipelines.
UNPARTITIONED = "__all__"


def partition_dir_name(partition_key: str | None) -> str:
    """The directory name of a partition: ``sanitize_id(partition_key)``, ``__all__`` when None."""
    return sanitize_id(partition_key) if partition_key else UNPARTITIONED


def write_atomic(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the whole new one, never a part.

    Local disks: a hidden temp file in the same directory, then ``rename`` (atomic on POSIX).
    Other filesystems: one ``pipe_file`` (object stores store a PUT whole or not at all).
    """
    if isinstance(fs, LocalFileSystem):
        parent, _, name = path.rpartition("/")
        fs.makedirs(parent, exist_ok=True)
        tmp = f"{parent}/.{name}.{uuid.uuid4().hex[:12]}.tmp"
        try:
            fs.pipe_file(tmp, data)
            fs.mv(tmp, path)
        except BaseException:
            if fs.exists(tmp):
                fs.rm(tmp)
            raise
    else:
        fs.pipe_file(path, data)


@dataclass(frozen=True)
class ManifestEntry:
    """One prompt row of a partition and what became of it (``status``: succeeded|cached|failed|invalid)."""

    prompt_id: str
    row: int
    request_hash: str | None
    status: str
    uris: tuple[str, ...] = ()
    prompt: str | None = None
    model: str | None = None
    size: str | None = None  # requested size ("1024x1024", or "auto")
    output_format: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "prompt_id": self.prompt_id,
            "row": self.row,
            "request_hash": self.request_hash,
            "status": self.status,
            "uris": list(self.uris),
            "prompt": self.prompt,
            "model": self.model,
            "size": self.size,
            "output_format": self.output_format,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ManifestEntry:
        return cls(
            prompt_id=str(d["prompt_id"]),
            row=int(d["row"]),
            request_hash=d.get("request_hash"),
            status=str(d["status"]),
            uris=tuple(d.get("uris") or ()),
            prompt=d.get("prompt"),
            model=d.get("model"),
            size=d.get("size"),
            output_format=d.get("output_format"),
            error=d.get("error"),
        )


class ImageStore:
    """Images of one pipeline under ``{root}/images``. ``storage_options`` go to fsspec (never logged)."""

    def __init__(self, root: str, storage_options: Mapping[str, Any] | None = None) -> None:
        self.root_url = root.rstrip("/")
        fs, path = fsspec.core.url_to_fs(root, **dict(storage_options or {}))
        self.fs: fsspec.AbstractFileSystem = fs
        self.root: str = path.rstrip("/")
        self._made: set[str] = set()

    def __repr__(self) -> str:
        return f"ImageStore({self.root_url!r})"

    # paths -------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        """The URL of a store path: a plain absolute path on local disks, ``proto://...`` otherwise."""
        if isinstance(self.fs, LocalFileSystem):
            return path
        return str(self.fs.unstrip_protocol(path))

    def path_of(self, url: str) -> str:
        """Inverse of ``url``: the filesystem path of a store URL."""
        return str(self.fs._strip_protocol(url))

    def partition_dir(self, partition_key: str | None) -> str:
        return f"{self.root}/images/{partition_dir_name(partition_key)}"

    def image_path(
        self, partition_key: str | None, prompt_id: str, request_hash: str, index: int, ext: str
    ) -> str:
        """``{root}/images/{partition}/{prompt_id}-{request_hash}-{i}.{ext}`` (components sanitised)."""
        name = f"{sanitize_id(prompt_id)}-{request_hash}-{int(index)}.{sanitize_id(ext)}"
        return f"{self.partition_dir(partition_key)}/{name}"

    # images ------------------------------------------------------------------------------
    def write_image(
        self, partition_key: str | None, prompt_id: str, request_hash: str, index: int, ext: str, data: bytes
    ) -> str:
        """Write one image atomically; returns its URL."""
        path = self.image_path(partition_key, prompt_id, request_hash, index, ext)
        write_atomic(self.fs, path, data)
        return self.url(path)

    def existing(self, partition_key: str | None) -> dict[str, list[str]]:
        """Images already in the partition: ``{request_hash: [url, ...]}`` (urls ordered by index).

        One directory listing; temp files, the manifest and the contact sheet are ignored.
        """
        directory = self.partition_dir(partition_key)
        self.fs.invalidate_cache(directory)
        try:
            names = self.fs.ls(directory, detail=False)
        except FileNotFoundError:
            return {}
        found: dict[str, list[tuple[int, str]]] = {}
        for full in names:
            m = IMAGE_NAME.match(str(full).rsplit("/", 1)[-1])
            if m:
                found.setdefault(m["hash"], []).append((int(m["index"]), self.url(str(full))))
        return {h: [u for _, u in sorted(items)] for h, items in found.items()}

    def read(self, url: str) -> bytes:
        return bytes(self.fs.cat_file(self.path_of(url)))

    # manifest ----------------------------------------------------------------------------
    def manifest_path(self, partition_key: str | None) -> str:
        return f"{self.partition_dir(partition_key)}/{MANIFEST_NAME}"

    def write_manifest(
        self, partition_key: str | None, entries: Sequence[ManifestEntry], *, run_id: str
    ) -> str:
        """Replace the partition's manifest (JSON, atomically); returns its URL."""
        doc = {
            "partition_key": partition_key,
            "run_id": run_id,
            "updated_at": dt.datetime.now(dt.timezone.utc).isoformat(),
            "entries": [e.to_json() for e in sorted(entries, key=lambda e: e.row)],
        }
        path = self.manifest_path(partition_key)
        write_atomic(self.fs, path, json.dumps(doc, indent=1).encode())
        return self.url(path)

    def read_manifest(self, partition_key: str | None) -> list[ManifestEntry] | None:
        """The partition's manifest entries, or None when it has none yet."""
        path = self.manifest_path(partition_key)
        try:
            raw = self.fs.cat_file(path)
        except FileNotFoundError:
            return None
        return [ManifestEntry.from_json(e) for e in json.loads(raw)["entries"]]

    def write_contact_sheet(self, partition_key: str | None, png: bytes) -> str:
        path = f"{self.partition_dir(partition_key)}/{CONTACT_SHEET_NAME}"
        write_atomic(self.fs, path, png)
        return self.url(path)

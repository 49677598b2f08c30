"""The usage ledger: one Parquet row per request outcome, under ``{root}/usage/``.

Layout: ``{root}/usage/partition_key={key}/{run_id}-{seq:05d}.parquet``, hive-partitioned (the key
URI-encoded, so ``/`` or ``..`` in a key stay inside one directory name). Parquet files are
immutable: every run writes new files, in batches as it goes, so a crash loses at most the rows
of the current batch (``batch_rows`` rows or ``flush_s`` seconds). Images are written before their
ledger rows, so a lost row never means a lost image: ``reconcile`` finds such images.

Columns (see docs/design.md "Ledger row"): request_id, run_id, partition_key, prompt_id, provider,
model, size, quality, n, status (succeeded|failed|cached|invalid), attempts, latency_s (seconds),
input_text_tokens, input_image_tokens, cached_input_tokens, output_tokens (tokens), credits,
cost_usd (decimal128(18,9), USD), cost_basis, possibly_billed, image_uris, error, created_at (UTC);
plus request_hash, row, provider_request_id, note (e.g. why a row was recovered).
"""

from __future__ import annotations

import datetime as dt
import time
import urllib.parse
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from .store import IMAGE_NAME, ImageStore, write_atomic

__all__ = [
    "LEDGER_SCHEMA",
    "STATUSES",
    "LedgerRow",
    "LedgerWriter",
    "ReconcileReport",
    "read_ledger",
    "reconcile",
]

STATUSES = ("succeeded", "failed", "cached", "invalid")
USD = pa.decimal128(18, 9)

#: The file columns (``partition_key`` lives in the hive directory name and is added on read).
_FILE_FIELDS = [
    pa.field("request_id", pa.string(), nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("prompt_id", pa.string()),
    pa.field("row", pa.int64()),
    pa.field("request_hash", pa.string()),
    pa.field("provider", pa.string()),
    pa.field("model", pa.string()),
    pa.field("size", pa.string()),
    pa.field("quality", pa.string()),
    pa.field("n", pa.int32()),
    pa.field("status", pa.string(), nullable=False),
    pa.field("attempts", pa.int32()),
    pa.field("latency_s", pa.float64()),
    pa.field("input_text_tokens", pa.int64()),
    pa.field("input_image_tokens", pa.int64()),
    pa.field("cached_input_tokens", pa.int64()),
    pa.field("output_tokens", pa.int64()),
    pa.field("credits", USD),
    pa.field("cost_usd", USD),
    pa.field("cost_basis", pa.string()),
    pa.field("possibly_billed", pa.bool_()),
    pa.field("provider_request_id", pa.string()),
    pa.field("image_uris", pa.list_(pa.string())),
    pa.field("error", pa.string()),
    pa.field("note", pa.string()),
    pa.field("created_at", pa.timestamp("us", tz="UTC")),
]
FILE_SCHEMA = pa.schema(_FILE_FIELDS)
#: The schema read back: the file columns plus ``partition_key``.
LEDGER_SCHEMA = pa.schema([*_FILE_FIELDS, pa.field("partition_key", pa.string())])
_PARTITIONING = ds.partitioning(pa.schema([pa.field("partition_key", pa.string())]), flavor="hive")
_Q9 = Decimal("0.000000001")


@dataclass
class LedgerRow:
    """One request outcome. Money in USD as ``Decimal``; tokens as ints; latency in seconds."""

    run_id: str
    partition_key: str
    prompt_id: str
    status: str
    provider: str
    model: str | None = None
    size: str | None = None
    quality: str | None = None
    n: int | None = None
    row: int | None = None
    request_hash: str | None = None
    attempts: int = 0
    latency_s: float = 0.0
    input_text_tokens: int = 0
    input_image_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    credits: Decimal | None = None
    cost_usd: Decimal = Decimal(0)
    cost_basis: str | None = None
    possibly_billed: bool = False
    provider_request_id: str | None = None
    image_uris: Sequence[str] = ()
    error: str | None = None
    note: str | None = None
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    request_id: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"ledger status must be one of {STATUSES}, not {self.status!r}")
        if not self.request_id:
            # Unique per outcome; stable for (run, partition, prompt, hash) so a retried write dedupes.
            self.request_id = str(
                uuid.uuid5(
                    uuid.NAMESPACE_URL,
                    f"imggen:{self.run_id}:{self.partition_key}:{self.prompt_id}:{self.row}:{self.request_hash}",
                )
            )

    def to_record(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "run_id": self.run_id,
            "prompt_id": self.prompt_id,
            "row": self.row,
            "request_hash": self.request_hash,
            "provider": self.provider,
            "model": self.model,
            "size": self.size,
            "quality": self.quality,
            "n": self.n,
            "status": self.status,
            "attempts": self.attempts,
            "latency_s": float(self.latency_s),
            "input_text_tokens": self.input_text_tokens,
            "input_image_tokens": self.input_image_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "output_tokens": self.output_tokens,
            "credits": None if self.credits is None else Decimal(self.credits).quantize(_Q9),
            "cost_usd": Decimal(self.cost_usd).quantize(_Q9),
            "cost_basis": self.cost_basis,
            "possibly_billed": self.possibly_billed,
            "provider_request_id": self.provider_request_id,
            "image_uris": list(self.image_uris),
            "error": self.error,
            "note": self.note,
            "created_at": self.created_at,
        }


def _partition_segment(partition_key: str) -> str:
    return "partition_key=" + urllib.parse.quote(partition_key, safe="")


class LedgerWriter:
    """Buffers ledger rows and writes them as new Parquet files, batch by batch.

    Use as a context manager (the last batch is written on exit, also after an error). A batch is
    written when it holds ``batch_rows`` rows or its oldest row is ``flush_s`` seconds old.
    """

    def __init__(
        self,
        root: str,
        run_id: str,
        *,
        storage_options: Mapping[str, Any] | None = None,
        batch_rows: int = 64,
        flush_s: float = 5.0,
    ) -> None:
        fs, path = fsspec.core.url_to_fs(root, **dict(storage_options or {}))
        self.fs: fsspec.AbstractFileSystem = fs
        self.dir = f"{path.rstrip('/')}/usage"
        self.run_id = run_id
        self.batch_rows = batch_rows
        self.flush_s = flush_s
        self._buffer: list[LedgerRow] = []
        self._oldest = 0.0
        self._seq = 0
        self.files: list[str] = []
        self.rows_written = 0

    def __enter__(self) -> LedgerWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()

    def add(self, row: LedgerRow) -> None:
        if not self._buffer:
            self._oldest = time.monotonic()
        self._buffer.append(row)
        if len(self._buffer) >= self.batch_rows or time.monotonic() - self._oldest >= self.flush_s:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows: one new file per partition key in the batch."""
        if not self._buffer:
            return
        by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in self._buffer:
            by_key[r.partition_key].append(r.to_record())
        for key, records in by_key.items():
            table = pa.Table.from_pylist(records, schema=FILE_SCHEMA)
            sink = pa.BufferOutputStream()
            pq.write_table(table, sink, compression="zstd")
            path = f"{self.dir}/{_partition_segment(key)}/{self.run_id}-{self._seq:05d}.parquet"
            self._seq += 1
            write_atomic(self.fs, path, sink.getvalue().to_pybytes())
            self.files.append(path)
        self.rows_written += len(self._buffer)
        self._buffer.clear()


def ledger_dataset(root: str, storage_options: Mapping[str, Any] | None = None) -> ds.Dataset | None:
    """The ledger as a ``pyarrow.dataset.Dataset`` (None when nothing was written yet)."""
    fs, path = fsspec.core.url_to_fs(root, **dict(storage_options or {}))
    usage = f"{path.rstrip('/')}/usage"
    fs.invalidate_cache(usage)
    if not fs.exists(usage):
        return None
    files = [p for p in fs.find(usage) if p.endswith(".parquet") and not p.rsplit("/", 1)[-1].startswith(".")]
    if not files:
        return None
    return ds.dataset(
        files,
        schema=LEDGER_SCHEMA,
        format="parquet",
        filesystem=fs,
        partitioning=_PARTITIONING,
        partition_base_dir=usage,
    )


def read_ledger(
    root: str,
    storage_options: Mapping[str, Any] | None = None,
    *,
    filter: ds.Expression | None = None,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """Read the whole ledger (or a filtered part) with ``pyarrow.dataset``; empty table if none."""
    dataset = ledger_dataset(root, storage_options)
    if dataset is None:
        empty = LEDGER_SCHEMA.empty_table()
        return empty.select(list(columns)) if columns else empty
    return dataset.to_table(filter=filter, columns=list(columns) if columns else None)


@dataclass
class ReconcileReport:
    """What ``reconcile`` found. Money in USD (``Decimal``)."""

    rows: int
    paid_rows: int  # rows with cost_usd > 0 or possibly_billed
    paid_usd: Decimal
    duplicate_request_ids: list[str]
    #: succeeded rows whose image files are missing from the store
    missing_images: list[str]
    #: images in the store that no succeeded ledger row names (their row was lost in a crash)
    unledgered_images: list[str]

    @property
    def ok(self) -> bool:
        return not (self.duplicate_request_ids or self.missing_images or self.unledgered_images)


def reconcile(
    root: str,
    storage_options: Mapping[str, Any] | None = None,
    *,
    partition_keys: Iterable[str] | None = None,
) -> ReconcileReport:
    """Check that every paid call is in the ledger exactly once and matches the image store.

    Each outcome has a unique ``request_id``; succeeded rows name their image URLs, and every image
    in the store under ``{root}/images`` must be named by one succeeded row.
    """
    table = read_ledger(root, storage_options)
    if partition_keys is not None:
        keys = list(partition_keys)
        mask = pa.array([k in keys for k in table.column("partition_key").to_pylist()])
        table = table.filter(mask)
    ids = table.column("request_id").to_pylist()
    seen: set[str] = set()
    dupes = sorted({i for i in ids if i in seen or seen.add(i)})  # type: ignore[func-returns-value]
    status = table.column("status").to_pylist()
    costs = table.column("cost_usd").to_pylist()
    billed = table.column("possibly_billed").to_pylist()
    uris = table.column("image_uris").to_pylist()
    paid = [i for i in range(len(ids)) if (costs[i] or 0) > 0 or billed[i]]
    named: set[str] = set()
    for i in range(len(ids)):
        if status[i] == "succeeded":
            named.update(uris[i] or ())
    store = ImageStore(root, storage_options)
    missing = sorted(u for u in named if not store.fs.exists(store.path_of(u)))
    images_dir = f"{store.root}/images"
    store.fs.invalidate_cache(images_dir)
    present: set[str] = set()
    if store.fs.exists(images_dir):
        for p in store.fs.find(images_dir):
            if IMAGE_NAME.match(str(p).rsplit("/", 1)[-1]):
                present.add(store.url(str(p)))
    if partition_keys is not None:
        dirs = {store.partition_dir(k) for k in keys}
        present = {u for u in present if store.path_of(u).rsplit("/", 1)[0] in dirs}
    return ReconcileReport(
        rows=len(ids),
        paid_rows=len(paid),
        paid_usd=sum((Decimal(costs[i] or 0) for i in paid), Decimal(0)),
        duplicate_request_ids=dupes,
        missing_images=missing,
        unledgered_images=sorted(present - named),
    )

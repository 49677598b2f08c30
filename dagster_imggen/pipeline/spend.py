"""The spend table: the usage ledger summed by day, provider, model and partition.

Written as Parquet to ``{root}/spend/spend.parquet`` (replaced atomically each time). Columns:
``day`` (date, UTC), ``provider``, ``model``, ``partition_key``, ``requests``, ``succeeded``,
``failed``, ``cached``, ``invalid``, ``images``, ``input_tokens``, ``output_tokens``,
``cost_usd`` (decimal128(38,9), USD).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .ledger import read_ledger
from .store import write_atomic

__all__ = ["SPEND_KEYS", "SpendSummary", "build_spend_table", "summarize", "write_spend_table"]

SPEND_KEYS = ("day", "provider", "model", "partition_key")
_STATUSES = ("succeeded", "failed", "cached", "invalid")


def build_spend_table(ledger: pa.Table) -> pa.Table:
    """Group ledger rows by ``SPEND_KEYS``; sums of requests, outcomes, images, tokens and USD."""
    n = ledger.num_rows
    status = ledger.column("status")
    cols: dict[str, Any] = {
        "day": pc.cast(pc.cast(ledger.column("created_at"), pa.timestamp("us", tz="UTC")), pa.date32()),
        "provider": ledger.column("provider"),
        "model": ledger.column("model"),
        "partition_key": ledger.column("partition_key"),
        "requests": pa.array([1] * n, pa.int64()),
        "images": pc.if_else(
            pc.equal(status, "succeeded"),
            pc.fill_null(pc.list_value_length(ledger.column("image_uris")), 0),
            0,
        ),
        "input_tokens": pc.add(
            pc.fill_null(ledger.column("input_text_tokens"), 0),
            pc.fill_null(ledger.column("input_image_tokens"), 0),
        ),
        "output_tokens": pc.fill_null(ledger.column("output_tokens"), 0),
        "cost_usd": pc.fill_null(
            ledger.column("cost_usd"), pa.scalar(Decimal(0), ledger.schema.field("cost_usd").type)
        ),
    }
    for s in _STATUSES:
        cols[s] = pc.cast(pc.equal(status, s), pa.int64())
    flat = pa.table(cols)
    sums = ["requests", *_STATUSES, "images", "input_tokens", "output_tokens", "cost_usd"]
    grouped = flat.group_by(list(SPEND_KEYS), use_threads=False).aggregate([(c, "sum") for c in sums])
    grouped = grouped.rename_columns([c.removesuffix("_sum") for c in grouped.column_names])
    out = grouped.select([*SPEND_KEYS, *sums])
    out = out.set_column(
        out.column_names.index("cost_usd"), "cost_usd", pc.cast(out.column("cost_usd"), pa.decimal128(38, 9))
    )
    return out.sort_by([(k, "ascending") for k in SPEND_KEYS])


@dataclass(frozen=True)
class SpendSummary:
    """Totals of a spend table. USD as ``Decimal``."""

    total_usd: Decimal
    images: int
    failed: int
    cached: int
    requests: int

    @property
    def usd_per_image(self) -> Decimal:
        return (self.total_usd / self.images).quantize(Decimal("0.000001")) if self.images else Decimal(0)


def summarize(spend: pa.Table) -> SpendSummary:
    def total(col: str) -> Any:
        return pc.sum(spend.column(col)).as_py() if spend.num_rows else 0

    return SpendSummary(
        total_usd=Decimal(total("cost_usd") or 0),
        images=int(total("images") or 0),
        failed=int((total("failed") or 0) + (total("invalid") or 0)),
        cached=int(total("cached") or 0),
        requests=int(total("requests") or 0),
    )


def write_spend_table(root: str, storage_options: Mapping[str, Any] | None = None) -> tuple[pa.Table, str]:
    """Read the whole ledger under ``root``, build the spend table, write it; returns (table, URL)."""
    spend = build_spend_table(read_ledger(root, storage_options))
    fs, path = fsspec.core.url_to_fs(root, **dict(storage_options or {}))
    target = f"{path.rstrip('/')}/spend/spend.parquet"
    sink = pa.BufferOutputStream()
    pq.write_table(spend, sink)
    write_atomic(fs, target, sink.getvalue().to_pybytes())
    from fsspec.implementations.local import LocalFileSystem

    return spend, target if isinstance(fs, LocalFileSystem) else str(fs.unstrip_protocol(target))

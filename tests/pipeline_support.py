"""Shared helpers of the pipeline tests (tests/test_pipeline_*.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from dagster_imggen.pipeline import ImagePipeline
from dagster_imggen.providers.local import LocalImageResource
from dagster_imggen.request import ImageRequest
from dagster_imggen.result import ImageResult

REPO = Path(__file__).resolve().parent.parent
PARTIPROMPTS = (REPO / ".." / "shared" / "data" / "PartiPrompts.tsv").resolve()

_LOCK = threading.Lock()
#: Requests handed to a provider through CountingLocalResource.generate_many, by test-chosen tag.
CALLS: dict[str, list[str]] = {}


class CountingLocalResource(LocalImageResource):
    """The local provider, counting every request it is given (under ``counter``) before sending."""

    counter: str = "default"

    def generate_many(self, requests: Iterable[ImageRequest]) -> Iterator[ImageResult]:
        def counted() -> Iterator[ImageRequest]:
            for request in requests:
                with _LOCK:
                    CALLS.setdefault(self.counter, []).append(request.prompt)
                yield request

        return super().generate_many(counted())


def range_tags(keys: Sequence[str]) -> dict[str, str]:
    """Run tags of a single-run backfill over ``keys[0]...keys[-1]``."""
    return {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}


def materialize_range(
    pipeline: ImagePipeline,
    keys: Sequence[str],
    resource: Any,
    instance: dg.DagsterInstance,
    *,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """One run over the partition range ``keys[0]...keys[-1]``: images, spend and every check."""
    tags = range_tags(keys) if len(keys) > 1 else {}
    return dg.materialize(
        [*pipeline.assets, *pipeline.asset_checks],
        instance=instance,
        resources={"image_provider": resource},
        partition_key=keys[0] if len(keys) == 1 else None,
        tags=tags,
        raise_on_error=raise_on_error,
    )


def partition_metadata(instance: dg.DagsterInstance, asset: str, key: str) -> dict[str, Any]:
    """The latest materialization metadata of one partition, as plain values."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[key]), limit=1
    ).records
    assert records, f"no materialization of {asset} partition {key}"
    mat = records[0].asset_materialization
    assert mat is not None
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}

"""Done-means (4): a single-run range backfill of 3 partitions writes each partition's own figures."""

from __future__ import annotations

import uuid
from decimal import Decimal

import dagster as dg
import fsspec
import pyarrow.compute as pc
from pipeline_support import CountingLocalResource, materialize_range, partition_metadata

from dagster_imggen.pipeline import PromptSource, build_image_generation_assets, read_ledger

# partition -> (valid prompts, invalid rows): every partition has different figures
LAYOUT = {"Alpha": (2, 0), "Beta": (3, 1), "Gamma": (5, 2)}


def _table() -> str:
    url = f"memory://pipeline-backfill-{uuid.uuid4().hex[:8]}/prompts.tsv"
    lines = ["Prompt\tCategory\tSize"]
    for key, (ok, bad) in LAYOUT.items():
        lines += [f"{key} prompt {i}\t{key}\t{'1024x1536' if i % 2 else ''}" for i in range(ok)]
        lines += [f"{key} bad prompt {i}\t{key}\t999x999" for i in range(bad)]
    with fsspec.open(url, "w") as f:
        f.write("\n".join(lines))
    return url


def test_single_run_range_backfill_keeps_each_partitions_figures(tmp_path) -> None:
    out = str(tmp_path / "out")
    pipeline = build_image_generation_assets(
        prompts=PromptSource(url=_table(), partition_column="Category", override_columns={"size": "Size"}),
        output_root=out,
        defaults={"model": "gpt-image-2", "size": "1024x1024", "quality": "low"},
        max_failure_share=0.5,
    )
    instance = dg.DagsterInstance.ephemeral()
    result = materialize_range(pipeline, list(LAYOUT), CountingLocalResource(counter="backfill"), instance)
    assert result.success
    assert len(instance.get_run_records()) == 1  # one run for the whole range

    ledger = read_ledger(out)
    seen_costs = set()
    for key, (ok, bad) in LAYOUT.items():
        meta = partition_metadata(instance, "generated_images", key)
        assert meta["imggen/images"] == ok, key
        assert meta["imggen/failed"] == bad and meta["imggen/invalid"] == bad, key
        assert meta["imggen/rows"] == ok + bad, key
        assert meta["imggen/cached"] == 0
        rows = ledger.filter(pc.equal(ledger.column("partition_key"), key))
        cost = sum(rows.column("cost_usd").to_pylist(), Decimal(0))
        assert meta["imggen/cost_usd_exact"] == str(cost), key
        assert meta["imggen/cost_usd"] == float(cost) > 0
        assert meta["local.gpt-image-2.output_tokens"] == sum(rows.column("output_tokens").to_pylist())
        assert key in meta["imggen/preview"] and all(
            k not in meta["imggen/preview"] for k in LAYOUT if k != key
        )
        assert (
            meta["imggen/contact_sheet"].endswith("_contact_sheet.png")
            and f"/{key}/" in meta["imggen/contact_sheet"]
        )
        seen_costs.add(meta["imggen/cost_usd"])
        invalid = rows.filter(pc.equal(rows.column("status"), "invalid")).to_pylist()
        assert len(invalid) == bad
        assert all("size" in r["error"] and r["error"].startswith(f"row {r['row']}") for r in invalid)
    assert len(seen_costs) == 3

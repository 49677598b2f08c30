"""Done-means (1): all 12 PartiPrompts categories (1,632 prompts) through the local provider, twice.

The second materialisation must make zero provider calls, write ``cached`` rows and leave the
spend unchanged. Needs ``../shared/data/PartiPrompts.tsv`` (skipped, saying where, when absent).
"""

from __future__ import annotations

import time
from decimal import Decimal

import dagster as dg
import pyarrow.compute as pc
import pytest
from PIL import Image
from pipeline_support import CALLS, PARTIPROMPTS, CountingLocalResource, materialize_range, partition_metadata

from dagster_imggen.cost import estimate_cost
from dagster_imggen.pipeline import PromptSource, build_image_generation_assets, read_ledger
from dagster_imggen.pipeline.prompts import build_request, read_prompt_table, rows_of
from dagster_imggen.pipeline.spend import build_spend_table, summarize
from dagster_imggen.request import ImageRequest

pytestmark = [pytest.mark.partiprompts, pytest.mark.slow]

DEFAULTS = {"model": "gpt-image-2", "size": "1024x1024", "quality": "low", "output_format": "jpeg"}


@pytest.fixture(scope="module")
def partiprompts() -> str:
    if not PARTIPROMPTS.exists():
        pytest.skip(f"PartiPrompts.tsv not found at {PARTIPROMPTS}")
    return str(PARTIPROMPTS)


def test_partiprompts_all_categories_then_zero_calls(tmp_path, partiprompts: str) -> None:
    source = PromptSource(url=partiprompts, partition_column="Category")
    out = str(tmp_path / "out")
    pipeline = build_image_generation_assets(prompts=source, output_root=out, defaults=DEFAULTS)
    assert pipeline.partitions_def is not None
    keys = pipeline.partitions_def.get_partition_keys()
    assert len(keys) == 12
    instance = dg.DagsterInstance.ephemeral()
    resource = CountingLocalResource(counter="partiprompts", max_concurrency=8)

    started = time.monotonic()
    first = materialize_range(pipeline, keys, resource, instance)
    elapsed = time.monotonic() - started
    print(f"\nPartiPrompts first materialisation: 1,632 prompts in {elapsed:.1f} s")
    assert first.success
    assert len(CALLS["partiprompts"]) == 1632

    # 1,632 images, each of the requested size, one per prompt
    store = pipeline.store
    urls = [u for k in keys for e in store.read_manifest(k) or [] for u in e.uris]
    assert len(urls) == len(set(urls)) == 1632
    for url in urls[::97]:  # the size check below covers every file; sample here to read headers ourselves
        with Image.open(store.path_of(url)) as im:
            assert im.size == (1024, 1024) and im.format == "JPEG"

    ledger = read_ledger(out)
    assert ledger.num_rows == 1632
    assert set(ledger.column("status").to_pylist()) == {"succeeded"}
    assert len(set(ledger.column("prompt_id").to_pylist())) == 1632

    # spend total == sum of the cost engine's estimates for the same requests
    table = read_prompt_table(source)
    estimates = Decimal(0)
    for key in keys:
        for row in rows_of(table, source, partition_key=key, filter_column="Category"):
            request = build_request(row, DEFAULTS, "local")
            assert isinstance(request, ImageRequest)
            estimates += estimate_cost(request, "local").usd
    spend = summarize(build_spend_table(ledger))
    assert spend.total_usd == estimates > 0
    assert spend.images == 1632

    evaluations = first.get_asset_check_evaluations()
    assert len(evaluations) == 5
    assert all(e.passed for e in evaluations), [(e.check_name, e.description) for e in evaluations]
    meta = partition_metadata(instance, "generated_images", "Abstract")
    assert meta["imggen/images"] == 51 and meta["imggen/cached"] == 0

    # second materialisation: zero provider calls, cached rows, spend unchanged
    CALLS["partiprompts"].clear()
    second = materialize_range(pipeline, keys, resource, instance)
    assert second.success
    assert CALLS.get("partiprompts") == []
    ledger2 = read_ledger(out)
    assert ledger2.num_rows == 3264
    cached = ledger2.filter(pc.equal(ledger2.column("status"), "cached"))
    assert cached.num_rows == 1632
    assert set(cached.column("cost_usd").to_pylist()) == {Decimal(0)}
    assert summarize(build_spend_table(ledger2)).total_usd == spend.total_usd
    assert all(e.passed for e in second.get_asset_check_evaluations())
    meta2 = partition_metadata(instance, "generated_images", "Abstract")
    assert meta2["imggen/images"] == 0 and meta2["imggen/cached"] == 51 and meta2["imggen/cost_usd"] == 0.0

"""Partitioning modes (daily by column, daily by file, dynamic with its sensor, none), streaming memory."""

from __future__ import annotations

import tracemalloc
import uuid

import dagster as dg
import fsspec
import pytest
from pipeline_support import CALLS, CountingLocalResource, materialize_range

from dagster_imggen.pipeline import PromptSource, build_image_generation_assets, read_ledger

DEFAULTS = {"model": "gpt-image-2", "size": "1024x1024", "quality": "low", "output_format": "jpeg"}


def _root(tag: str) -> str:
    return f"memory://pipeline-{tag}-{uuid.uuid4().hex[:8]}"


def _write(url: str, text: str) -> None:
    with fsspec.open(url, "w") as f:
        f.write(text)


def test_daily_by_date_column_and_schedule(tmp_path) -> None:
    url = f"{_root('daily')}/prompts.csv"
    _write(url, "Prompt,Day\na sunrise,2026-11-19\na noon sky,2026-11-20\na dusk sky,2026-11-20\n")
    pipeline = build_image_generation_assets(
        prompts=PromptSource(url=url, date_column="Day"),
        output_root=str(tmp_path / "out"),
        partitioning="daily",
        defaults=DEFAULTS,
    )
    assert isinstance(pipeline.partitions_def, dg.DailyPartitionsDefinition)
    assert pipeline.partitions_def.start.strftime("%Y-%m-%d") == "2026-11-19"  # earliest date in the table
    [schedule] = pipeline.schedules
    assert schedule.cron_schedule == "0 0 * * *"
    dg.Definitions.validate_loadable(pipeline.to_definitions({"image_provider": CountingLocalResource()}))

    instance = dg.DagsterInstance.ephemeral()
    result = materialize_range(pipeline, ["2026-11-20"], CountingLocalResource(counter="daily"), instance)
    assert result.success
    assert sorted(CALLS["daily"]) == ["a dusk sky", "a noon sky"]
    assert set(read_ledger(str(tmp_path / "out")).column("partition_key").to_pylist()) == {"2026-11-20"}


def test_daily_by_file_reads_that_days_file(tmp_path) -> None:
    root = _root("dailyfile")
    _write(f"{root}/2026-11-20.jsonl", '{"Prompt": "a file for the twentieth"}\n')
    pipeline = build_image_generation_assets(
        prompts=PromptSource(url=f"{root}/{{date}}.jsonl"),
        output_root=str(tmp_path / "out"),
        partitioning="daily",
        daily_start_date="2026-11-19",
        defaults=DEFAULTS,
    )
    instance = dg.DagsterInstance.ephemeral()
    resource = CountingLocalResource(counter="dailyfile")
    assert materialize_range(pipeline, ["2026-11-19", "2026-11-20"], resource, instance).success
    assert CALLS["dailyfile"] == ["a file for the twentieth"]  # the 19th has no file: no rows, no error


def test_dynamic_sensor_adds_a_partition_per_new_file_and_requests_its_run(tmp_path) -> None:
    folder = f"{_root('dynamic')}/drop"
    _write(f"{folder}/batch-1.csv", "Prompt\na red kite\na green kite\n")
    _write(f"{folder}/notes.txt", "not a prompt table")
    pipeline = build_image_generation_assets(
        prompts=PromptSource(url=folder),
        output_root=str(tmp_path / "out"),
        partitioning="dynamic",
        prompt_folder=folder,
        defaults=DEFAULTS,
    )
    [sensor] = pipeline.sensors
    pdef = pipeline.partitions_def
    assert isinstance(pdef, dg.DynamicPartitionsDefinition) and pdef.name
    instance = dg.DagsterInstance.ephemeral()

    result = sensor(dg.build_sensor_context(instance=instance))
    assert isinstance(result, dg.SensorResult)
    assert [r.partition_key for r in result.run_requests or []] == ["batch-1.csv"]
    [add] = result.dynamic_partitions_requests or []
    assert list(add.partition_keys) == ["batch-1.csv"]
    instance.add_dynamic_partitions(pdef.name, list(add.partition_keys))  # what the daemon does

    run = materialize_range(pipeline, ["batch-1.csv"], CountingLocalResource(counter="dynamic"), instance)
    assert run.success
    assert sorted(CALLS["dynamic"]) == ["a green kite", "a red kite"]

    _write(f"{folder}/batch-2.tsv", "Prompt\na blue kite\n")
    again = sensor(dg.build_sensor_context(instance=instance))
    assert [r.partition_key for r in again.run_requests or []] == ["batch-2.tsv"]


def test_unpartitioned_pipeline(tmp_path) -> None:
    url = f"{_root('none')}/prompts.parquet"
    import pyarrow as pa
    import pyarrow.parquet as pq

    with fsspec.open(url, "wb") as f:
        pq.write_table(pa.table({"text": ["one lamp", "two lamps"], "pid": ["lamp-1", "lamp-2"]}), f)
    pipeline = build_image_generation_assets(
        prompts=PromptSource(url=url, prompt_column="text", id_column="pid"),
        output_root=str(tmp_path / "out"),
        partitioning="none",
        defaults=DEFAULTS,
    )
    assert pipeline.partitions_def is None
    result = dg.materialize(
        [*pipeline.assets, *pipeline.asset_checks],
        instance=dg.DagsterInstance.ephemeral(),
        resources={"image_provider": CountingLocalResource(counter="none")},
    )
    assert result.success
    names = sorted(p.name for p in (tmp_path / "out" / "images" / "__all__").glob("*.jpg"))
    assert [n.split("-")[0] for n in names] == ["lamp", "lamp"] and names[0].startswith("lamp-1-")


def test_bad_arguments_are_clear() -> None:
    source = PromptSource(url="memory://nowhere/prompts.csv")
    with pytest.raises(ValueError, match="partition_column"):
        build_image_generation_assets(prompts=source, output_root="memory://o")
    with pytest.raises(ValueError, match="prompt_folder"):
        build_image_generation_assets(prompts=source, output_root="memory://o", partitioning="dynamic")
    with pytest.raises(ValueError, match="max_failure_share"):
        build_image_generation_assets(
            prompts=source, output_root="memory://o", partitioning="none", max_failure_share=2
        )


def _peak_bytes(tmp_path, count: int) -> int:
    url = f"{_root('memory')}/prompts.csv"
    _write(url, "Prompt\n" + "\n".join(f"a large poster number {i}" for i in range(count)))
    pipeline = build_image_generation_assets(
        prompts=PromptSource(url=url),
        output_root=str(tmp_path / f"out-{count}"),
        partitioning="none",
        defaults={**DEFAULTS, "size": "1536x1024", "output_format": "png"},
    )
    tracemalloc.start()
    try:
        dg.materialize(
            pipeline.assets[:1],
            instance=dg.DagsterInstance.ephemeral(),
            resources={"image_provider": CountingLocalResource(counter="memory", max_concurrency=4)},
        )
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_images_are_streamed_not_held(tmp_path) -> None:
    """Peak Python memory must not grow with the number of images (each 1536x1024 PNG is ~0.5 MB+)."""
    _peak_bytes(tmp_path, 2)  # warm-up: first-use imports and caches
    small = _peak_bytes(tmp_path, 20)
    large = _peak_bytes(tmp_path, 200)
    image_bytes = sum(
        p.stat().st_size for p in (tmp_path / "out-200").rglob("*.png") if "_contact" not in p.name
    )
    # Holding the 180 extra images would add about 0.9 x image_bytes to the peak.
    assert large - small < image_bytes / 2, (small, large, image_bytes)


def test_duplicate_rows_are_requested_once_and_bad_reference_images_are_invalid(tmp_path) -> None:
    url = f"{_root('dups')}/prompts.csv"
    _write(url, "Prompt,Ref\na twin star,\na twin star,\nan edited star,memory://nowhere/missing.png\n")
    pipeline = build_image_generation_assets(
        prompts=PromptSource(url=url, override_columns={"images": "Ref"}),
        output_root=str(tmp_path / "out"),
        partitioning="none",
        defaults=DEFAULTS,
        max_failure_share=0.5,
    )
    result = dg.materialize(
        [*pipeline.assets, *pipeline.asset_checks],
        instance=dg.DagsterInstance.ephemeral(),
        resources={"image_provider": CountingLocalResource(counter="dups", max_concurrency=1)},
    )
    assert result.success
    assert CALLS["dups"] == ["a twin star"]
    rows = sorted(read_ledger(str(tmp_path / "out")).to_pylist(), key=lambda r: r["row"])
    assert [r["status"] for r in rows] == ["succeeded", "cached", "invalid"]
    assert rows[1]["image_uris"] == rows[0]["image_uris"] and rows[1]["cost_usd"] == 0
    assert rows[2]["error"].startswith("row 2") and "images" in rows[2]["error"]

"""A fully cached re-run keeps each partition's contact sheet instead of drawing it again; a
partition whose shown images change gets a new one (benchmarks/README.md, benchmark 4)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pipeline_support import materialize_range

from dagster_imggen.pipeline import PromptSource, build_image_generation_assets
from dagster_imggen.providers.local import LocalImageResource


def _write_table(path: Path, rows: list[tuple[str, str]]) -> None:
    path.write_text("Prompt,Category\n" + "".join(f"{p},{c}\n" for p, c in rows))


def test_cached_rerun_keeps_the_contact_sheet_and_a_changed_partition_redraws_it(tmp_path: Path) -> None:
    table = tmp_path / "prompts.csv"
    rows = [("a red kite", "Sky"), ("a blue kite", "Sky"), ("a green boat", "Sea")]
    _write_table(table, rows)
    pipeline = build_image_generation_assets(
        prompts=PromptSource(url=str(table), partition_column="Category"),
        output_root=str(tmp_path / "out"),
        provider_name="local",
        defaults={"model": "gpt-image-2", "size": "1024x1024", "quality": "low"},
    )
    store = pipeline.store
    sky = Path(store.partition_dir("Sky")) / "_contact_sheet.png"
    sea = Path(store.partition_dir("Sea")) / "_contact_sheet.png"
    instance = dg.DagsterInstance.ephemeral()

    assert materialize_range(pipeline, ["Sea", "Sky"], LocalImageResource(), instance).success
    first = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (sky, sea)}
    assert all(data.startswith(b"\x89PNG") for _, data in first.values())

    # Everything cached: both sheets are kept as they are (not rewritten).
    second = materialize_range(pipeline, ["Sea", "Sky"], LocalImageResource(), instance)
    assert second.success
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (sky, sea)} == first
    node = pipeline.images_asset.node_def.name
    sheets = [m.metadata.get("imggen/contact_sheet") for m in second.asset_materializations_for_node(node)]
    assert len(sheets) == 2 and all(s is not None for s in sheets)  # still reported on every partition

    # A new row in Sky: its sheet is drawn again (and differs); Sea's is kept.
    _write_table(table, [*rows, ("a yellow kite", "Sky")])
    assert materialize_range(pipeline, ["Sea", "Sky"], LocalImageResource(), instance).success
    assert sky.read_bytes() != first[sky][1]
    assert (sea.stat().st_mtime_ns, sea.read_bytes()) == first[sea]


def test_a_missing_or_foreign_sheet_is_drawn_again(tmp_path: Path) -> None:
    table = tmp_path / "prompts.csv"
    _write_table(table, [("a quiet harbour", "Sea"), ("a loud harbour", "Sea")])
    pipeline = build_image_generation_assets(
        prompts=PromptSource(url=str(table), partition_column="Category"),
        output_root=str(tmp_path / "out"),
        provider_name="local",
        defaults={"model": "gpt-image-2", "size": "1024x1024", "quality": "low"},
    )
    sheet = Path(pipeline.store.partition_dir("Sea")) / "_contact_sheet.png"
    instance = dg.DagsterInstance.ephemeral()
    assert materialize_range(pipeline, ["Sea"], LocalImageResource(), instance).success
    drawn = sheet.read_bytes()

    sheet.unlink()  # deleted by hand: the cached run draws it again
    assert materialize_range(pipeline, ["Sea"], LocalImageResource(), instance).success
    assert sheet.read_bytes() == drawn

    digest = sheet.with_name("_contact_sheet.sha256")
    digest.write_text("0" * 64)  # a digest of other images: never trusted
    sheet.write_bytes(b"not the sheet")
    assert materialize_range(pipeline, ["Sea"], LocalImageResource(), instance).success
    assert sheet.read_bytes() == drawn

"""Unit tests of the pipeline pieces: prompt tables, image store, ledger, spend table and checks."""

from __future__ import annotations

import io
import json
import uuid
from decimal import Decimal

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from dagster_imggen.errors import ImageRequestError
from dagster_imggen.pipeline import checks
from dagster_imggen.pipeline.ledger import LEDGER_SCHEMA, LedgerRow, LedgerWriter, read_ledger, reconcile
from dagster_imggen.pipeline.prompts import (
    InvalidRow,
    PromptSource,
    build_request,
    check_references,
    partition_values,
    read_prompt_table,
    rows_of,
    sanitize_id,
)
from dagster_imggen.pipeline.spend import build_spend_table, summarize
from dagster_imggen.pipeline.store import ImageStore, ManifestEntry
from dagster_imggen.request import ImageRequest

ROWS = [
    {"Prompt": "a red cube", "Category": "Shapes", "Size": None, "Id": "cube"},
    {"Prompt": "a blue sphere", "Category": "Shapes", "Size": "1536x1024", "Id": "../../etc/passwd"},
    {"Prompt": "a cat", "Category": "Animals", "Size": "1000x1000", "Id": "cat"},
    {"Prompt": "", "Category": "Animals", "Size": None, "Id": "empty"},
]


def _mem_root() -> str:
    return f"memory://pipeline-units-{uuid.uuid4().hex[:8]}"


def _write_table(url: str, fmt: str) -> None:
    table = pa.Table.from_pylist(ROWS)
    with fsspec.open(url, "wb") as f:
        if fmt == "parquet":
            pq.write_table(table, f)
        elif fmt == "jsonl":
            f.write("\n".join(json.dumps(r) for r in ROWS).encode())
        else:
            sep = "\t" if fmt == "tsv" else ","
            lines = [sep.join(ROWS[0])] + [
                sep.join("" if v is None else str(v) for v in r.values()) for r in ROWS
            ]
            f.write("\n".join(lines).encode())


@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet", "jsonl"])
def test_prompt_table_formats_read_the_same_rows(fmt: str) -> None:
    url = f"{_mem_root()}/prompts.{fmt}"
    _write_table(url, fmt)
    source = PromptSource(
        url=url, id_column="Id", partition_column="Category", override_columns={"size": "Size"}
    )
    table = read_prompt_table(source)
    assert partition_values(table, "Category") == ["Animals", "Shapes"]
    shapes = list(rows_of(table, source, partition_key="Shapes", filter_column="Category"))
    assert [r.fields["prompt"] for r in shapes] == ["a red cube", "a blue sphere"]
    assert shapes[0].fields == {"prompt": "a red cube"}  # an empty override keeps the default
    assert shapes[1].fields["size"] == "1536x1024"
    assert [r.row for r in shapes] == [0, 1]


def test_missing_column_names_the_column() -> None:
    url = f"{_mem_root()}/prompts.csv"
    _write_table(url, "csv")
    with pytest.raises(ImageRequestError) as err:
        read_prompt_table(PromptSource(url=url, prompt_column="Text"))
    assert err.value.field == "Text"
    assert "Text" in str(err.value) and "Prompt" in str(err.value)


def test_unknown_format_is_a_clear_error() -> None:
    with pytest.raises(ImageRequestError, match="format"):
        PromptSource(url="memory://x/prompts.xlsx").resolved_format()


def test_prompt_ids_are_sanitised_and_cannot_escape() -> None:
    for raw in ("../../etc/passwd", "..", ".", "a/b", "nul\0byte", "", "x" * 500):
        clean = sanitize_id(raw)
        assert clean and clean not in (".", "..")
        assert "/" not in clean and "\0" not in clean and not clean.startswith(".")
        assert len(clean) <= 90
    assert sanitize_id("a/b") != sanitize_id("a_b")  # no collisions from the replacement
    assert sanitize_id("cube-01.v2") == "cube-01.v2"  # safe ids pass unchanged


def test_invalid_rows_name_row_and_field() -> None:
    url = f"{_mem_root()}/prompts.parquet"
    _write_table(url, "parquet")
    source = PromptSource(url=url, id_column="Id", override_columns={"size": "Size"})
    rows = list(rows_of(read_prompt_table(source), source, partition_key="all"))
    built = [build_request(r, {"model": "gpt-image-2", "quality": "low"}, "openai") for r in rows]
    assert isinstance(built[0], ImageRequest) and built[0].size == "1024x1024"
    assert isinstance(built[1], ImageRequest) and built[1].size == "1536x1024"
    bad_size, empty = built[2], built[3]
    assert isinstance(bad_size, InvalidRow) and bad_size.field == "size" and "row 2" in bad_size.message
    assert isinstance(empty, InvalidRow) and empty.field == "prompt" and "row 3" in empty.message
    bad_n = build_request(rows[0].__class__(0, "x", "all", {"prompt": "p", "n": "many"}), {}, "openai")
    assert isinstance(bad_n, InvalidRow) and bad_n.field == "n"


def _png(w: int, h: int, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (w, h), (10, 20, 30)).save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize("key", ["../escape", "a/b", "..", "nul\0key", "Food & Beverage"])
def test_store_paths_stay_inside_the_root(tmp_path, key: str) -> None:
    store = ImageStore(str(tmp_path / "out"))
    url = store.write_image(key, "../p", "ab" * 32, 0, "png", _png(16, 16))
    images = (tmp_path / "out" / "images").resolve()
    assert images in __import__("pathlib").Path(url).resolve().parents
    assert store.existing(key) == {"ab" * 32: [url]}
    assert not [p for p in (tmp_path / "out").rglob("*.tmp")]  # atomic write left no temp file


def test_store_lookup_by_hash_and_manifest_on_memory_fs() -> None:
    store = ImageStore(_mem_root())
    h = "0123456789abcdef" * 4
    urls = [store.write_image("p", "id-1", h, i, "jpg", _png(16, 16, "JPEG")) for i in range(2)]
    assert urls[0].startswith("memory://")
    assert store.existing("p") == {h: urls}
    assert store.existing("other") == {}
    store.write_manifest(
        "p", [ManifestEntry("id-1", 0, h, "succeeded", tuple(urls), size="16x16")], run_id="r1"
    )
    [entry] = store.read_manifest("p") or []
    assert entry.uris == tuple(urls) and entry.status == "succeeded"
    assert store.read_manifest("none") is None


def _row(run: str, key: str, pid: str, status: str, usd: str = "0", uris: tuple[str, ...] = ()) -> LedgerRow:
    return LedgerRow(
        run_id=run,
        partition_key=key,
        prompt_id=pid,
        status=status,
        provider="local",
        model="gpt-image-2",
        cost_usd=Decimal(usd),
        image_uris=uris,
        request_hash=pid * 2,
        row=0,
    )


def test_ledger_batches_hive_partitions_and_decimal_roundtrip() -> None:
    root = _mem_root()
    with LedgerWriter(root, "run-a", batch_rows=2) as ledger:
        ledger.add(_row("run-a", "a/b", "p1", "succeeded", "0.012345678"))
        ledger.add(_row("run-a", "a/b", "p2", "failed"))
        assert len(ledger.files) == 1  # the first batch is on disk before the run ends
        ledger.add(_row("run-a", "..", "p3", "cached"))
    assert len(ledger.files) == 2
    table = read_ledger(root)
    assert table.schema.field("cost_usd").type == pa.decimal128(18, 9)
    assert table.schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert set(LEDGER_SCHEMA.names) <= set(table.column_names)
    by_pid = {r["prompt_id"]: r for r in table.to_pylist()}
    assert by_pid["p1"]["partition_key"] == "a/b" and by_pid["p3"]["partition_key"] == ".."
    assert by_pid["p1"]["cost_usd"] == Decimal("0.012345678")
    assert all(f.split("/usage/")[1].count("/") == 1 for f in ledger.files)  # one directory level per key


def test_ledger_rejects_unknown_status() -> None:
    with pytest.raises(ValueError, match="status"):
        _row("r", "k", "p", "done")


def test_reconcile_finds_unledgered_images_and_duplicates() -> None:
    root = _mem_root()
    store = ImageStore(root)
    paid = store.write_image("k", "p1", "aa" * 32, 0, "png", _png(16, 16))
    orphan = store.write_image("k", "p2", "bb" * 32, 0, "png", _png(16, 16))
    row = _row("r1", "k", "p1", "succeeded", "0.5", (paid,))
    with LedgerWriter(root, "r1") as ledger:
        ledger.add(row)
    report = reconcile(root)
    assert report.paid_rows == 1 and report.paid_usd == Decimal("0.5")
    assert report.unledgered_images == [orphan] and not report.ok
    with LedgerWriter(root, "r1-again") as ledger:
        ledger.add(_row("r1", "k", "p1", "succeeded", "0.5", (paid,)))  # the same outcome twice
    assert reconcile(root).duplicate_request_ids == [row.request_id]


def test_spend_table_sums_exactly_by_day_provider_model_partition() -> None:
    root = _mem_root()
    with LedgerWriter(root, "r") as ledger:
        for i in range(3):
            ledger.add(_row("r", "a", f"p{i}", "succeeded", "0.000000001", (f"memory://x/{i}.png",)))
        ledger.add(_row("r", "b", "q", "failed", "0.1"))
        ledger.add(_row("r", "b", "q2", "cached"))
    spend = build_spend_table(read_ledger(root))
    assert spend.num_rows == 2
    rows = {r["partition_key"]: r for r in spend.to_pylist()}
    assert rows["a"]["cost_usd"] == Decimal("0.000000003") and rows["a"]["images"] == 3
    assert rows["b"]["failed"] == 1 and rows["b"]["cached"] == 1 and rows["b"]["images"] == 0
    total = summarize(spend)
    assert total.total_usd == Decimal("0.100000003") and total.images == 3 and total.failed == 1


def test_file_checks_catch_wrong_size_bad_format_and_corruption() -> None:
    store = ImageStore(_mem_root())
    good = store.write_image("k", "good", "aa" * 32, 0, "png", _png(1024, 1024))
    small = store.write_image("k", "small", "bb" * 32, 0, "png", _png(512, 512))
    lying = store.write_image("k", "lying", "cc" * 32, 0, "jpg", _png(1024, 1024))  # PNG bytes, .jpg name
    broken = store.write_image("k", "broken", "dd" * 32, 0, "png", _png(1024, 1024)[:200])
    entries = [
        ManifestEntry(name, i, h * 32, "succeeded", (url,), model="gpt-image-2", size="1024x1024")
        for i, (name, h, url) in enumerate(
            [("good", "aa", good), ("small", "bb", small), ("lying", "cc", lying), ("broken", "dd", broken)]
        )
    ]
    store.write_manifest("k", entries, run_id="r")
    pixel = checks.pixel_size_check(store, ["k"])
    assert not pixel.passed and pixel.metadata["failures"] == 1  # small (broken still has its header)
    assert "small" in pixel.metadata["examples"]
    decode = checks.decode_check(store, ["k"])
    assert not decode.passed and decode.metadata["failures"] == 2
    assert "lying" in decode.metadata["examples"] and "broken" in decode.metadata["examples"]
    store.write_manifest("k", entries[:1], run_id="r")
    assert checks.pixel_size_check(store, ["k"]).passed and checks.decode_check(store, ["k"]).passed
    assert not checks.decode_check(store, ["k", "never-run"]).passed  # a partition without manifest


def test_size_rules() -> None:
    assert checks.size_rule_violation("gpt-image-2", 1024, 1536, "openai") is None
    assert "16" in (checks.size_rule_violation(None, 1000, 1000) or "")
    assert "3:1" in (checks.size_rule_violation(None, 3840, 1024) or "")
    assert checks.size_rule_violation("gpt-image-2", 768, 768, "openai") is not None  # under 655,360 pixels
    assert checks.size_rule_violation(None, 768, 768) is not None
    assert checks.size_rule_violation("gpt-image-1", 2048, 2048, "openai") is not None  # presets only


def test_failure_share_and_budget_checks() -> None:
    store = ImageStore(_mem_root())
    entries = [ManifestEntry(f"p{i}", i, None, "failed" if i < 2 else "succeeded") for i in range(10)]
    store.write_manifest("k", entries, run_id="r")
    assert checks.failure_share_check(store, ["k"], 0.25).passed
    failing = checks.failure_share_check(store, ["k"], 0.1)
    assert not failing.passed and "k" in failing.description
    assert checks.budget_check(Decimal("1.5"), Decimal("1")).passed is False
    assert checks.budget_check(Decimal("1"), Decimal("1")).passed
    assert checks.budget_check(Decimal("9"), None).passed


def test_date_column_accepts_dates_and_names_a_bad_row() -> None:
    url = f"{_mem_root()}/prompts.csv"
    with fsspec.open(url, "w") as f:
        f.write("Prompt,Day\na,2026-11-20\nb,\nc,2026-11-21T08:00:00\n")
    table = read_prompt_table(PromptSource(url=url, date_column="Day"))
    assert table.column("Day").to_pylist() == ["2026-11-20", None, "2026-11-21"]
    with fsspec.open(url, "w") as f:
        f.write("Prompt,Day\na,2026-11-20\nb,yesterday\n")
    with pytest.raises(ImageRequestError) as err:
        read_prompt_table(PromptSource(url=url, date_column="Day"))
    assert err.value.field == "Day" and err.value.row == 1


def test_bad_utf8_cell_and_repeated_id_are_invalid_rows(tmp_path) -> None:
    table = tmp_path / "prompts.csv"
    table.write_bytes(b"id,Prompt\na,fine\nb,caf\xe9\na,again\nc,also fine\n")
    source = PromptSource(url=str(table), id_column="id")
    rows = list(rows_of(read_prompt_table(source), source, partition_key="all"))
    built = [build_request(r, {"model": "gpt-image-2", "quality": "low"}, "openai") for r in rows]
    assert isinstance(built[0], ImageRequest) and isinstance(built[3], ImageRequest)
    utf8, repeated = built[1], built[2]
    assert isinstance(utf8, InvalidRow) and utf8.field == "prompt" and "UTF-8" in utf8.message
    assert utf8.message.startswith("row 1: ")
    assert isinstance(repeated, InvalidRow) and repeated.field == "id" and "row 0" in repeated.message


def test_reference_images_are_checked_from_their_headers(tmp_path) -> None:
    ok = tmp_path / "ref.png"
    ok.write_bytes(_png(1024, 1024))
    small_mask = tmp_path / "mask.png"
    small_mask.write_bytes(_png(512, 512))
    text = tmp_path / "text.png"
    text.write_bytes(b"not an image")
    gif = tmp_path / "ref.gif"
    Image.new("RGB", (16, 16)).save(gif, "GIF")
    checks_ = [
        ({"images": (str(text),)}, "images"),
        ({"images": (str(gif),)}, "images"),
        ({"images": (str(ok),), "mask": str(small_mask)}, "mask"),
    ]
    for fields, field in checks_:
        request = ImageRequest(prompt="edit", **fields)  # type: ignore[arg-type]
        with pytest.raises(ImageRequestError) as err:
            check_references(request)
        assert err.value.field == field, err.value
    check_references(ImageRequest(prompt="edit", images=(str(ok),)))

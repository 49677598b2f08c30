"""Issue 5, hostile and bad input: each gets a clear error naming the row and the field; the batch goes on.

- ``ROW_CASES`` (36 rows) sit in ONE prompt table between valid rows and run through the pipeline
  against the emulator: each must be an ``invalid`` ledger row whose ``error`` starts ``row N:`` and
  names the field, in one short line (no traceback), with nothing sent to the provider; the valid rows
  succeed in the same run.
- Table-level faults (a missing column, an unknown format) fail the run with a ``dg.Failure`` (from an ``ImageRequestError``)
  naming the column.
- A decompression bomb (tiny PNG claiming 100,000 x 100,000 pixels) is refused from its header, as a
  provider answer and as a reference image, without decoding (peak memory stays small).
- A provider response of several hundred MB is capped, both as a download and as an API answer.
- SSRF: result URLs that are not https, or whose host is (or resolves to) a private, loopback,
  link-local or otherwise non-public address, are refused before any byte is fetched when the base
  URL is not loopback (``httpx.MockTransport`` stands in for the network).
- Path traversal: prompt ids with ``../`` or NUL, partition keys with ``/`` and ``..``, stay inside
  the output root; a NUL or ``...`` partition key is refused naming the row and the column.
"""

from __future__ import annotations

import asyncio
import io
import socket
import struct
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest
from PIL import Image

from dagster_imggen.errors import (
    DownloadError,
    ImageDecodeError,
    ImageRequestError,
    UnsafeURLError,
)
from dagster_imggen.pipeline import PromptSource, build_image_generation_assets, read_ledger
from dagster_imggen.pipeline.store import IMAGE_NAME
from dagster_imggen.providers._http import HttpSession, RetryPolicy, decode_image
from dagster_imggen.providers.gptimage2 import GPTImage2ImageResource
from dagster_imggen.providers.openai import OpenAIImageResource
from dagster_imggen.render import render_image
from dagster_imggen.request import ImageRequest
from dagster_imggen.testing import FaultSpec, ProviderEmulator

KEY = "sk-imggen-input-1a2b3c4d5e6f"
FAST: dict[str, Any] = {
    "max_retries": 1,
    "backoff_base_s": 0.005,
    "backoff_max_s": 0.01,
    "poll_interval_s": 0.02,
}
COLUMNS = (
    "id",
    "Prompt",
    "Size",
    "N",
    "Quality",
    "Model",
    "Format",
    "Compression",
    "Background",
    "Moderation",
    "Images",
    "Mask",
)


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A complete, tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def refs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("refs")
    files = {
        "ref": render_image("reference", 1024, 1024, "png"),
        "mask_small": render_image("mask", 512, 512, "png", transparent=True),
        "mask_ok": render_image("mask", 1024, 1024, "png", transparent=True),
        "text": b"this is not an image at all\n",
        "bomb": bomb_png(),
    }
    out = {}
    for name, data in files.items():
        path = d / f"{name}.png"
        path.write_bytes(data)
        out[name] = str(path)
    huge = d / "huge.png"  # a real PNG start, padded (sparse) to 60 MB: above the 50 MB upload limit
    with huge.open("wb") as f:
        f.write(files["ref"])
        f.truncate(60 * 1024 * 1024)
    out["huge"] = str(huge)
    out["missing"] = str(d / "does-not-exist.png")
    return out


#: case id -> (column overrides, the field the error must name). Prompts default to "bad <case id>".
ROW_CASES: dict[str, tuple[dict[str, str], str]] = {
    "prompt-empty": ({"Prompt": ""}, "prompt"),
    "prompt-whitespace": ({"Prompt": "   "}, "prompt"),
    "prompt-over-limit": ({"Prompt": "a" * 32_001}, "prompt"),
    "size-0x0": ({"Size": "0x0"}, "size"),
    "size-negative": ({"Size": "-16x1024"}, "size"),
    "size-99999x16": ({"Size": "99999x16"}, "size"),
    "size-three-dims": ({"Size": "1024x1024x3"}, "size"),
    "size-unicode-digits": ({"Size": "１０２４x１０２４"}, "size"),
    "size-not-multiple-of-16": ({"Size": "1000x1000"}, "size"),
    "size-aspect-over-3": ({"Size": "3840x1024"}, "size"),
    "size-word": ({"Size": "large"}, "size"),
    "size-plus-sign": ({"Size": "+1024x1024"}, "size"),
    "size-too-few-pixels": ({"Size": "512x512"}, "size"),
    "n-zero": ({"N": "0"}, "n"),
    "n-negative": ({"N": "-1"}, "n"),
    "n-over-max": ({"N": "11"}, "n"),
    "n-word": ({"N": "two"}, "n"),
    "n-fraction": ({"N": "1.5"}, "n"),
    "quality-unknown": ({"Quality": "ultra"}, "quality"),
    "quality-of-another-provider": ({"Quality": "hd"}, "quality"),
    "model-unknown": ({"Model": "dall-e-9"}, "model"),
    "model-retired": ({"Model": "gpt-image-1"}, "model"),
    "format-gif": ({"Format": "gif"}, "output_format"),
    "compression-over-100": ({"Format": "jpeg", "Compression": "150"}, "output_compression"),
    "compression-with-png": ({"Compression": "50"}, "output_compression"),
    "background-transparent-jpeg": ({"Format": "jpeg", "Background": "transparent"}, "background"),
    "background-transparent-unsupported": ({"Background": "transparent"}, "background"),
    "moderation-unknown": ({"Moderation": "none"}, "moderation"),
    "ref-missing": ({"Images": "{missing}"}, "images"),
    "ref-not-an-image": ({"Images": "{text}"}, "images"),
    "ref-too-large": ({"Images": "{huge}"}, "images"),
    "ref-decompression-bomb": ({"Images": "{bomb}"}, "images"),
    "mask-other-size": ({"Images": "{ref}", "Mask": "{mask_small}"}, "mask"),
    "mask-not-an-image": ({"Images": "{ref}", "Mask": "{text}"}, "mask"),
    "mask-without-image": ({"Mask": "{mask_ok}"}, "mask"),
    "duplicate-prompt-id": ({"id": "good-0"}, "id"),
}

GOOD = {f"good-{i}": f"a valid prompt number {i}" for i in range(3)}


def _csv_cell(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _table(refs: dict[str, str]) -> tuple[str, dict[str, int]]:
    """The prompt table (CSV text) and the 0-based row of each case."""
    lines = [",".join(COLUMNS)]
    rows: dict[str, int] = {}
    entries: list[tuple[str, dict[str, str]]] = [
        (k, {"id": k, "Prompt": v}) for k, v in list(GOOD.items())[:2]
    ]
    for case, (cells, _) in ROW_CASES.items():
        entries.append(
            (case, {"id": case, "Prompt": f"bad {case}", **{k: v.format(**refs) for k, v in cells.items()}})
        )
    entries.append(("good-2", {"id": "good-2", "Prompt": GOOD["good-2"]}))
    for i, (case, cells) in enumerate(entries):
        rows[case] = i
        lines.append(",".join(_csv_cell(cells.get(c, "")) if cells.get(c) else "" for c in COLUMNS))
    return "\n".join(lines) + "\n", rows


@pytest.fixture(scope="module")
def batch(refs: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One run of the pipeline over the table of every bad row (and three good ones)."""
    d = tmp_path_factory.mktemp("batch")
    text, rows = _table(refs)
    (d / "prompts.csv").write_text(text, encoding="utf-8")
    pipeline = build_image_generation_assets(
        prompts=PromptSource(
            url=str(d / "prompts.csv"),
            id_column="id",
            override_columns={
                "size": "Size",
                "n": "N",
                "quality": "Quality",
                "model": "Model",
                "output_format": "Format",
                "output_compression": "Compression",
                "background": "Background",
                "moderation": "Moderation",
                "images": "Images",
                "mask": "Mask",
            },
        ),
        output_root=str(d / "out"),
        partitioning="none",
        provider_name="openai",
        defaults={"model": "gpt-image-2", "size": "1024x1024", "quality": "low"},
        max_failure_share=1.0,
    )
    with ProviderEmulator() as emu:
        resource = OpenAIImageResource(api_key=KEY, base_url=emu.base_url("openai"), **FAST)
        result = dg.materialize(
            [pipeline.images_asset, *pipeline.asset_checks],
            resources={"image_provider": resource},
            instance=dg.DagsterInstance.ephemeral(),
            raise_on_error=False,
        )
        sent = [r.prompt or "" for r in emu.requests]
    ledger = read_ledger(str(d / "out")).to_pylist()
    yield {
        "result": result,
        "rows": rows,
        "ledger": ledger,
        "sent": sent,
        "manifest": {e.row: e for e in (pipeline.store.read_manifest(None) or [])},
        "out": d / "out",
    }


@pytest.mark.parametrize("case", list(ROW_CASES))
def test_bad_row_is_invalid_naming_row_and_field(case: str, batch: dict[str, Any]) -> None:
    row = batch["rows"][case]
    field = ROW_CASES[case][1]
    (entry,) = [r for r in batch["ledger"] if r["row"] == row]
    assert entry["status"] == "invalid", entry["error"]
    error = entry["error"]
    assert error.startswith(f"row {row}: "), error
    assert field in error, error
    assert "\n" not in error and "Traceback" not in error and 'File "' not in error and len(error) < 400
    assert entry["cost_usd"] == 0 and not entry["image_uris"]
    assert batch["manifest"][row].status == "invalid"
    assert not any(p.startswith(f"bad {case}") for p in batch["sent"])  # never sent to the provider


def test_the_rest_of_the_batch_goes_on(batch: dict[str, Any]) -> None:
    assert batch["result"].success  # no traceback: the run itself succeeded
    by_id = {r["prompt_id"]: r for r in batch["ledger"] if r["status"] != "invalid"}
    for pid in GOOD:
        assert by_id[pid]["status"] in ("succeeded", "cached"), by_id[pid]
    images = [p for p in batch["out"].rglob("*") if IMAGE_NAME.match(p.name)]
    assert sorted({IMAGE_NAME.match(p.name)["prompt_id"] for p in images}) == sorted(GOOD)  # type: ignore[index]
    assert sum(1 for s in batch["sent"] if s.startswith("a valid prompt")) == len(GOOD)
    assert len(ROW_CASES) + len(GOOD) == len(batch["ledger"])
    assert len(ROW_CASES) >= 30


def test_non_utf8_cell_is_an_invalid_row_and_the_rest_goes_on(tmp_path: Path) -> None:
    table = tmp_path / "prompts.csv"
    table.write_bytes(b"id,Prompt\na,a fine prompt\nb,caf\xe9 au lait\nc,another fine prompt\n")
    pipeline = build_image_generation_assets(
        prompts=PromptSource(url=str(table), id_column="id"),
        output_root=str(tmp_path / "out"),
        partitioning="none",
        provider_name="local",
        defaults={"model": "gpt-image-2", "size": "1024x1024", "quality": "low"},
        max_failure_share=1.0,
    )
    from dagster_imggen.providers.local import LocalImageResource

    result = dg.materialize(
        [pipeline.images_asset],
        resources={"image_provider": LocalImageResource()},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert result.success
    rows = {r["prompt_id"]: r for r in read_ledger(str(tmp_path / "out")).to_pylist()}
    assert rows["a"]["status"] == rows["c"]["status"] == "succeeded"
    assert rows["b"]["status"] == "invalid"
    assert (
        rows["b"]["error"].startswith("row 1: ")
        and "prompt" in rows["b"]["error"]
        and "UTF-8" in rows["b"]["error"]
    )


# ------------------------------------------------------------------------------------ table-level


@pytest.mark.parametrize(
    ("header", "source", "column"),
    [
        ("id,Text", {"id_column": "id"}, "Prompt"),
        ("Prompt", {"id_column": "key"}, "key"),
        ("Prompt,Category", {"override_columns": {"size": "Size"}}, "Size"),
    ],
    ids=["missing-prompt-column", "missing-id-column", "missing-override-column"],
)
def test_missing_column_fails_the_run_naming_it(
    header: str, source: dict[str, Any], column: str, tmp_path: Path
) -> None:
    table = tmp_path / "prompts.csv"
    table.write_text(header + "\n" + ",".join(["x"] * len(header.split(","))) + "\n")
    pipeline = build_image_generation_assets(
        prompts=PromptSource(url=str(table), **source),
        output_root=str(tmp_path / "out"),
        partitioning="none",
        provider_name="local",
    )
    from dagster_imggen.providers.local import LocalImageResource

    result = dg.materialize(
        [pipeline.images_asset],
        resources={"image_provider": LocalImageResource()},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    data = failure.step_failure_data
    # A dg.Failure with one clear line, and no chained traceback from deep inside.
    assert data.user_failure_data is not None
    assert f"no column {column!r}" in (data.user_failure_data.description or "")
    assert data.error is not None and data.error.cause is None


def test_unknown_table_format_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ImageRequestError) as info:
        build_image_generation_assets(
            prompts=PromptSource(url=str(tmp_path / "prompts.xlsx"), partition_column="Category"),
            output_root=str(tmp_path / "out"),
        )
    assert info.value.field == "format" and "prompts.xlsx" in str(info.value)


# ------------------------------------------------------------------------------ decompression bomb


def test_decompression_bomb_is_refused_from_its_header() -> None:
    data = bomb_png()
    assert len(data) < 200  # tiny on the wire, 30 GB once decoded
    tracemalloc.start()
    try:
        with pytest.raises(ImageDecodeError) as info:
            decode_image(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 1024 * 1024  # nothing was decoded
    assert "100000x100000" in str(info.value) or "DecompressionBomb" in str(info.value)


def test_decompression_bomb_from_a_provider_is_a_typed_failure() -> None:
    """A provider answering with a bomb: the request fails with ImageDecodeError, possibly billed."""
    import base64

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"created": 1, "data": [{"b64_json": base64.b64encode(bomb_png()).decode()}]}
        )

    resource = OpenAIImageResource(api_key=KEY, base_url="https://api.openai.example/v1", **FAST)
    resource._transport = httpx.MockTransport(handler)
    with resource:
        (result,) = list(resource.generate_many([ImageRequest(prompt="bomb", quality="low")]))
    assert isinstance(result.error, ImageDecodeError), result.error
    assert result.possibly_billed and result.attempts == 1


# ----------------------------------------------------------------------------- oversized responses


def test_oversized_download_is_capped_before_reading() -> None:
    """A 400 MB image download is refused from its declared length (nothing is buffered)."""
    with ProviderEmulator(task_s=0.0) as emu:
        emu.inject("gptimage2", FaultSpec("oversized", size_bytes=400 * 1024 * 1024))
        resource = GPTImage2ImageResource(api_key=KEY, base_url=emu.base_url("gptimage2"), **FAST)
        tracemalloc.start()
        try:
            with resource:
                (result,) = list(
                    resource.generate_many(
                        [ImageRequest(prompt="huge", model="gpt-image-1.5", quality="standard")]
                    )
                )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert isinstance(result.error, DownloadError) and "cap" in str(result.error)
    assert peak < 64 * 1024 * 1024


def test_oversized_api_answer_is_capped() -> None:
    """A 400 MB JSON answer (an endless b64_json) is cut off at the cap, not read into memory."""
    with ProviderEmulator() as emu:
        emu.inject("openai", FaultSpec("oversized", on="submit", size_bytes=400 * 1024 * 1024))
        resource = OpenAIImageResource(api_key=KEY, base_url=emu.base_url("openai"), **FAST)
        tracemalloc.start()
        try:
            with resource:
                (result,) = list(resource.generate_many([ImageRequest(prompt="endless", quality="low")]))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert len(emu.calls("openai", op="generate")) == 1  # not retried
    assert result.error is not None and "cap" in str(result.error), result.error
    assert result.possibly_billed
    assert peak < 300 * 1024 * 1024


# ------------------------------------------------------------------------------------------- SSRF

PUBLIC = "93.184.216.34"
HOSTILE_URLS = [
    pytest.param(f"http://{PUBLIC}/img.png", id="plain-http"),
    pytest.param("ftp://cdn.example.com/img.png", id="ftp"),
    pytest.param("file:///etc/passwd", id="file-scheme"),
    pytest.param("https://127.0.0.1/img.png", id="loopback-v4"),
    pytest.param("https://[::1]/img.png", id="loopback-v6"),
    pytest.param("https://localhost/img.png", id="localhost"),
    pytest.param("https://10.0.0.7/img.png", id="private-10"),
    pytest.param("https://172.16.5.4/img.png", id="private-172"),
    pytest.param("https://192.168.1.10/img.png", id="private-192"),
    pytest.param("https://169.254.169.254/latest/meta-data/", id="link-local-metadata"),
    pytest.param("https://[fe80::1]/img.png", id="link-local-v6"),
    pytest.param("https://0.0.0.0/img.png", id="unspecified"),
    pytest.param("https://[::ffff:127.0.0.1]/img.png", id="v4-mapped-loopback"),
    pytest.param("https://100.100.100.200/latest/meta-data/", id="shared-address-metadata"),
    pytest.param("https://2130706433/img.png", id="decimal-loopback"),
    pytest.param("https://internal.example.com/img.png", id="name-resolving-private"),
    pytest.param("https://metadata.google.internal/computeMetadata/v1/", id="internal-name"),
    pytest.param(f"https://{PUBLIC}/redirect-to-metadata", id="redirect-to-private"),
]


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo
    table = {"internal.example.com": "10.1.2.3", "cdn.example.com": PUBLIC}

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host in table:
            return real(table[host], port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def _session(fetched: list[str]) -> HttpSession:
    png = render_image("cdn", 64, 64, "png")

    def handler(request: httpx.Request) -> httpx.Response:
        fetched.append(str(request.url))
        if request.url.path == "/redirect-to-metadata":
            return httpx.Response(302, headers={"location": "https://169.254.169.254/latest/meta-data/"})
        return httpx.Response(200, content=png, headers={"content-type": "image/png"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return HttpSession(
        client,
        provider="gptimage2",
        api_key=KEY,
        base_url="https://api.gptimage2.example/v1",
        policy=RetryPolicy(max_retries=0),
    )


@pytest.mark.usefixtures("fake_dns")
@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_ssrf_result_url_is_refused(url: str) -> None:
    fetched: list[str] = []

    async def go() -> None:
        session = _session(fetched)
        try:
            await session.download(url)
        finally:
            await session.client.aclose()

    with pytest.raises(UnsafeURLError) as info:
        asyncio.run(go())
    assert KEY not in str(info.value)
    if "redirect" in url:
        assert fetched == [url]  # the public hop was fetched; the private one never
    else:
        assert fetched == []  # refused before any byte


@pytest.mark.usefixtures("fake_dns")
def test_public_https_result_url_is_fetched() -> None:
    fetched: list[str] = []

    async def go() -> bytes:
        session = _session(fetched)
        try:
            return await session.download("https://cdn.example.com/img.png")
        finally:
            await session.client.aclose()

    data = asyncio.run(go())
    assert Image.open(io.BytesIO(data)).size == (64, 64) and len(fetched) == 1


@pytest.mark.usefixtures("fake_dns")
def test_provider_result_pointing_at_metadata_fails_the_request_only() -> None:
    """Through a resource: the result URL is refused, the request fails typed, possibly billed."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.gptimage2.example":
            return httpx.Response(
                200, json={"created": 1, "data": [{"url": "https://169.254.169.254/latest/meta-data/"}]}
            )
        raise AssertionError(f"fetched {request.url}")

    resource = GPTImage2ImageResource(api_key=KEY, base_url="https://api.gptimage2.example/v1", **FAST)
    resource._transport = httpx.MockTransport(handler)
    with resource:
        (result,) = list(
            resource.generate_many([ImageRequest(prompt="ssrf", model="gpt-image-1.5", quality="standard")])
        )
    assert isinstance(result.error, UnsafeURLError)
    assert result.possibly_billed


# ----------------------------------------------------------------------------------- path traversal


def test_hostile_prompt_ids_and_partition_keys_stay_inside_the_output_root(tmp_path: Path) -> None:
    table = tmp_path / "prompts.csv"
    rows = [
        ("../../../../tmp/escaped", "slash", "a prompt with a traversing id"),
        ("..", "dots", "a prompt whose id is two dots"),
        ("/etc/passwd", "a/b", "a prompt with an absolute id"),
        ("ok-id", "..", "a prompt in the dot-dot partition"),
        ("nul\x00id", "a/../../b", "a prompt with NUL in its id"),
    ]
    table.write_text(
        "id,Category,Prompt\n" + "".join(f"{_csv_cell(i)},{_csv_cell(c)},{p}\n" for i, c, p in rows)
    )
    root = tmp_path / "root" / "out"
    pipeline = build_image_generation_assets(
        prompts=PromptSource(url=str(table), id_column="id", partition_column="Category"),
        output_root=str(root),
        provider_name="local",
        defaults={"model": "gpt-image-2", "size": "1024x1024", "quality": "low"},
    )
    from dagster_imggen.providers.local import LocalImageResource

    keys = pipeline.partitions_def.get_partition_keys()  # type: ignore[union-attr]
    assert sorted(keys) == sorted({c for _, c, _ in rows})
    instance = dg.DagsterInstance.ephemeral()
    for key in keys:
        result = dg.materialize(
            [pipeline.images_asset],
            resources={"image_provider": LocalImageResource()},
            instance=instance,
            partition_key=key,
        )
        assert result.success
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p != table]
    assert written and all(p.resolve().is_relative_to(root.resolve()) for p in written), written
    images = [p for p in written if IMAGE_NAME.match(p.name)]
    assert len(images) == len(rows)
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "root" / "b").exists()
    for p in written:
        assert "\x00" not in str(p) and ".." not in p.relative_to(root).parts


@pytest.mark.parametrize(
    ("value", "why"),
    [("bad\x00key", "control"), ("a...b", "...")],
    ids=["nul-partition-key", "triple-dot-partition-key"],
)
def test_unusable_partition_key_names_row_and_column(value: str, why: str, tmp_path: Path) -> None:
    table = tmp_path / "prompts.csv"
    table.write_text(f"Category,Prompt\nfine,one\n{_csv_cell(value)},two\n")
    with pytest.raises(ImageRequestError) as info:
        build_image_generation_assets(
            prompts=PromptSource(url=str(table), partition_column="Category"),
            output_root=str(tmp_path / "out"),
        )
    assert info.value.field == "Category" and info.value.row == 1
    assert str(info.value).startswith("row 1: ") and why in str(info.value)

"""Contact sheet and spend chart: real PNGs with the expected geometry and content."""

from __future__ import annotations

import base64
import datetime as dt
import io
import os
import re
from decimal import Decimal

import pyarrow as pa
import pytest
from PIL import Image

from dagster_imggen.pipeline.visuals import contact_sheet, markdown_image, spend_chart
from dagster_imggen.render import render_image


def _png(data: bytes) -> Image.Image:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _solid(color: tuple[int, int, int], size: tuple[int, int], fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt)
    return out.getvalue()


def test_contact_sheet_grid_geometry_and_pixels() -> None:
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    images = [_solid(c, (64, 64)) for c in colors]
    sheet = _png(contact_sheet(images, thumb_px=32, columns=2)).convert("RGB")
    # 2 columns x 2 rows of 32 px cells with 4 px gaps around them.
    assert sheet.size == (2 * 36 + 4, 2 * 36 + 4)
    # The centre of each cell holds its image's colour, in order, row-major.
    assert sheet.getpixel((4 + 16, 4 + 16)) == colors[0]
    assert sheet.getpixel((40 + 16, 4 + 16)) == colors[1]
    assert sheet.getpixel((4 + 16, 40 + 16)) == colors[2]


def test_contact_sheet_keeps_aspect_and_reads_jpeg_and_webp() -> None:
    wide = _solid((200, 100, 0), (200, 50), "JPEG")
    tall = _solid((0, 100, 200), (50, 200), "WEBP")
    sheet = _png(contact_sheet([wide, tall], thumb_px=40, columns=8)).convert("RGB")
    assert sheet.size == (2 * 44 + 4, 44 + 4)
    # The wide image is letterboxed: its top rows are background, its middle row is the image colour.
    top = sheet.getpixel((4 + 20, 4 + 1))
    mid = sheet.getpixel((4 + 20, 4 + 20))
    assert isinstance(top, tuple) and isinstance(mid, tuple)
    assert top[:3] == (24, 24, 27)
    assert abs(mid[0] - 200) < 12 and abs(mid[1] - 100) < 12
    left = sheet.getpixel((48 + 1, 4 + 20))
    assert isinstance(left, tuple) and left[:3] == (24, 24, 27)


def test_contact_sheet_tolerates_bad_entries() -> None:
    good = render_image("a red bicycle", 96, 96, "png")
    truncated = good[: len(good) // 3]
    sheet = _png(contact_sheet([good, b"not an image", truncated, b""], thumb_px=32, columns=4))
    assert sheet.size == (4 * 36 + 4, 36 + 4)
    # Placeholder cells are the flat grey (with a dark cross), not the rendered gradient.
    rgb = sheet.convert("RGB")
    assert rgb.getpixel((40 + 4, 4 + 16)) == (70, 70, 76)
    assert rgb.getpixel((4 + 4, 4 + 16)) != (70, 70, 76)


def test_contact_sheet_labels_add_a_caption_row() -> None:
    images = [render_image(f"prompt {i}", 64, 64, "png") for i in range(5)]
    plain = _png(contact_sheet(images, thumb_px=48, columns=5))
    labelled = _png(
        contact_sheet(images, thumb_px=48, columns=5, labels=[f"id-{i} a long label" for i in range(5)])
    )
    assert labelled.width == plain.width
    assert labelled.height > plain.height
    # The caption strip holds light text pixels.
    strip = labelled.convert("L").crop((4, 4 + 48, 4 + 48, labelled.height - 4))
    assert strip.getextrema()[1] > 180  # type: ignore[index,operator]


def test_contact_sheet_empty_and_bad_arguments() -> None:
    empty = _png(contact_sheet([], thumb_px=64))
    assert empty.size == (64 + 8, 64 + 8)
    with pytest.raises(ValueError, match="labels has 1 entries but images has 2"):
        contact_sheet([b"a", b"b"], labels=["x"])
    with pytest.raises(ValueError, match="thumb_px"):
        contact_sheet([b"a"], thumb_px=4)
    with pytest.raises(ValueError, match="columns"):
        contact_sheet([b"a"], columns=0)


def _spend_table(rows: list[tuple[dt.date, str, str, str, str, int]]) -> pa.Table:
    return pa.table(
        {
            "day": pa.array([r[0] for r in rows], pa.date32()),
            "provider": [r[1] for r in rows],
            "model": [r[2] for r in rows],
            "partition_key": [r[3] for r in rows],
            "cost_usd": pa.array([Decimal(r[4]) for r in rows], pa.decimal128(18, 9)),
            "images": pa.array([r[5] for r in rows], pa.int64()),
        }
    )


def test_spend_chart_draws_a_png_with_data() -> None:
    d0 = dt.date(2026, 11, 18)
    table = _spend_table(
        [
            (d0, "openai", "gpt-image-1", "Animals", "0.167", 4),
            (d0, "local", "local-v1", "Animals", "0", 4),
            (d0 + dt.timedelta(days=1), "openai", "gpt-image-1", "Arts", "0.334", 8),
            (d0 + dt.timedelta(days=3), "piapi", "gpt-image-1", "Arts", "0.02", 1),
        ]
    )
    chart = _png(spend_chart(table))
    assert chart.size == (900, 420)
    empty = _png(spend_chart(table.slice(0, 0)))
    assert empty.size == (900, 420)
    # The chart with bars has far more distinct colours than the "no spend" chart.
    assert len(chart.convert("RGB").getcolors(1 << 20) or []) > len(
        empty.convert("RGB").getcolors(1 << 20) or []
    )


def test_spend_chart_accepts_timestamps_and_strings_and_skips_nulls() -> None:
    table = pa.table(
        {
            "day": ["2026-11-20", "2026-11-21T10:00:00", None],
            "provider": ["openai", "apiyi", "openai"],
            "model": ["gpt-image-1", "gpt-image-1", None],
            "cost_usd": pa.array([Decimal("0.04"), Decimal("0.02"), Decimal("1")], pa.decimal128(18, 9)),
        }
    )
    assert _png(spend_chart(table)).width == 900


def test_spend_chart_names_missing_columns() -> None:
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['cost_usd'\]"):
        spend_chart(pa.table({"day": [dt.date(2026, 1, 1)], "provider": ["x"], "model": ["m"]}))


def _embedded(markdown: str) -> tuple[str, str, bytes]:
    match = re.fullmatch(r"!\[(.*)\]\(data:(image/[a-z]+);base64,([A-Za-z0-9+/=]+)\)", markdown)
    assert match, markdown[:80]
    return match.group(1), match.group(2), base64.b64decode(match.group(3))


def test_markdown_image_embeds_small_png_as_is() -> None:
    png = contact_sheet([render_image("a cat", 64, 64, "png")], thumb_px=32)
    alt, mime, data = _embedded(markdown_image(png, alt="sheet [Animals]"))
    assert (alt, mime, data) == ("sheet \\[Animals\\]", "image/png", png)


def test_markdown_image_shrinks_big_images_to_fit() -> None:
    noisy = Image.frombytes("RGB", (600, 600), os.urandom(600 * 600 * 3))  # incompressible
    out = io.BytesIO()
    noisy.save(out, "PNG")
    assert len(out.getvalue()) > 1_000_000
    _, mime, data = _embedded(markdown_image(out.getvalue(), max_bytes=60_000))
    assert mime == "image/jpeg" and len(data) <= 60_000
    assert Image.open(io.BytesIO(data)).width < 600  # it had to be scaled down as well


def test_markdown_image_of_garbage_is_a_note() -> None:
    assert markdown_image(b"nope", alt="x") == "_(x: not a readable image)_"
    with pytest.raises(ValueError, match="max_bytes"):
        markdown_image(b"", max_bytes=10)

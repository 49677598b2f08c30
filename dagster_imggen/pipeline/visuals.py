"""Pictures for the Dagster UI: a contact sheet of a partition's images and a spend-over-time chart.

Both functions return encoded PNG bytes; the pipeline writes them beside the images. The Dagster UI is
a web page and cannot load ``file://`` images, so :func:`markdown_image` embeds a picture in markdown
metadata as a ``data:`` URI (re-encoded smaller when needed). matplotlib (the ``plots`` extra) is
imported only by :func:`spend_chart`.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import math
import warnings
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa
from PIL import Image, ImageDraw, ImageFont, ImageOps

__all__ = ["contact_sheet", "markdown_image", "spend_chart"]

#: Largest source image decoded for a thumbnail (pixels); bigger or undecodable entries get a placeholder.
MAX_SOURCE_PIXELS = 64_000_000
_BACKGROUND = (24, 24, 27)
_PLACEHOLDER = (70, 70, 76)
_TEXT = (230, 230, 230)
_GAP = 4


def _thumbnail(data: bytes, thumb_px: int) -> Image.Image | None:
    """Decode ``data`` and fit it into a ``thumb_px`` square (aspect kept, letterboxed); None if not an image."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as src:
                if src.width * src.height > MAX_SOURCE_PIXELS:
                    return None
                src.draft("RGB", (thumb_px, thumb_px))  # JPEG: decode at reduced scale
                image = ImageOps.exif_transpose(src).convert("RGBA")
    except Exception:  # undecodable, truncated, unsupported or a decompression bomb: draw a placeholder
        return None
    image.thumbnail((thumb_px, thumb_px), Image.Resampling.LANCZOS)
    cell = Image.new("RGB", (thumb_px, thumb_px), _BACKGROUND)
    offset = ((thumb_px - image.width) // 2, (thumb_px - image.height) // 2)
    cell.paste(image, offset, image)  # the alpha band as mask: transparent parts show the background
    return cell


def _placeholder(thumb_px: int, text: str) -> Image.Image:
    cell = Image.new("RGB", (thumb_px, thumb_px), _PLACEHOLDER)
    draw = ImageDraw.Draw(cell)
    draw.line((0, 0, thumb_px - 1, thumb_px - 1), fill=_BACKGROUND, width=2)
    draw.line((0, thumb_px - 1, thumb_px - 1, 0), fill=_BACKGROUND, width=2)
    font = ImageFont.load_default(size=max(9, thumb_px // 10))
    draw.text((thumb_px // 2, thumb_px // 2), text, fill=_TEXT, font=font, anchor="mm")
    return cell


def _fit_label(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    """``text`` cut (with an ellipsis) to fit ``width`` pixels."""
    text = " ".join(text.split())
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def contact_sheet(
    images: Sequence[bytes],
    *,
    thumb_px: int = 128,
    columns: int = 8,
    labels: Sequence[str] | None = None,
) -> bytes:
    """One PNG grid of thumbnails of ``images`` (encoded PNG/JPEG/WebP/... bytes), in order.

    Each thumbnail fits a ``thumb_px`` x ``thumb_px`` pixel cell (aspect kept); the grid has at most
    ``columns`` cells per row. ``labels`` (same length as ``images``) are drawn under the cells,
    cut to the cell width. Entries that cannot be decoded (or exceed :data:`MAX_SOURCE_PIXELS`)
    get a crossed placeholder cell instead, so one bad file never hides the rest. An empty
    ``images`` gives a single "no images" cell.

    Raises:
        ValueError: ``thumb_px`` < 16, ``columns`` < 1, or ``labels`` of a different length.
    """
    if thumb_px < 16:
        raise ValueError(f"thumb_px must be >= 16 pixels, got {thumb_px}")
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"labels has {len(labels)} entries but images has {len(images)}")

    cells = [_thumbnail(data, thumb_px) or _placeholder(thumb_px, "?") for data in images]
    if not cells:
        cells = [_placeholder(thumb_px, "no images")]
    font = ImageFont.load_default(size=max(9, min(14, thumb_px // 10)))
    label_h = int(font.size) + 6 if labels else 0  # type: ignore[union-attr]
    ncols = min(columns, len(cells))
    nrows = math.ceil(len(cells) / ncols)
    sheet = Image.new(
        "RGB",
        (ncols * (thumb_px + _GAP) + _GAP, nrows * (thumb_px + label_h + _GAP) + _GAP),
        _BACKGROUND,
    )
    draw = ImageDraw.Draw(sheet)
    for i, cell in enumerate(cells):
        x = _GAP + (i % ncols) * (thumb_px + _GAP)
        y = _GAP + (i // ncols) * (thumb_px + label_h + _GAP)
        sheet.paste(cell, (x, y))
        if labels:
            text = _fit_label(draw, str(labels[i]), font, thumb_px)
            draw.text((x + 2, y + thumb_px + 3), text, fill=_TEXT, font=font)
    out = io.BytesIO()
    sheet.save(out, "PNG", optimize=True)
    return out.getvalue()


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def spend_chart(spend: pa.Table, *, title: str = "Image generation spend") -> bytes:
    """A PNG chart of spend over time: USD per day stacked by ``provider/model``, plus a cumulative line.

    ``spend`` needs columns ``day`` (date, timestamp or ISO string), ``provider``, ``model`` and
    ``cost_usd`` (decimal USD); other columns (``partition_key``, ``images``, ...) are ignored.
    Rows with a null day or cost are skipped. Sums are exact ``Decimal``s; only the drawing uses floats.
    An empty table gives a chart that says so.

    Raises:
        ValueError: a required column is missing.
        ImportError: matplotlib is not installed (``pip install 'dagster-imggen[plots]'``).
    """
    missing = [c for c in ("day", "provider", "model", "cost_usd") if c not in spend.column_names]
    if missing:
        raise ValueError(f"spend table lacks column(s) {missing}; has {spend.column_names}")
    try:
        import matplotlib.dates as mdates
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("spend_chart needs matplotlib: pip install 'dagster-imggen[plots]'") from exc

    # (day, series) -> USD, exact.
    per_day: dict[tuple[dt.date, str], Decimal] = defaultdict(Decimal)
    for row in spend.select(["day", "provider", "model", "cost_usd"]).to_pylist():
        if row["day"] is None or row["cost_usd"] is None:
            continue
        series = f"{row['provider'] or '?'}/{row['model'] or '?'}"
        per_day[(_as_date(row["day"]), series)] += Decimal(row["cost_usd"])

    # A bare Figure on the Agg canvas: no pyplot, no global backend switch, thread-safe.
    fig = Figure(figsize=(9, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    total = sum(per_day.values(), Decimal(0))
    ax.set_title(f"{title} — total ${total:.4f}" if per_day else title)
    ax.set_ylabel("USD per day")
    if not per_day:
        ax.text(0.5, 0.5, "no spend recorded yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        days = sorted({d for d, _ in per_day})
        x = [float(v) for v in mdates.date2num(days)]  # matplotlib date numbers (days)
        # Biggest series at the bottom of each stack; the legend lists them in the same order.
        by_series: dict[str, Decimal] = defaultdict(Decimal)
        for (_, s), usd in per_day.items():
            by_series[s] += usd
        series_names = sorted(by_series, key=lambda s: (-by_series[s], s))
        bottom = [0.0] * len(days)
        width = 0.8 if len(days) > 1 else 0.5
        for name in series_names:
            heights = [float(per_day.get((d, name), Decimal(0))) for d in days]
            ax.bar(x, heights, width=width, bottom=bottom, label=f"{name} (${by_series[name]:.4f})")
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        running = Decimal(0)
        cumulative = []
        for d in days:
            running += sum((usd for (day, _), usd in per_day.items() if day == d), Decimal(0))
            cumulative.append(float(running))
        ax2 = ax.twinx()
        ax2.plot(x, cumulative, color="black", marker="o", markersize=3, linewidth=1.2, label="cumulative")
        ax2.set_ylabel("cumulative USD")
        ax2.set_ylim(bottom=0)
        ax.set_ylim(bottom=0)
        if x[-1] - x[0] <= 14:  # up to two weeks: one tick per day, no hours
            ax.xaxis.set_major_locator(mdates.DayLocator())
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
        else:
            locator = mdates.AutoDateLocator(maxticks=10)
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        if len(days) == 1:
            ax.set_xlim(x[0] - 2, x[0] + 2)
        handles, names = ax.get_legend_handles_labels()
        h2, n2 = ax2.get_legend_handles_labels()
        ax.legend(handles + h2, names + n2, loc="upper left", fontsize=8, frameon=False)
        ax.grid(axis="y", alpha=0.3)
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


#: Default cap on an embedded picture (bytes before base64): Dagster keeps metadata in its event log.
MAX_EMBED_BYTES = 200_000


def markdown_image(image: bytes, alt: str = "", *, max_bytes: int = MAX_EMBED_BYTES) -> str:
    """Markdown that shows ``image`` inline in the Dagster UI: ``![alt](data:image/...;base64,...)``.

    The image is embedded as given when it is at most ``max_bytes``; otherwise it is re-encoded as
    JPEG (quality 80) and, if still too big, halved in size until it fits. ``alt`` is escaped.
    Undecodable bytes give a short italic note instead of an image.

    Raises:
        ValueError: ``max_bytes`` < 1,000.
    """
    if max_bytes < 1_000:
        raise ValueError(f"max_bytes must be >= 1000, got {max_bytes}")
    label = alt.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]").replace("\n", " ")
    data, mime = image, _mime_of(image)
    if mime is None or len(data) > max_bytes:
        try:
            with Image.open(io.BytesIO(image)) as src:
                picture = src.convert("RGB")
        except Exception:
            return f"_({label or 'image'}: not a readable image)_"
        data, mime = _jpeg(picture), "image/jpeg"
        while len(data) > max_bytes and min(picture.size) > 32:
            picture = picture.resize((picture.width // 2, picture.height // 2), Image.Resampling.LANCZOS)
            data = _jpeg(picture)
    return f"![{label}](data:{mime};base64,{base64.b64encode(data).decode('ascii')})"


def _mime_of(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _jpeg(picture: Image.Image) -> bytes:
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=80, optimize=True)
    return out.getvalue()

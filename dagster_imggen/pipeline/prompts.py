"""Prompt tables: read a CSV/TSV/Parquet/JSONL table at any fsspec URL and turn its rows into requests.

A table holds one prompt per row. ``PromptSource`` names the columns: the prompt text, an optional
stable prompt id, the partition column (static partitions) or date column (daily partitions), and
per-row overrides of request fields (model, size, quality, n, ...). Rows that break a rule become
``InvalidRow`` outcomes naming the row and the field; the rest go on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ImageRequestError
from ..request import ImageRequest

__all__ = [
    "MISSING_PARTITION",
    "InvalidRow",
    "PromptRow",
    "PromptSource",
    "build_request",
    "check_references",
    "date_keys",
    "partition_values",
    "read_prompt_table",
    "rows_of",
    "sanitize_id",
]

#: Partition key given to rows whose partition column is empty.
MISSING_PARTITION = "__missing__"

_FORMATS = {
    "csv": "csv",
    "tsv": "tsv",
    "tab": "tsv",
    "parquet": "parquet",
    "pq": "parquet",
    "jsonl": "jsonl",
    "ndjson": "jsonl",
    "json": "jsonl",
}
_COMPRESSIONS = (".gz", ".bz2", ".zst", ".xz")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class PromptSource:
    """Where the prompts are and which columns mean what.

    - ``url``: any fsspec URL (local path, ``memory://``, ``s3://``...). The format comes from the
      extension (``.csv``, ``.tsv``, ``.parquet``, ``.jsonl``, optionally ``.gz``) or from ``format``.
      For daily pipelines the URL may hold ``{date}`` (``YYYY-MM-DD``): each day reads its own file.
    - ``prompt_column``: the prompt text.
    - ``id_column``: a stable prompt id; default ``{row:05d}-{sha256(prompt)[:10]}``. Ids are
      sanitised to ``[A-Za-z0-9._-]`` (a ``../`` id can never leave the image store).
    - ``partition_column``: static partitions, one per distinct value (PartiPrompts: ``Category``).
    - ``date_column``: daily partitions; the column holds dates (or ISO strings / timestamps).
    - ``override_columns``: request field -> column, e.g. ``{"size": "Size", "n": "N"}``; empty cells
      keep the default.
    - ``storage_options``: passed to fsspec (credentials, endpoint); never logged.
    """

    url: str
    prompt_column: str = "Prompt"
    id_column: str | None = None
    partition_column: str | None = None
    date_column: str | None = None
    override_columns: Mapping[str, str] = field(default_factory=dict)
    format: str | None = None
    storage_options: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def resolved_format(self, url: str | None = None) -> str:
        """The table format (``csv`` | ``tsv`` | ``parquet`` | ``jsonl``); raises ``ImageRequestError``."""
        if self.format:
            fmt = _FORMATS.get(self.format.lower().lstrip("."))
        else:
            name = (url or self.url).rsplit("/", 1)[-1].lower()
            for comp in _COMPRESSIONS:
                name = name.removesuffix(comp)
            fmt = _FORMATS.get(name.rsplit(".", 1)[-1]) if "." in name else None
        if fmt is None:
            raise ImageRequestError(
                f"cannot tell the format of prompt table {url or self.url!r}: use .csv, .tsv, .parquet "
                "or .jsonl, or set format=",
                field="format",
            )
        return fmt

    @property
    def columns_used(self) -> list[str]:
        cols = [self.prompt_column, self.id_column, self.partition_column, self.date_column]
        return [c for c in (*cols, *self.override_columns.values()) if c]


@dataclass(frozen=True)
class PromptRow:
    """One row of a prompt table: its 0-based index, stable id, partition key and request fields."""

    row: int
    prompt_id: str
    partition_key: str
    fields: Mapping[str, Any]  # request field -> raw cell value (prompt and non-empty overrides)
    #: (field, message) when the row is unusable before any request is built (bad UTF-8, repeated id)
    problem: tuple[str, str] | None = None


@dataclass(frozen=True)
class InvalidRow:
    """A row that could not become a valid request: ``field`` and ``message`` say why."""

    row: PromptRow
    field: str | None
    message: str


def sanitize_id(value: str, *, max_len: int = 80) -> str:
    """Make ``value`` safe as one path component: ``[A-Za-z0-9._-]``, no leading dot, at most ``max_len``.

    When anything had to change, a short hash of the original is appended so different inputs
    never collide (``"a/b"`` and ``"a_b"`` stay apart). Never returns ``""``, ``"."`` or ``".."``.
    """
    clean = _SAFE.sub("_", value).lstrip(".-")[:max_len]
    if clean == value and clean:
        return clean
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{clean}-{digest}" if clean else f"id-{digest}"


def read_prompt_table(source: PromptSource, url: str | None = None) -> pa.Table:
    """Read the table at ``url`` (default ``source.url``) and check its columns.

    Returns a ``pyarrow.Table`` whose used columns are strings (dates as ``YYYY-MM-DD``), plus a
    ``__row__`` column (0-based row index). Raises ``ImageRequestError`` naming a missing column,
    ``FileNotFoundError`` when the URL does not exist.
    """
    url = url or source.url
    fmt = source.resolved_format(url)
    with fsspec.open(url, "rb", compression="infer", **dict(source.storage_options)) as f:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(f)
        elif fmt == "jsonl":
            import pyarrow.json as pj

            table = pj.read_json(f)
        else:
            import pyarrow.csv as pcsv

            parse = (
                pcsv.ParseOptions(delimiter="\t", quote_char=False) if fmt == "tsv" else pcsv.ParseOptions()
            )
            # Cells are checked for UTF-8 one by one below, so one bad cell cannot fail the table.
            table = pcsv.read_csv(
                f, parse_options=parse, convert_options=pcsv.ConvertOptions(check_utf8=False)
            )
    missing = [c for c in source.columns_used if c not in table.column_names]
    if missing:
        raise ImageRequestError(
            f"prompt table {url!r} has no column {missing[0]!r} (columns: {', '.join(table.column_names)})",
            field=missing[0],
        )
    bad_utf8: dict[int, str] = {}  # row -> first column holding invalid UTF-8
    for name in source.columns_used:
        idx = table.column_names.index(name)
        col = table.column(idx)
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            col, bad_rows = _valid_utf8(col)
            for i in bad_rows:
                bad_utf8.setdefault(i, name)
        if name == source.date_column:
            col = _dates_as_strings(col, name, url)
        elif not pa.types.is_string(col.type):
            col = pc.cast(col, pa.string())
        table = table.set_column(idx, name, col)
    table = table.append_column("__row__", pa.array(range(table.num_rows), pa.int64()))
    return table.append_column(
        "__bad_utf8__", pa.array([bad_utf8.get(i) for i in range(table.num_rows)], pa.string())
    )


def _valid_utf8(col: pa.ChunkedArray) -> tuple[pa.ChunkedArray, list[int]]:
    """``col`` with cells that are not valid UTF-8 set to null, and the rows of those cells."""
    try:
        col.validate(full=True)
        return col, []
    except pa.ArrowInvalid:
        pass
    values: list[str | None] = []
    bad: list[int] = []
    for i, raw in enumerate(pc.cast(col, pa.binary()).to_pylist()):
        if raw is None:
            values.append(None)
            continue
        try:
            values.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            values.append(None)
            bad.append(i)
    return pa.chunked_array([pa.array(values, pa.string())]), bad


def _dates_as_strings(col: pa.ChunkedArray, name: str, url: str) -> pa.ChunkedArray:
    if pa.types.is_timestamp(col.type):
        col = pc.cast(col, pa.date32())
    if pa.types.is_date(col.type):
        return pc.cast(col, pa.string())
    strings = pc.utf8_slice_codeunits(pc.cast(col, pa.string()), 0, 10)
    for i, value in enumerate(strings.to_pylist()):
        if value is None or not value.strip():
            continue
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            raise ImageRequestError(
                f"column {name!r} of {url!r} holds {value!r}, not a date (YYYY-MM-DD)", field=name, row=i
            ) from None
    return strings


def partition_values(table: pa.Table, column: str) -> list[str]:
    """Sorted distinct values of ``column`` (empty cells map to ``MISSING_PARTITION``).

    Raises ``ImageRequestError`` for a value Dagster cannot use as a partition key.
    """
    values = set()
    for i, v in enumerate(table.column(column).to_pylist()):
        key = MISSING_PARTITION if v is None or str(v).strip() == "" else str(v)
        if "..." in key or any(ch in key for ch in "\a\b\f\n\r\t\v\0"):
            raise ImageRequestError(
                f"{column} value {key!r} cannot be a partition key ('...' and control characters are not allowed)",
                field=column,
                row=i,
            )
        values.add(key)
    return sorted(values)


def date_keys(table: pa.Table, column: str) -> list[str]:
    """Sorted distinct ``YYYY-MM-DD`` values of a date column (see ``read_prompt_table``)."""
    return sorted({v for v in table.column(column).to_pylist() if v})


def rows_of(
    table: pa.Table,
    source: PromptSource,
    *,
    partition_key: str,
    filter_column: str | None = None,
) -> Iterator[PromptRow]:
    """Yield the rows of ``table`` whose ``filter_column`` equals ``partition_key`` (all rows if None)."""
    first_of_id: dict[str, int] = {}  # over the whole table: ids must be unique in it
    if source.id_column:
        for r, raw in zip(
            table.column("__row__").to_pylist(), table.column(source.id_column).to_pylist(), strict=True
        ):
            if raw is not None and str(raw).strip():
                first_of_id.setdefault(sanitize_id(str(raw).strip()), r)
    if filter_column is not None:
        values = table.column(filter_column)
        if partition_key == MISSING_PARTITION:
            mask = pc.or_kleene(pc.is_null(values), pc.equal(pc.utf8_trim_whitespace(values), ""))
        else:
            mask = pc.equal(values, partition_key)
        table = table.filter(pc.fill_null(mask, False))
    names = [source.prompt_column, *(c for c in (source.id_column,) if c), *source.override_columns.values()]
    columns = {n: table.column(n).to_pylist() for n in dict.fromkeys(names)}
    row_idx = table.column("__row__").to_pylist()
    bad_utf8 = table.column("__bad_utf8__").to_pylist() if "__bad_utf8__" in table.column_names else []
    fields_of_column = {source.prompt_column: "prompt", **{c: f for f, c in source.override_columns.items()}}
    for j, row in enumerate(row_idx):
        prompt = columns[source.prompt_column][j]
        fields: dict[str, Any] = {"prompt": prompt}
        for req_field, col in source.override_columns.items():
            value = columns[col][j]
            if value is not None and str(value).strip() != "":
                fields[req_field] = value
        raw_id = columns[source.id_column][j] if source.id_column else None
        if raw_id is not None and str(raw_id).strip():
            prompt_id = sanitize_id(str(raw_id).strip())
        else:
            digest = hashlib.sha256(str(prompt or "").encode()).hexdigest()[:10]
            prompt_id = f"{row:05d}-{digest}"
        problem: tuple[str, str] | None = None
        if bad_utf8 and bad_utf8[j]:
            column = bad_utf8[j]
            field_name = fields_of_column.get(column, column)
            problem = (field_name, f"row {row}: field {field_name!r} (column {column!r}) is not valid UTF-8")
        elif source.id_column and first_of_id.get(prompt_id, row) != row:
            problem = (
                source.id_column,
                f"row {row}: prompt id {prompt_id!r} (column {source.id_column!r}) repeats row "
                f"{first_of_id[prompt_id]}'s; ids must be unique",
            )
        yield PromptRow(
            row=row, prompt_id=prompt_id, partition_key=partition_key, fields=fields, problem=problem
        )


_INT_FIELDS = ("n", "output_compression")


def build_request(
    row: PromptRow, defaults: Mapping[str, Any], provider: str | None = None
) -> ImageRequest | InvalidRow:
    """Merge ``defaults`` with the row's fields, build and validate an ``ImageRequest``.

    Returns the request, or an ``InvalidRow`` naming the field when a rule is broken (an empty
    prompt, an unknown model, a size the model does not take...). ``provider`` enables the
    provider-specific checks of ``ImageRequest.validate_for``.
    """
    if row.problem is not None:
        return InvalidRow(row, row.problem[0], row.problem[1])
    prompt = row.fields.get("prompt")
    if prompt is None or not str(prompt).strip():
        return InvalidRow(row, "prompt", f"row {row.row}: field 'prompt' is empty")
    mapping: dict[str, Any] = {**defaults, **row.fields}
    try:
        from_row = getattr(ImageRequest, "from_row", None)
        if from_row is not None:
            request: ImageRequest = from_row(mapping, row=row.row)
        else:  # foundation's parser not there yet: a plain pydantic build
            for name in _INT_FIELDS:
                if isinstance(mapping.get(name), str):
                    mapping[name] = int(mapping[name])
            request = ImageRequest(**mapping)
        if provider is not None:
            request = request.validate_for(provider)
        check_references(request)
    except ImageRequestError as exc:
        msg = str(exc) if exc.row is not None else f"row {row.row}: {exc}"
        return InvalidRow(row, exc.field, msg)
    except (ValueError, TypeError) as exc:  # pydantic ValidationError is a ValueError
        field_name = _pydantic_field(exc)
        return InvalidRow(row, field_name, f"row {row.row}: field {field_name!r}: {_first_line(exc)}")
    return request


#: Largest reference image or mask, bytes: "< 50 MB each" for edits in the OpenAI Images API reference
#: (``../shared/providers/README.md``, as of 2026-11-21).
MAX_REFERENCE_BYTES = 50 * 1024 * 1024
#: Largest reference image, pixels (Pillow's decompression-bomb limit); checked from the header only.
MAX_REFERENCE_PIXELS = 89_478_485
_REFERENCE_FORMATS = ("PNG", "JPEG", "WEBP")


def check_references(request: ImageRequest) -> None:
    """Check the request's reference images and mask before anything is sent.

    Each file must exist, be at most ``MAX_REFERENCE_BYTES``, and be a PNG, JPEG or WebP of at most
    ``MAX_REFERENCE_PIXELS`` (read from the header; nothing is decoded). The mask must be a PNG of
    the first image's size. Raises ``ImageRequestError`` (field ``images`` or ``mask``).
    """
    sizes: list[tuple[int, int]] = []
    for url in request.images:
        sizes.append(_reference_header(url, "images", _REFERENCE_FORMATS))
    if request.mask is not None:
        mask_size = _reference_header(request.mask, "mask", ("PNG",))
        if sizes and mask_size != sizes[0]:
            raise ImageRequestError(
                f"mask {request.mask}: {mask_size[0]}x{mask_size[1]} pixels, but the first image is "
                f"{sizes[0][0]}x{sizes[0][1]}; a mask must have the same size",
                field="mask",
            )


def _reference_header(url: str, field_name: str, formats: tuple[str, ...]) -> tuple[int, int]:
    import warnings

    from PIL import Image

    try:
        fs, path = fsspec.core.url_to_fs(url)
        size = fs.size(path)
        if size is not None and size > MAX_REFERENCE_BYTES:
            raise ImageRequestError(
                f"{field_name} {url}: {size:,} bytes is above the {MAX_REFERENCE_BYTES:,}-byte upload limit",
                field=field_name,
            )
        with fs.open(path, "rb") as fh, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fh) as im:  # reads the header only
                fmt, width, height = im.format or "", im.width, im.height
    except ImageRequestError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRequestError(
            f"{field_name} {url}: too many pixels (a decompression bomb)", field=field_name
        ) from None
    except (OSError, ValueError) as exc:  # missing, unreadable, or not an image (PIL.UnidentifiedImageError)
        raise ImageRequestError(
            f"{field_name} {url}: not a readable image ({type(exc).__name__})", field=field_name
        ) from None
    if fmt not in formats:
        raise ImageRequestError(
            f"{field_name} {url}: {fmt or 'unknown'} format; must be {' or '.join(formats)}", field=field_name
        )
    if width * height > MAX_REFERENCE_PIXELS:
        raise ImageRequestError(
            f"{field_name} {url}: {width}x{height} is above {MAX_REFERENCE_PIXELS:,} pixels", field=field_name
        )
    return width, height


def _pydantic_field(exc: Exception) -> str | None:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            return ".".join(str(p) for p in first.get("loc", ())) or None
        except Exception:
            return None
    return None


def _first_line(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            return str(errors()[0].get("msg"))
        except Exception:
            pass
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__

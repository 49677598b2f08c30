"""``dagster-imggen`` console script.

    dagster-imggen models [--provider P] [--json]
    dagster-imggen estimate --provider P --model M --size S --quality Q [--n N]
                            [--prompt TEXT | --prompts URL [--prompt-column Prompt]
                             [--partition-column Category]] [--catalog URL] [--json]
    dagster-imggen emulate --port N [--host 127.0.0.1]

``--prompts`` reads a prompt table (csv, tsv, parquet or jsonl by extension; any fsspec URL) and
prints the total and per-partition cost (USD) of generating one request per row, before anything is
sent. ``--json`` prints one JSON object (``cost_usd`` is a string holding the decimal). Bad
arguments print one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NoReturn

from .errors import ImageRequestError, ImgGenError

__all__ = ["main", "read_prompt_table"]

_PROG = "dagster-imggen"


class _UsageError(Exception):
    """A bad argument or input: one line on stderr, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {value}")
    return value


def _build_parser() -> _Parser:
    parser = _Parser(
        prog=_PROG, description="Image generation for Dagster: catalog, cost estimates, emulator."
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    models = sub.add_parser("models", help="print the model catalog as a table")
    models.add_argument("--provider", help="only this provider")
    models.add_argument("--catalog", help="override catalog URL (fsspec), merged over the shipped one")
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")

    est = sub.add_parser("estimate", help="print the expected cost of a request or a prompt table")
    est.add_argument("--provider", required=True)
    est.add_argument("--model", required=True)
    est.add_argument("--size", required=True, help="auto, a preset or WIDTHxHEIGHT (pixels)")
    est.add_argument("--quality", required=True, help="low | medium | high | auto | standard | hd")
    est.add_argument("--n", type=_positive_int, default=1, help="images per request (default 1)")
    est.add_argument("--prompt", help="one prompt (its text tokens are then included)")
    est.add_argument("--prompts", help="prompt table URL: .csv, .tsv, .parquet or .jsonl")
    est.add_argument("--prompt-column", default="Prompt", help="prompt column (default Prompt)")
    est.add_argument("--partition-column", default="Category", help="partition column (default Category)")
    est.add_argument("--catalog", help="override catalog URL (fsspec), merged over the shipped one")
    est.add_argument("--allow-retired", action="store_true", help="estimate a retired model anyway")
    est.add_argument("--json", action="store_true", help="print one JSON object")

    emu = sub.add_parser("emulate", help="serve the provider emulator on loopback")
    emu.add_argument("--port", type=_port, required=True)
    emu.add_argument("--host", default="127.0.0.1")
    return parser


# ---------------------------------------------------------------------------------------------
# prompt tables


def read_prompt_table(url: str) -> Any:
    """Read a prompt table into a ``pyarrow.Table``: ``.csv``, ``.tsv`` (no quoting: cells are
    literal), ``.parquet``, ``.jsonl``/``.ndjson`` by extension, from any fsspec URL.

    Raises ``ImgGenError`` (an ``ImageRequestError`` naming ``prompts``) when it cannot be read.
    """
    import fsspec
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.json as pa_json
    import pyarrow.parquet as pq

    lower = url.lower().split("?", 1)[0]
    kinds = {".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".tsv": "tsv", ".csv": "csv"}
    kind = next((k for ext, k in kinds.items() if lower.endswith(ext)), None)
    if kind is None:
        raise ImageRequestError(
            f"prompts {url}: unknown table type (use .csv, .tsv, .parquet or .jsonl)", field="prompts"
        )
    try:
        with fsspec.open(url, "rb") as fh:
            if kind == "parquet":
                return pq.read_table(fh)
            if kind == "jsonl":
                return pa_json.read_json(fh)
            if kind == "tsv":
                opts = pa_csv.ParseOptions(delimiter="\t", quote_char=False)
                return pa_csv.read_csv(fh, parse_options=opts)
            return pa_csv.read_csv(fh)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise ImageRequestError(
            f"prompts {url}: cannot read: {type(exc).__name__}: {exc}", field="prompts"
        ) from None


@dataclass
class _Partition:
    prompts: int = 0
    cost: Decimal = field(default_factory=lambda: Decimal(0))


def _cmd_estimate(args: argparse.Namespace) -> int:
    from .catalog import get_catalog, load_catalog
    from .cost import estimate_cost
    from .request import ImageRequest

    catalog = load_catalog(args.catalog) if args.catalog else get_catalog()
    base = {"model": args.model, "size": args.size, "quality": args.quality, "n": args.n}

    def build(prompt: str, row: int | None = None) -> ImageRequest:
        req = ImageRequest.from_row({"prompt": prompt, **base}, row=row)
        return req.validate_for(args.provider, catalog, allow_retired=args.allow_retired)

    # One request without prompt text: the per-request (image) part of every row's estimate.
    single_req = build(args.prompt or "-")
    single = estimate_cost(single_req, args.provider, catalog, include_prompt=args.prompt is not None)
    out: dict[str, Any] = {
        "provider": args.provider,
        "model": args.model,
        "size": args.size,
        "quality": args.quality,
        "n": args.n,
        "currency": "USD",
        "basis": single.basis.value,
        "cost_usd": str(single.usd),
        "per_request_cost_usd": str(single.usd),
        "prompt_text_included": args.prompt is not None,
        "detail": single.detail,
    }
    if args.prompts:
        table = read_prompt_table(args.prompts)
        if args.prompt_column not in table.column_names:
            raise _UsageError(
                f"--prompt-column {args.prompt_column!r} not in {args.prompts} ({table.column_names})"
            )
        prompts = table.column(args.prompt_column).to_pylist()
        if args.partition_column in table.column_names:
            keys = [None if k is None else str(k) for k in table.column(args.partition_column).to_pylist()]
        else:
            keys = [None] * len(prompts)
        partitions: dict[str, _Partition] = {}
        invalid: list[dict[str, Any]] = []
        total = Decimal(0)
        basis = single.basis
        for i, (prompt, key) in enumerate(zip(prompts, keys, strict=True)):
            try:
                cost = estimate_cost(
                    build("" if prompt is None else str(prompt), row=i), args.provider, catalog
                )
            except ImageRequestError as exc:
                invalid.append({"row": i, "field": exc.field, "error": str(exc)})
                continue
            part = partitions.setdefault(key or "(none)", _Partition())
            part.prompts += 1
            part.cost += cost.usd
            total += cost.usd
            basis = cost.basis
        counted = sum(p.prompts for p in partitions.values())
        out.update(
            {
                "prompts_url": args.prompts,
                "basis": basis.value,
                "cost_usd": str(total),
                "prompts": counted,
                "rows": len(prompts),
                "invalid_rows": len(invalid),
                "invalid": invalid[:20],
                "prompt_text_cost_usd": str(total - single.usd * counted),
                "partition_column": args.partition_column,
                "partitions": {
                    k: {"prompts": p.prompts, "cost_usd": str(p.cost)} for k, p in sorted(partitions.items())
                },
            }
        )
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    else:
        _print_estimate(out)
    return 0


def _print_estimate(out: dict[str, Any]) -> None:
    head = f"{out['provider']} {out['model']} {out['size']} {out['quality']} n={out['n']}"
    print(f"{head}: ${out['per_request_cost_usd']} per request ({out['basis']})")
    print(f"  {out['detail']}")
    if "partitions" not in out:
        return
    print(f"{out['prompts']} prompts in {len(out['partitions'])} partitions from {out['prompts_url']}")
    width = max([len(out["partition_column"]), 5, *(len(k) for k in out["partitions"])])
    print(f"{out['partition_column']:<{width}}  {'prompts':>7}  {'cost_usd':>14}")
    for key, part in out["partitions"].items():
        print(f"{key:<{width}}  {part['prompts']:>7}  {part['cost_usd']:>14}")
    print(f"{'total':<{width}}  {out['prompts']:>7}  {out['cost_usd']:>14}  USD ({out['basis']})")
    for bad in out["invalid"]:
        print(f"skipped {bad['error']}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# models


def _pricing_summary(spec: Any) -> str:
    p = spec.pricing
    if p.token_billed:
        text = f"tokens/1M in {p.text_input} img-in {p.image_input or p.text_input} out {p.image_output}"
        return text + (" or per-image table" if p.scheme == "tokens_or_table" else "")
    if p.scheme == "flat":
        return f"flat ${p.flat_usd}/{p.per}"
    if p.scheme == "per_image_table":
        prices = sorted({v for row in p.per_image.values() for v in row.values()})
        return "per image $" + "/".join(str(v) for v in prices)
    assumed = " (assumed)" if p.usd_per_credit_assumed else ""
    return f"credits x ${p.usd_per_credit}{assumed}"


def _sizes_summary(spec: Any) -> str:
    text = ",".join(spec.sizes)
    return text + ",custom" if spec.custom_sizes is not None else text


def _cmd_models(args: argparse.Namespace) -> int:
    from .catalog import get_catalog, load_catalog

    catalog = load_catalog(args.catalog) if args.catalog else get_catalog()
    specs = catalog.models(args.provider)
    if args.json:
        print(json.dumps([s.model_dump(mode="json") for s in specs], ensure_ascii=False))
        return 0
    header = (
        "provider",
        "model",
        "sizes",
        "qualities",
        "n",
        "prompt",
        "edit",
        "mask",
        "inputs",
        "mode",
        "pricing",
    )
    rows = [header]
    for s in specs:
        status = f" RETIRED {s.retired}" if s.is_retired() else ""
        status += " (estimate only)" if s.estimate_only else ""
        rows.append(
            (
                s.provider,
                s.model,
                _sizes_summary(s),
                ",".join(s.qualities),
                f"1-{s.max_n}",
                str(s.prompt_max_chars),
                "yes" if s.edits else "no",
                "yes" if s.masks else "no",
                str(s.max_input_images),
                s.mode,
                _pricing_summary(s) + status,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])
    return 0


def _cmd_emulate(args: argparse.Namespace) -> int:
    try:
        from .testing.emulator import serve  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise _UsageError(f"emulator not available: {exc}") from None
    serve(args.host, args.port)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dagster-imggen`` console script; returns the exit code (0, or 2 on bad
    arguments or input, with one line on stderr)."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "models":
            return _cmd_models(args)
        if args.command == "estimate":
            if args.prompt is not None and args.prompts:
                raise _UsageError("give --prompt or --prompts, not both")
            return _cmd_estimate(args)
        return _cmd_emulate(args)
    except (_UsageError, ImgGenError) as exc:
        message = " ".join(str(exc).split())
        print(f"{_PROG}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

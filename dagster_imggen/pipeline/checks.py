"""Asset-check logic for the pipeline, as plain functions over the image store and the spend table.

The factory wraps each in a Dagster asset check; each returns a ``CheckOutcome`` (passed, metadata,
description) covering the partitions of the run, with a per-partition breakdown in the metadata.

Size rules (``size_rule_violation``): the model's rules from ``ImageRequest.validate_for`` (the
catalog) where available; otherwise the GPT Image custom-size rules from the OpenAI Images API
reference (as summarised in ``../shared/providers/README.md``, as of 2026-11-21): both edges
multiples of 16, aspect at most 3:1, longest edge at most 3840 px, 655,360 to 8,294,400 pixels.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from PIL import Image

from ..errors import ImageRequestError
from .store import ImageStore, ManifestEntry

__all__ = [
    "CheckOutcome",
    "budget_check",
    "decode_check",
    "failure_share_check",
    "pixel_size_check",
    "size_rule_violation",
    "size_rules_check",
]

MIN_PIXELS = 655_360
MAX_PIXELS = 8_294_400
MAX_EDGE = 3840
MAX_ASPECT = 3.0
_FORMAT_OF_EXT = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "webp": "webp"}
_LIST_LIMIT = 20


@dataclass
class CheckOutcome:
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


def _image_entries(
    store: ImageStore, partition_keys: Sequence[str | None]
) -> tuple[list[tuple[str | None, ManifestEntry, str]], list[str | None]]:
    """(partition, entry, url) for every image named by the partitions' manifests; and partitions without one."""
    out: list[tuple[str | None, ManifestEntry, str]] = []
    no_manifest: list[str | None] = []
    for key in partition_keys:
        entries = store.read_manifest(key)
        if entries is None:
            no_manifest.append(key)
            continue
        for e in entries:
            if e.status in ("succeeded", "cached"):
                out.extend((key, e, u) for u in e.uris)
    return out, no_manifest


def _parallel(fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=8) as pool:  # Pillow and fsspec I/O release the GIL
        return list(pool.map(fn, items))


def _summary(bad: list[str], checked: int, what: str, no_manifest: list[str | None]) -> CheckOutcome:
    meta: dict[str, Any] = {"checked": checked, "failures": len(bad)}
    if bad:
        meta["examples"] = "\n".join(bad[:_LIST_LIMIT])
    if no_manifest:
        meta["partitions_without_manifest"] = ", ".join(str(k) for k in no_manifest)
    passed = not bad and not no_manifest
    desc = f"{checked} image(s) checked; {len(bad)} {what}" + (
        f"; {len(no_manifest)} partition(s) without a manifest" if no_manifest else ""
    )
    return CheckOutcome(passed, desc, meta)


def pixel_size_check(store: ImageStore, partition_keys: Sequence[str | None]) -> CheckOutcome:
    """Every image's actual pixel size equals its requested size (``auto`` requests are skipped)."""
    items, no_manifest = _image_entries(store, partition_keys)
    items = [it for it in items if it[1].size and it[1].size != "auto"]

    def one(item: tuple[str | None, ManifestEntry, str]) -> str | None:
        _, entry, url = item
        try:
            with store.fs.open(store.path_of(url), "rb") as f, Image.open(f) as im:
                actual = f"{im.width}x{im.height}"
        except Exception as exc:
            return f"{url}: cannot read header ({type(exc).__name__})"
        return None if actual == entry.size else f"{url}: {actual}, requested {entry.size}"

    bad = [b for b in _parallel(one, items) if b]
    return _summary(bad, len(items), "with another size than requested", no_manifest)


def size_rule_violation(
    model: str | None, width: int, height: int, provider: str | None = None
) -> str | None:
    """Why ``width`` x ``height`` breaks ``model``'s size rules, or None when it obeys them."""
    size = f"{width}x{height}"
    if model and provider:
        from ..request import ImageRequest

        try:
            probe = ImageRequest(prompt="size check", model=model, size=size)
            try:
                probe.validate_for(provider, allow_retired=True)  # type: ignore[call-arg]
            except TypeError:  # a validate_for without allow_retired
                probe.validate_for(provider)
            return None
        except ImageRequestError as exc:
            if exc.field in (None, "size"):
                return str(exc)
            # another field's rule (not the size): fall through to the generic size rules
        except (NotImplementedError, ValueError, KeyError):
            pass
    if width % 16 or height % 16:
        return f"{size}: edges must be multiples of 16"
    if max(width, height) > MAX_EDGE:
        return f"{size}: longest edge over {MAX_EDGE} px"
    if max(width, height) > MAX_ASPECT * min(width, height):
        return f"{size}: aspect over 3:1"
    if not MIN_PIXELS <= width * height <= MAX_PIXELS:
        return f"{size}: {width * height} pixels, outside {MIN_PIXELS}..{MAX_PIXELS}"
    return None


def size_rules_check(
    store: ImageStore, partition_keys: Sequence[str | None], provider: str | None = None
) -> CheckOutcome:
    """Every image's actual size obeys its model's rules (see ``size_rule_violation``)."""
    items, no_manifest = _image_entries(store, partition_keys)
    verdicts: dict[tuple[str | None, int, int], str | None] = {}

    def one(item: tuple[str | None, ManifestEntry, str]) -> tuple[str, str | None, int, int] | str:
        _, entry, url = item
        try:
            with store.fs.open(store.path_of(url), "rb") as f, Image.open(f) as im:
                return url, entry.model, im.width, im.height
        except Exception as exc:
            return f"{url}: cannot read header ({type(exc).__name__})"

    bad: list[str] = []
    for res in _parallel(one, items):
        if isinstance(res, str):
            bad.append(res)
            continue
        url, model, w, h = res
        key = (model, w, h)
        if key not in verdicts:
            verdicts[key] = size_rule_violation(model, w, h, provider)
        if verdicts[key]:
            bad.append(f"{url}: {verdicts[key]}")
    return _summary(bad, len(items), "breaking the model's size rules", no_manifest)


def decode_check(store: ImageStore, partition_keys: Sequence[str | None]) -> CheckOutcome:
    """Every image decodes fully (Pillow ``load``) in the format its extension declares."""
    items, no_manifest = _image_entries(store, partition_keys)

    def one(item: tuple[str | None, ManifestEntry, str]) -> str | None:
        _, _, url = item
        declared = _FORMAT_OF_EXT.get(url.rsplit(".", 1)[-1].lower())
        try:
            data = store.read(url)
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as im:
                    fmt = (im.format or "").lower()
                    im.load()
        except Exception as exc:
            return f"{url}: does not decode ({type(exc).__name__}: {exc})"
        return None if fmt == declared else f"{url}: is {fmt}, declared {declared}"

    bad = [b for b in _parallel(one, items) if b]
    return _summary(bad, len(items), "not decoding in their declared format", no_manifest)


def failure_share_check(
    store: ImageStore, partition_keys: Sequence[str | None], max_failure_share: float
) -> CheckOutcome:
    """Fails when a partition's share of failed or invalid rows exceeds ``max_failure_share`` (0..1)."""
    worst = 0.0
    over: list[str] = []
    meta: dict[str, Any] = {"max_failure_share": float(max_failure_share)}
    rows_total = bad_total = 0
    lines = ["| partition | rows | failed | invalid | share |", "|---|---:|---:|---:|---:|"]
    for key in partition_keys:
        entries = store.read_manifest(key)
        if entries is None:
            over.append(f"{key}: no manifest")
            continue
        failed = sum(e.status == "failed" for e in entries)
        invalid = sum(e.status == "invalid" for e in entries)
        share = (failed + invalid) / len(entries) if entries else 0.0
        rows_total += len(entries)
        bad_total += failed + invalid
        worst = max(worst, share)
        lines.append(f"| {key} | {len(entries)} | {failed} | {invalid} | {share:.1%} |")
        if share > max_failure_share:
            over.append(f"{key}: {failed + invalid}/{len(entries)} = {share:.1%}")
    meta.update({"rows": rows_total, "failed_or_invalid": bad_total, "worst_share": round(worst, 6)})
    if len(lines) > 2:
        from dagster import MetadataValue

        meta["partitions"] = MetadataValue.md("\n".join(lines[: 2 + 50]))
    if over:
        meta["over_threshold"] = "\n".join(over[:_LIST_LIMIT])
        return CheckOutcome(
            False,
            f"failures above {max_failure_share:.1%} in {len(over)} partition(s): " + "; ".join(over[:5]),
            meta,
        )
    return CheckOutcome(True, f"worst failure share {worst:.1%} <= {max_failure_share:.1%}", meta)


def budget_check(total_usd: Decimal, budget_usd: Decimal | None) -> CheckOutcome:
    """Passes while ``total_usd`` <= ``budget_usd`` (USD); always passes without a budget."""
    meta: dict[str, Any] = {"total_usd": str(total_usd)}
    if budget_usd is None:
        return CheckOutcome(True, "no budget set", meta)
    meta["budget_usd"] = str(budget_usd)
    if total_usd > budget_usd:
        return CheckOutcome(False, f"spend ${total_usd} is above the budget ${budget_usd}", meta)
    return CheckOutcome(True, f"spend ${total_usd} within the budget ${budget_usd}", meta)

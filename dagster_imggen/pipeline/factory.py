"""``build_image_generation_assets``: the assets, checks, sensor and schedule of one image pipeline.

A prompt table goes in; images (``{root}/images``), a usage ledger (``{root}/usage``) and a spend
table (``{root}/spend``) come out:

- ``generated_images`` (partitioned, ``BackfillPolicy.single_run()``, ``pool="imggen_<provider>"``):
  reads its partitions' rows, validates each (invalid rows are recorded, the rest go on), skips
  requests whose image is already in the store (``cached``, $0), streams the rest through the
  resource's ``generate_many`` and writes each image as it arrives, then its ledger row. Per
  partition it writes a manifest and a contact sheet and adds metadata with
  ``context.add_asset_metadata(..., partition_key=k)``, so a range run never copies one
  partition's figures onto another.
- ``image_spend`` (unpartitioned, downstream): the whole ledger summed by day, provider, model and
  partition, written as Parquet, with totals as numeric metadata.
- checks on ``generated_images``: pixel size == requested, sizes obey the model's rules, files
  decode in their declared format, and a blocking check on the failure share; a budget check
  (WARN) on ``image_spend``.
"""

import hashlib
import statistics
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, overload

import dagster as dg
import fsspec
import pyarrow as pa
import pyarrow.compute as pc
from dagster import AssetCheckExecutionContext, AssetExecutionContext, SensorEvaluationContext

from ..errors import ImageRequestError
from ..request import ImageRequest
from ..result import Cost, ImageResult
from . import checks as chk
from .ledger import LedgerRow, LedgerWriter, read_ledger
from .prompts import (
    InvalidRow,
    PromptRow,
    PromptSource,
    build_request,
    date_keys,
    partition_values,
    read_prompt_table,
    rows_of,
)
from .spend import summarize, write_spend_table
from .store import CONTACT_SHEET_NAME, UNPARTITIONED, ImageStore, ManifestEntry, write_atomic
from .visuals import contact_sheet, markdown_image

__all__ = ["ImagePipeline", "build_image_generation_assets"]

Partitioning = Literal["column", "daily", "dynamic", "none"]
_TABLE_EXTS = (".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson", ".json", ".gz")
_PREVIEW_IMAGES = 4
_SHEET_IMAGES = 32
_SHEET_THUMB_PX = 128
_SHEET_COLUMNS = 8
_SHEET_DIGEST_NAME = "_contact_sheet.sha256"


@dataclass
class ImagePipeline:
    """What ``build_image_generation_assets`` returns; ``to_definitions`` makes a ``dg.Definitions``."""

    assets: list[dg.AssetsDefinition]
    asset_checks: list[dg.AssetChecksDefinition]
    sensors: list[dg.SensorDefinition]
    schedules: list[dg.ScheduleDefinition]
    jobs: list[dg.JobDefinition]
    output_root: str = ""
    partitions_def: dg.PartitionsDefinition | None = None
    storage_options: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def images_asset(self) -> dg.AssetsDefinition:
        return self.assets[0]

    @property
    def spend_asset(self) -> dg.AssetsDefinition:
        return self.assets[1]

    @property
    def job(self) -> dg.JobDefinition:
        return self.jobs[0]

    @property
    def store(self) -> ImageStore:
        return ImageStore(self.output_root, self.storage_options)

    def to_definitions(self, resources: Mapping[str, Any] | None = None) -> dg.Definitions:
        return dg.Definitions(
            assets=self.assets,
            asset_checks=self.asset_checks,
            sensors=self.sensors,
            schedules=self.schedules,
            jobs=self.jobs,
            resources=dict(resources or {}),
        )


@dataclass
class _Pending:
    key: str | None
    row: PromptRow
    request: ImageRequest
    request_hash: str
    waiting: list[PromptRow] = field(default_factory=list)  # duplicate rows of the same hash


@dataclass
class _Stats:
    """One partition's figures for this run."""

    rows: int = 0
    images: int = 0
    succeeded: int = 0
    cached: int = 0
    recovered: int = 0
    failed: int = 0
    invalid: int = 0
    cost: Decimal = Decimal(0)
    latencies: list[float] = field(default_factory=list)
    tokens: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    entries: list[ManifestEntry] = field(default_factory=list)


def _default_spend_name(name: str) -> str:
    return "image_spend" if name == "generated_images" else f"{name}_spend"


def build_image_generation_assets(
    *,
    prompts: PromptSource,
    output_root: str,
    partitioning: Partitioning = "column",
    partitions_def: dg.PartitionsDefinition | None = None,
    daily_start_date: str | None = None,
    prompt_folder: str | None = None,
    provider_resource_key: str = "image_provider",
    provider_name: str = "local",
    defaults: Mapping[str, Any] | None = None,
    name: str = "generated_images",
    key_prefix: Sequence[str] = (),
    group_name: str | None = "imggen",
    max_failure_share: float = 0.1,
    budget_usd: Decimal | float | None = None,
    owners: Sequence[str] = (),
    tags: Mapping[str, str] | None = None,
    storage_options: Mapping[str, Any] | None = None,
    spend_name: str | None = None,
    ledger_batch_rows: int = 64,
    sensor_interval_s: int = 60,
) -> ImagePipeline:
    """Build the assets, checks, job, sensor and schedule of one image pipeline.

    - ``prompts``: the prompt table (``PromptSource``).
    - ``output_root``: fsspec URL of the outputs (local path, ``memory://...``, ``s3://bucket/prefix``);
      ``storage_options`` go to fsspec for it (credentials, endpoint_url; never logged).
    - ``partitioning``: ``"column"`` (static, one partition per value of ``prompts.partition_column``,
      read when the definitions load), ``"daily"`` (rows whose ``prompts.date_column`` is that day,
      or, when ``prompts.url`` holds ``{date}``, that day's file; a daily schedule is added),
      ``"dynamic"`` (one partition per file in ``prompt_folder``, added by a sensor that also
      requests its run) or ``"none"``. ``partitions_def`` overrides the definition itself.
    - ``provider_resource_key``: the ``ImageProviderResource`` to use; ``provider_name`` names the
      pool ``imggen_<provider_name>`` shared by every run of that provider.
    - ``defaults``: request fields used when a row does not override them (model, size, quality,
      n, output_format, ...).
    - ``max_failure_share``: 0..1; the blocking check fails a partition above it.
    - ``budget_usd``: the spend check warns above this many USD.

    Raises ``ImageRequestError`` when the table lacks a named column, and ``ValueError`` for an
    inconsistent combination of arguments.
    """
    with warnings.catch_warnings():
        # BackfillPolicy is beta in Dagster 1.13; single-run backfills are this factory's design.
        warnings.simplefilter("ignore", dg.BetaWarning)
        return _build(**locals())


def _build(
    *,
    prompts: PromptSource,
    output_root: str,
    partitioning: Partitioning,
    partitions_def: dg.PartitionsDefinition | None,
    daily_start_date: str | None,
    prompt_folder: str | None,
    provider_resource_key: str,
    provider_name: str,
    defaults: Mapping[str, Any] | None,
    name: str,
    key_prefix: Sequence[str],
    group_name: str | None,
    max_failure_share: float,
    budget_usd: Decimal | float | None,
    owners: Sequence[str],
    tags: Mapping[str, str] | None,
    storage_options: Mapping[str, Any] | None,
    spend_name: str | None,
    ledger_batch_rows: int,
    sensor_interval_s: int,
) -> ImagePipeline:
    if not 0 <= max_failure_share <= 1:
        raise ValueError(f"max_failure_share must be between 0 and 1, not {max_failure_share}")
    defaults = dict(defaults or {})
    storage = dict(storage_options or {})
    budget = Decimal(str(budget_usd)) if budget_usd is not None else None
    spend_asset_name = spend_name or _default_spend_name(name)
    filter_column: str | None = None
    by_file = False

    # ---------------------------------------------------------------- partitions
    pdef: dg.PartitionsDefinition | None
    if partitioning == "column":
        if not prompts.partition_column:
            raise ValueError("partitioning='column' needs PromptSource.partition_column")
        filter_column = prompts.partition_column
        pdef = partitions_def or dg.StaticPartitionsDefinition(
            partition_values(read_prompt_table(prompts), prompts.partition_column)
        )
    elif partitioning == "daily":
        by_file = "{date}" in prompts.url
        if not by_file:
            if not prompts.date_column:
                raise ValueError(
                    "partitioning='daily' needs PromptSource.date_column or a '{date}' in the URL"
                )
            filter_column = prompts.date_column
        start = daily_start_date
        if start is None and not by_file and partitions_def is None:
            keys = date_keys(read_prompt_table(prompts), prompts.date_column or "")
            start = keys[0] if keys else None
        if start is None and partitions_def is None:
            raise ValueError("partitioning='daily' needs daily_start_date")
        pdef = partitions_def or dg.DailyPartitionsDefinition(start_date=start or "")
    elif partitioning == "dynamic":
        if not prompt_folder:
            raise ValueError("partitioning='dynamic' needs prompt_folder")
        pdef = partitions_def or dg.DynamicPartitionsDefinition(name=f"{name}_files")
    elif partitioning == "none":
        pdef = partitions_def
    else:
        raise ValueError(f"unknown partitioning {partitioning!r}")

    def rows_for(key: str | None, log: Any, table_cache: dict[str, pa.Table]) -> list[PromptRow]:
        """The prompt rows of one partition; ``table_cache`` lives for one run, so edits are picked up."""
        label = key or UNPARTITIONED
        if partitioning == "dynamic":
            url = f"{prompt_folder.rstrip('/')}/{key}"  # type: ignore[union-attr]
        elif by_file:
            url = prompts.url.replace("{date}", label)
        else:
            url = prompts.url
        if url not in table_cache:
            try:
                table_cache[url] = read_prompt_table(prompts, url)
            except FileNotFoundError:
                log.warning(f"prompt table {url} not found: partition {label} has no rows")
                return []
        fc = filter_column if key is not None else None
        return list(rows_of(table_cache[url], prompts, partition_key=label, filter_column=fc))

    # ---------------------------------------------------------------- generated_images
    asset_kwargs: dict[str, Any] = {}
    if owners:
        asset_kwargs["owners"] = list(owners)
    if tags:
        asset_kwargs["tags"] = dict(tags)

    @dg.asset(
        name=name,
        key_prefix=list(key_prefix) or None,
        partitions_def=pdef,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=f"imggen_{provider_name}",
        required_resource_keys={provider_resource_key},
        group_name=group_name,
        # Every provider here serves OpenAI's GPT Image models (the local one mirrors them).
        kinds={"openai", "parquet"},
        description=(
            f"Images generated by the `{provider_name}` provider from the prompt table {prompts.url} "
            f"({partitioning} partitions), written under {output_root}/images; every request, paid or "
            f"failed, is a row of the Parquet usage ledger under {output_root}/usage. A re-run pays only "
            "for prompts whose image is not in the store yet."
        ),
        **asset_kwargs,
    )
    def _images(context: AssetExecutionContext) -> None:
        resource = getattr(context.resources, provider_resource_key)
        keys: list[str | None] = list(context.partition_keys) if pdef is not None else [None]
        try:
            _generate(
                context=context,
                resource=resource,
                keys=keys,
                rows_for=rows_for,
                defaults=defaults,
                output_root=output_root,
                storage=storage,
                fallback_provider=provider_name,
                ledger_batch_rows=ledger_batch_rows,
            )
        except ImageRequestError as exc:  # a table-level fault (e.g. a missing column): one clear line
            raise dg.Failure(description=str(exc), allow_retries=False) from None

    images_asset = _images

    # ---------------------------------------------------------------- image_spend
    @dg.asset(
        name=spend_asset_name,
        key_prefix=list(key_prefix) or None,
        deps=[images_asset.key],
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=group_name,
        kinds={"parquet"},
        description=(
            f"Spend in USD by day, provider, model and partition, aggregated from the usage ledger under "
            f"{output_root}/usage and written to {output_root}/spend/spend.parquet."
        ),
        **asset_kwargs,
    )
    def _spend(context: AssetExecutionContext) -> dg.MaterializeResult:
        spend, url = write_spend_table(output_root, storage)
        s = summarize(spend)
        meta: dict[str, Any] = {
            "imggen/total_usd": dg.MetadataValue.float(float(s.total_usd)),
            "imggen/images": dg.MetadataValue.int(s.images),
            "imggen/failed": dg.MetadataValue.int(s.failed),
            "imggen/cached": dg.MetadataValue.int(s.cached),
            "imggen/requests": dg.MetadataValue.int(s.requests),
            "imggen/usd_per_image": dg.MetadataValue.float(float(s.usd_per_image)),
            "imggen/total_usd_exact": dg.MetadataValue.text(str(s.total_usd)),
            "imggen/spend_table": _path_value(url),
            "imggen/spend": dg.MetadataValue.md(_spend_markdown(spend)),
        }
        chart = _try_spend_chart(spend, context.log)
        if chart is not None:
            fs, root = fsspec.core.url_to_fs(output_root, **storage)
            from .store import write_atomic

            target = f"{root.rstrip('/')}/spend/spend_chart.png"
            write_atomic(fs, target, chart)
            meta["imggen/spend_chart"] = _path_value(ImageStore(output_root, storage).url(target))
            meta["imggen/spend"] = dg.MetadataValue.md(
                markdown_image(chart, alt="spend over time") + "\n\n" + _spend_markdown(spend)
            )
        return dg.MaterializeResult(metadata=meta)

    spend_asset = _spend

    # ---------------------------------------------------------------- checks
    def keys_of(context: AssetCheckExecutionContext) -> list[str | None]:
        if pdef is None:
            return [None]
        oc = context.op_execution_context
        if oc.has_partition_key or oc.has_partition_key_range:
            return list(oc.partition_keys)
        return list(pdef.get_partition_keys(dynamic_partitions_store=context.instance))

    def store() -> ImageStore:
        return ImageStore(output_root, storage)

    def as_result(
        outcome: chk.CheckOutcome, severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR
    ) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(
            passed=outcome.passed,
            metadata=outcome.metadata,
            description=outcome.description,
            severity=severity,
        )

    @dg.asset_check(
        asset=images_asset,
        name="pixel_size_matches_request",
        description="Every image's pixel size equals the requested size (except auto).",
    )
    def _pixel_check(context: AssetCheckExecutionContext) -> dg.AssetCheckResult:
        return as_result(chk.pixel_size_check(store(), keys_of(context)))

    @dg.asset_check(
        asset=images_asset,
        name="size_obeys_model_rules",
        description="Every image size obeys its model's rules (multiples of 16, pixel bounds, aspect at most 3:1).",
        required_resource_keys={provider_resource_key},
    )
    def _rules_check(context: AssetCheckExecutionContext) -> dg.AssetCheckResult:
        resource = getattr(context.resources, provider_resource_key)
        provider = getattr(resource, "provider_name", "") or provider_name
        return as_result(chk.size_rules_check(store(), keys_of(context), provider))

    @dg.asset_check(
        asset=images_asset,
        name="files_decode",
        description="Every file decodes fully in the format its extension declares.",
    )
    def _decode_check(context: AssetCheckExecutionContext) -> dg.AssetCheckResult:
        return as_result(chk.decode_check(store(), keys_of(context)))

    @dg.asset_check(
        asset=images_asset,
        name="failure_share_below_threshold",
        blocking=True,
        description=f"Blocking: fails a partition whose failed+invalid share exceeds {max_failure_share:.1%}.",
    )
    def _share_check(context: AssetCheckExecutionContext) -> dg.AssetCheckResult:
        return as_result(chk.failure_share_check(store(), keys_of(context), max_failure_share))

    @dg.asset_check(
        asset=spend_asset,
        name="spend_within_budget",
        description=f"Warns when total spend exceeds the budget ({'none' if budget is None else f'${budget}'}).",
    )
    def _budget_check(context: AssetCheckExecutionContext) -> dg.AssetCheckResult:
        from .ledger import read_ledger
        from .spend import build_spend_table

        total = summarize(build_spend_table(read_ledger(output_root, storage))).total_usd
        return as_result(chk.budget_check(total, budget), dg.AssetCheckSeverity.WARN)

    asset_checks = [_pixel_check, _rules_check, _decode_check, _share_check, _budget_check]

    # ---------------------------------------------------------------- job, schedule, sensor
    job = dg.define_asset_job(
        f"{name}_job",
        selection=dg.AssetSelection.assets(images_asset, spend_asset),
        partitions_def=pdef,
        description=f"Generate images from {prompts.url} and update the spend table.",
    )
    schedules: list[Any] = []
    sensors: list[dg.SensorDefinition] = []
    if partitioning == "daily" and isinstance(pdef, dg.TimeWindowPartitionsDefinition):
        schedules.append(dg.build_schedule_from_partitioned_job(job, name=f"{name}_daily_schedule"))
    if partitioning == "dynamic" and isinstance(pdef, dg.DynamicPartitionsDefinition):
        sensors.append(
            _folder_sensor(
                f"{name}_new_prompt_files", job, pdef, prompt_folder or "", storage, sensor_interval_s
            )
        )

    return ImagePipeline(
        assets=[images_asset, spend_asset],
        asset_checks=asset_checks,
        sensors=sensors,
        schedules=schedules,
        jobs=[job],  # type: ignore[list-item]
        output_root=output_root,
        partitions_def=pdef,
        storage_options=storage,
    )


# ==================================================================== the generation run


def _explicit_quality(request: ImageRequest, provider: str, resource: Any) -> ImageRequest:
    """Make ``quality`` explicit (the resource's default, else the catalog's) so the hash is stable."""
    if request.quality is not None:
        return request
    try:
        from ..cost import resolve_quality

        quality = resolve_quality(request, provider, getattr(resource, "default_quality", None))
    except NotImplementedError:
        return request
    return request.model_copy(update={"quality": quality})


def _generate(
    *,
    context: AssetExecutionContext,
    resource: Any,
    keys: list[str | None],
    rows_for: Callable[[str | None, Any, dict[str, pa.Table]], list[PromptRow]],
    defaults: Mapping[str, Any],
    output_root: str,
    storage: Mapping[str, Any],
    fallback_provider: str,
    ledger_batch_rows: int,
) -> None:
    provider = getattr(resource, "provider_name", "") or fallback_provider
    store = ImageStore(output_root, storage)
    run_id = context.run.run_id
    log = context.log
    stats: dict[str | None, _Stats] = {k: _Stats() for k in keys}
    in_flight: dict[int, _Pending] = {}  # id(request) -> pending
    by_hash: dict[tuple[str | None, str], _Pending] = {}
    tables: dict[str, pa.Table] = {}  # prompt tables read in this run
    ledgered = _ledgered_hashes(output_root, storage, keys)
    settled: set[tuple[str | None, str]] = set()  # hashes recovered in this run
    done: dict[tuple[str | None, str], tuple[str, ...]] = {}  # hashes generated in this run -> urls

    with LedgerWriter(output_root, run_id, storage_options=storage, batch_rows=ledger_batch_rows) as ledger:

        def base_row(key: str | None, row: PromptRow, status: str, request: ImageRequest | None) -> LedgerRow:
            return LedgerRow(
                run_id=run_id,
                partition_key=key or UNPARTITIONED,
                prompt_id=row.prompt_id,
                row=row.row,
                status=status,
                provider=provider,
                model=request.model if request else None,
                size=request.size if request else None,
                quality=request.quality if request else None,
                n=request.n if request else None,
            )

        def entry(
            row: PromptRow,
            status: str,
            request: ImageRequest | None,
            h: str | None,
            uris: Sequence[str] = (),
            error: str | None = None,
        ) -> ManifestEntry:
            return ManifestEntry(
                prompt_id=row.prompt_id,
                row=row.row,
                request_hash=h,
                status=status,
                uris=tuple(uris),
                prompt=str(row.fields.get("prompt") or "")[:300],
                model=request.model if request else None,
                size=request.size if request else None,
                output_format=request.output_format if request else None,
                error=error,
            )

        def record_cached(
            key: str | None,
            row: PromptRow,
            request: ImageRequest,
            h: str,
            uris: Sequence[str],
            paid_in_this_run: bool = False,
        ) -> None:
            st = stats[key]
            if paid_in_this_run or h in ledgered.get(key or UNPARTITIONED, ()) or (key, h) in settled:
                lr = base_row(key, row, "cached", request)
                lr.request_hash, lr.image_uris, lr.cost_basis = h, list(uris), "cached"
                ledger.add(lr)
                st.cached += 1
                st.entries.append(entry(row, "cached", request, h, uris))
                return
            # The image is in the store but no ledger row names it: a crash lost the row after the
            # image was written. Record the paid call now, once, at the cost engine's estimate.
            lr = base_row(key, row, "succeeded", request)
            cost = _estimate(resource, request, provider)
            lr.request_hash, lr.image_uris = h, list(uris)
            lr.cost_usd, lr.cost_basis = cost.usd, cost.basis.value
            lr.note = "recovered: image found in the store without a ledger row; cost estimated"
            ledger.add(lr)
            settled.add((key, h))
            st.recovered += 1
            st.cost += cost.usd
            st.entries.append(entry(row, "succeeded", request, h, uris))

        def requests() -> Iterator[ImageRequest]:
            for key in keys:
                existing = store.existing(key)
                rows = rows_for(key, log, tables)
                st = stats[key]
                st.rows = len(rows)
                for row in rows:
                    built = build_request(row, defaults, provider)
                    if not isinstance(built, InvalidRow):
                        request = _explicit_quality(built, provider, resource)
                        try:  # reads the reference images, which may be missing
                            h = request.request_hash()
                        except ImageRequestError as exc:
                            built = InvalidRow(row, exc.field, f"row {row.row}: {exc}")
                    if isinstance(built, InvalidRow):
                        lr = base_row(key, row, "invalid", None)
                        lr.error = built.message
                        ledger.add(lr)
                        st.invalid += 1
                        st.entries.append(entry(row, "invalid", None, None, error=built.message))
                        log.warning(f"partition {key}: {built.message}")
                        continue
                    if h in existing:
                        record_cached(key, row, request, h, existing[h])
                        continue
                    if (key, h) in done:  # a duplicate row whose twin succeeded earlier in this run
                        record_cached(key, row, request, h, done[(key, h)], True)
                        continue
                    dup = by_hash.get((key, h))
                    if dup is not None:
                        dup.waiting.append(row)
                        continue
                    pending = _Pending(key, row, request, h)
                    by_hash[(key, h)] = pending
                    in_flight[id(request)] = pending
                    yield request

        for result in resource.generate_many(requests()):
            pending = in_flight.pop(id(result.request))
            key = pending.key
            uris = _record_result(
                key, pending, result, store, ledger, stats[key], provider, base_row, entry, record_cached
            )
            by_hash.pop((key, pending.request_hash), None)
            if uris:
                done[(key, pending.request_hash)] = tuple(uris)

        ledger.flush()
        for key in keys:
            st = stats[key]
            store.write_manifest(key, st.entries, run_id=run_id)
            meta = _partition_metadata(key, st, store, context.log)
            if key is None:
                context.add_asset_metadata(meta)
            else:
                context.add_asset_metadata(meta, partition_key=key)
            log.info(
                f"partition {key or UNPARTITIONED}: {st.rows} rows, {st.succeeded} generated ({st.images} images), "
                f"{st.cached} cached, {st.failed} failed, {st.invalid} invalid, ${st.cost}"
            )


def _record_result(
    key: str | None,
    pending: _Pending,
    result: ImageResult,
    store: ImageStore,
    ledger: LedgerWriter,
    st: _Stats,
    provider: str,
    base_row: Callable[..., LedgerRow],
    entry: Callable[..., ManifestEntry],
    record_cached: Callable[..., None],
) -> list[str]:
    """Write the result's images (first), then its ledger row; settle duplicate rows of the same hash.

    Returns the URLs of the images written (empty when the request failed).
    """
    request, h, row = pending.request, pending.request_hash, pending.row
    uris: list[str] = []
    error: str | None = None
    if result.ok:
        try:
            for i, image in enumerate(result.images):
                uris.append(store.write_image(key, row.prompt_id, h, i, image.extension, image.data))
        except Exception as exc:  # the images were paid for: keep the ledger row, mark the failure
            error = f"store write failed: {type(exc).__name__}: {exc}"
        if not result.images and error is None:
            error = "provider returned no images"
    else:
        error = f"{type(result.error).__name__}: {result.error}"
    status = "succeeded" if error is None else "failed"
    lr = base_row(key, row, status, request)
    usage = result.usage
    lr.request_hash = h
    lr.provider = result.provider or provider
    lr.model = result.model or request.model
    lr.size = request.size
    lr.attempts = result.attempts
    lr.latency_s = result.latency_s
    if usage is not None:
        lr.input_text_tokens = usage.input_text_tokens
        lr.input_image_tokens = usage.input_image_tokens
        lr.cached_input_tokens = usage.cached_input_tokens
        lr.output_tokens = usage.output_tokens
        model_key = f"{lr.provider}.{lr.model}"
        st.tokens[f"{model_key}.input_tokens"] += usage.input_tokens
        st.tokens[f"{model_key}.output_tokens"] += usage.output_tokens
    lr.credits = result.credits
    lr.cost_usd = result.cost.usd
    lr.cost_basis = result.cost.basis.value
    lr.possibly_billed = result.possibly_billed
    lr.provider_request_id = result.request_id
    lr.image_uris = uris
    lr.error = error
    ledger.add(lr)
    st.cost += result.cost.usd
    st.entries.append(entry(row, status, request, h, uris, error))
    if status == "succeeded":
        st.succeeded += 1
        st.images += len(uris)
        st.latencies.append(result.latency_s)
    else:
        st.failed += 1
    for dup in pending.waiting:
        if status == "succeeded":
            record_cached(key, dup, request, h, uris, True)
        else:
            dup_lr = base_row(key, dup, "failed", request)
            dup_lr.request_hash = h
            dup_lr.error = f"same request as row {row.row}, which failed: {error}"
            ledger.add(dup_lr)
            st.failed += 1
            st.entries.append(entry(dup, "failed", request, h, (), dup_lr.error))
    return uris if status == "succeeded" else []


def _estimate(resource: Any, request: ImageRequest, provider: str) -> Cost:
    try:
        return resource.estimate(request)  # type: ignore[no-any-return]
    except Exception:
        from ..cost import estimate_cost

        try:
            return estimate_cost(request, provider)
        except Exception:
            return Cost.zero(detail="no estimate")


def _ledgered_hashes(
    root: str, storage: Mapping[str, Any], keys: Sequence[str | None]
) -> dict[str, set[str]]:
    """Request hashes with a succeeded ledger row, per partition key (the run's partitions only)."""
    labels = [k or UNPARTITIONED for k in keys]
    table = read_ledger(
        root,
        storage,
        filter=(pc.field("partition_key").isin(labels)) & (pc.field("status") == "succeeded"),
        columns=["partition_key", "request_hash"],
    )
    out: dict[str, set[str]] = defaultdict(set)
    for key, h in zip(
        table.column("partition_key").to_pylist(), table.column("request_hash").to_pylist(), strict=True
    ):
        if h:
            out[key].add(h)
    return out


# ==================================================================== metadata helpers


def _path_value(url: str) -> dg.MetadataValue:
    return dg.MetadataValue.path(url) if "://" not in url else dg.MetadataValue.url(url)


def _partition_metadata(key: str | None, st: _Stats, store: ImageStore, log: Any) -> dict[str, Any]:
    cost = st.cost
    meta: dict[str, Any] = {
        "imggen/rows": dg.MetadataValue.int(st.rows),
        "imggen/images": dg.MetadataValue.int(st.images),
        "imggen/failed": dg.MetadataValue.int(st.failed + st.invalid),
        "imggen/invalid": dg.MetadataValue.int(st.invalid),
        "imggen/cached": dg.MetadataValue.int(st.cached),
        "imggen/recovered": dg.MetadataValue.int(st.recovered),
        # Display figures for Dagster's plots; the exact Decimal is in the ledger and in *_exact.
        "imggen/cost_usd": dg.MetadataValue.float(float(cost)),
        "imggen/cost_usd_exact": dg.MetadataValue.text(str(cost)),
        "imggen/usd_per_image": dg.MetadataValue.float(
            round(float(cost / st.images), 9) if st.images else 0.0
        ),
        "imggen/p50_latency_s": dg.MetadataValue.float(
            round(statistics.median(st.latencies), 4) if st.latencies else 0.0
        ),
        "imggen/manifest": _path_value(store.url(store.manifest_path(key))),
    }
    for name, value in sorted(st.tokens.items()):
        meta[name] = dg.MetadataValue.int(value)
    shown = [e for e in sorted(st.entries, key=lambda e: e.row) if e.uris]
    sheet = _try_contact_sheet(key, shown[:_SHEET_IMAGES], store, log)
    if shown:
        # The UI is a web page: it cannot load file:// images, so the contact sheet is embedded.
        lines = [
            f"**{key or UNPARTITIONED}**: {st.images} new, {st.cached} cached, {st.failed + st.invalid} failed",
            "",
        ]
        if sheet is not None:
            lines += [markdown_image(sheet[1], alt=f"contact sheet of {key or UNPARTITIONED}"), ""]
        for e in shown[:_PREVIEW_IMAGES]:
            lines.append(f"- `{e.prompt_id}` {_md_escape(e.prompt or '')[:120]}")
        meta["imggen/preview"] = dg.MetadataValue.md("\n".join(lines))
    failures = [e for e in st.entries if e.status in ("failed", "invalid")]
    if failures:
        meta["imggen/failures"] = dg.MetadataValue.md(
            "\n".join(
                f"- row {e.row} `{e.prompt_id}` ({e.status}): {_md_escape(e.error or '')[:200]}"
                for e in failures[:20]
            )
        )
    if sheet is not None:
        meta["imggen/contact_sheet"] = _path_value(sheet[0])
    return meta


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("[", "\\[").replace("]", "\\]")


class _StoreReads(Sequence[bytes]):
    """The bytes of store URLs, read on access: a contact sheet of 32 photo-sized PNGs no longer
    holds ~85 MB at once (benchmarks/README.md, benchmark 3)."""

    def __init__(self, store: ImageStore, urls: Sequence[str]) -> None:
        self._store, self._urls = store, list(urls)

    def __len__(self) -> int:
        return len(self._urls)

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> list[bytes]: ...
    def __getitem__(self, index: int | slice) -> bytes | list[bytes]:
        if isinstance(index, slice):
            return [self._store.read(u) for u in self._urls[index]]
        return self._store.read(self._urls[index])


def _sheet_digest(shown: Sequence[ManifestEntry]) -> str:
    """What a contact sheet shows: its images (by URL, in order) and their labels."""
    h = hashlib.sha256(f"v1 {_SHEET_THUMB_PX} {_SHEET_COLUMNS}\n".encode())
    for e in shown:
        h.update(f"{e.prompt_id}\0{e.uris[0]}\n".encode())
    return h.hexdigest()


def _reuse_contact_sheet(key: str | None, digest: str, store: ImageStore) -> tuple[str, bytes] | None:
    """The partition's existing sheet when it was drawn from exactly these images, else None."""
    directory = store.partition_dir(key)
    try:
        if bytes(store.fs.cat_file(f"{directory}/{_SHEET_DIGEST_NAME}")).decode() != digest:
            return None
        path = f"{directory}/{CONTACT_SHEET_NAME}"
        return store.url(path), bytes(store.fs.cat_file(path))
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def _try_contact_sheet(
    key: str | None, shown: Sequence[ManifestEntry], store: ImageStore, log: Any
) -> tuple[str, bytes] | None:
    """Write the partition's contact sheet beside its images; return its URL and its PNG bytes.

    A partition whose shown images were all cached (nothing new in this run) keeps the sheet drawn
    by an earlier run when it shows the same images (``_contact_sheet.sha256`` beside it): decoding
    32 full-size PNGs per partition was half of a fully cached run of PartiPrompts
    (benchmarks/README.md, benchmark 4).
    """
    try:
        digest = _sheet_digest(shown)
        if shown and all(e.status == "cached" for e in shown):
            reused = _reuse_contact_sheet(key, digest, store)
            if reused is not None:
                return reused
        digest_path = f"{store.partition_dir(key)}/{_SHEET_DIGEST_NAME}"
        if store.fs.exists(digest_path):
            store.fs.rm(digest_path)  # never leave a digest naming an older sheet
        images = _StoreReads(store, [e.uris[0] for e in shown])  # one image in memory at a time
        png = contact_sheet(
            images, thumb_px=_SHEET_THUMB_PX, columns=_SHEET_COLUMNS, labels=[e.prompt_id for e in shown]
        )
        url = store.write_contact_sheet(key, png)
        write_atomic(store.fs, digest_path, digest.encode())
        return url, png
    except Exception as exc:  # a picture must never fail the run that paid for the images
        log.warning(f"contact sheet for {key}: {type(exc).__name__}: {exc}")
        return None


def _try_spend_chart(spend: pa.Table, log: Any) -> bytes | None:
    try:
        from .visuals import spend_chart

        return spend_chart(spend)
    except Exception as exc:  # matplotlib missing, or an empty ledger
        log.warning(f"spend chart skipped: {type(exc).__name__}: {exc}")
        return None


def _spend_markdown(spend: pa.Table, limit: int = 40) -> str:
    cols = ["day", "provider", "model", "partition_key", "requests", "images", "failed", "cached", "cost_usd"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for rec in spend.select(cols).slice(0, limit).to_pylist():
        lines.append("| " + " | ".join(_md_escape(str(rec[c])) for c in cols) + " |")
    if spend.num_rows > limit:
        lines.append(f"\n... {spend.num_rows - limit} more rows in the Parquet table")
    return "\n".join(lines)


# ==================================================================== sensor


def _folder_sensor(
    name: str,
    job: Any,
    pdef: dg.DynamicPartitionsDefinition,
    folder: str,
    storage: Mapping[str, Any],
    interval_s: int,
) -> dg.SensorDefinition:
    @dg.sensor(
        name=name,
        job=job,
        minimum_interval_seconds=interval_s,
        description=f"A partition and a run per new prompt file in {folder}.",
    )
    def _sensor(context: SensorEvaluationContext) -> dg.SensorResult:
        fs, path = fsspec.core.url_to_fs(folder, **dict(storage))
        fs.invalidate_cache(path)
        try:
            names = sorted(str(p).rsplit("/", 1)[-1] for p in fs.ls(path, detail=False))
        except FileNotFoundError:
            return dg.SensorResult(skip_reason=f"{folder} does not exist")
        known = set(context.instance.get_dynamic_partitions(pdef.name or ""))
        new = []
        for file_name in names:
            if file_name.startswith((".", "_")) or not file_name.lower().endswith(_TABLE_EXTS):
                continue
            if "..." in file_name or file_name in known:
                continue
            new.append(file_name)
        if not new:
            return dg.SensorResult(skip_reason="no new prompt files")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(partition_key=k, run_key=k) for k in new],
            dynamic_partitions_requests=[pdef.build_add_request(new)],
        )

    return _sensor

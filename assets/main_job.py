"""The main job: every partition of the prompt table in ONE run, then where the outputs are.

    python -m assets.main_job            # from the repository root

Uses ``$DAGSTER_HOME`` when set, else ``.dagster_home/`` in the repository (created, gitignored), so
it works on a fresh machine and its runs show up later in ``DAGSTER_HOME=.dagster_home dagster dev``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    if not os.environ.get("DAGSTER_HOME"):
        home = REPO / ".dagster_home"
        home.mkdir(exist_ok=True)
        config = home / "dagster.yaml"
        if not config.exists():
            config.write_text("telemetry:\n  enabled: false\n")
        os.environ["DAGSTER_HOME"] = str(home)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))

    import dagster as dg

    from assets import PIPELINE
    from dagster_imggen.pipeline import build_spend_table, read_ledger, summarize
    from definitions import defs

    pipeline = PIPELINE
    job = defs.resolve_job_def(pipeline.job.name)
    pdef = pipeline.partitions_def
    tags: dict[str, str] = {}
    if pdef is not None:
        keys = pdef.get_partition_keys()
        tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
        print(f"main job: {len(keys)} partitions ({keys[0]} ... {keys[-1]}) in one run")
    started = time.monotonic()
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, tags=tags, raise_on_error=False)
    elapsed = time.monotonic() - started

    store = pipeline.store
    root = pipeline.output_root
    spend = build_spend_table(read_ledger(root, pipeline.storage_options))
    totals = summarize(spend)
    checks = result.get_asset_check_evaluations()
    print(f"run {result.run_id}: {'succeeded' if result.success else 'FAILED'} in {elapsed:.1f} s")
    print(f"  images : {store.url(store.root + '/images')}")
    print(f"  ledger : {store.url(store.root + '/usage')}  (Parquet, hive-partitioned by partition_key)")
    print(f"  spend  : {store.url(store.root + '/spend/spend.parquet')}")
    print(
        f"  totals : {totals.images} images, {totals.cached} cached, {totals.failed} failed, "
        f"${totals.total_usd} (all runs in the ledger)"
    )
    for ev in checks:
        print(f"  check  : {ev.check_name}: {'passed' if ev.passed else 'FAILED'}")
    return 0 if result.success else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Done-means (2): failures injected at the provider emulator are recorded, fail the blocking check,
and a re-run requests only the failed prompts (counted at the emulator)."""

from __future__ import annotations

import uuid

import dagster as dg
import fsspec
import pyarrow.compute as pc
from pipeline_support import materialize_range

from dagster_imggen.pipeline import PromptSource, build_image_generation_assets, read_ledger
from dagster_imggen.providers.openai import OpenAIImageResource
from dagster_imggen.testing import FaultSpec, ProviderEmulator

PROMPTS = [f"a watercolour of lighthouse number {i}" for i in range(10)]
FAILING = {PROMPTS[1], PROMPTS[4], PROMPTS[7]}


def _table() -> str:
    url = f"memory://pipeline-emulator-{uuid.uuid4().hex[:8]}/prompts.csv"
    lines = ["Prompt,Category"] + [f"{p},Coast" for p in PROMPTS] + ["a quiet harbour,Harbour"]
    with fsspec.open(url, "w") as f:
        f.write("\n".join(lines))
    return url


def test_injected_failures_are_recorded_blocked_and_only_they_are_retried(tmp_path) -> None:
    out = str(tmp_path / "out")
    pipeline = build_image_generation_assets(
        prompts=PromptSource(url=_table(), partition_column="Category"),
        output_root=out,
        provider_name="openai",
        defaults={"model": "gpt-image-2", "size": "1024x1024", "quality": "low"},
        max_failure_share=0.1,
    )
    instance = dg.DagsterInstance.ephemeral()
    with ProviderEmulator() as emu:
        resource = OpenAIImageResource(
            api_key="sk-test-pipeline", base_url=emu.base_url("openai"), max_retries=1
        )
        emu.inject(
            "openai",
            FaultSpec(
                "status", status=400, code="moderation_blocked", count=None, match=FAILING.__contains__
            ),
        )

        first = materialize_range(pipeline, ["Coast", "Harbour"], resource, instance, raise_on_error=False)
        assert not first.success  # the blocking check stopped the run
        checks = {e.check_name: e for e in first.get_asset_check_evaluations()}
        share = checks["failure_share_below_threshold"]
        assert not share.passed and "Coast" in (share.description or "")
        assert checks["files_decode"].passed and checks["pixel_size_matches_request"].passed
        first_calls = [c.json["prompt"] for c in emu.calls("openai", op="generate")]
        assert sorted(first_calls) == sorted([*PROMPTS, "a quiet harbour"])  # moderation is never retried

        ledger = read_ledger(out)
        failed = ledger.filter(pc.equal(ledger.column("status"), "failed")).to_pylist()
        assert len(failed) == 3
        assert all("ContentRejectedError" in (r["error"] or "") for r in failed)
        assert {r["partition_key"] for r in failed} == {"Coast"}
        manifest = pipeline.store.read_manifest("Coast") or []
        assert sorted(e.prompt for e in manifest if e.status == "failed") == sorted(FAILING)
        assert "sk-test-pipeline" not in str(ledger.to_pylist())  # no key in the ledger

        emu.clear_faults("openai")
        before = len(emu.calls("openai", op="generate"))
        second = materialize_range(pipeline, ["Coast", "Harbour"], resource, instance)
        assert second.success
        retried = [c.json["prompt"] for c in emu.calls("openai", op="generate")[before:]]
        assert sorted(retried) == sorted(FAILING)
        assert all(e.passed for e in second.get_asset_check_evaluations())

    ledger = read_ledger(out)
    runs = ledger.filter(pc.equal(ledger.column("run_id"), second.run_id)).to_pylist()
    by_status: dict[str, int] = {}
    for r in runs:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    assert by_status == {"succeeded": 3, "cached": 8}
    paid = [r for r in runs if r["cost_usd"] > 0]
    assert len(paid) == 3  # pays only for what was missing

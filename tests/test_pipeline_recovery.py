"""Nothing paid for is lost: a run that dies mid-stream keeps the rows of the images it wrote, and
images whose ledger rows were lost (a hard kill) are recorded once on the next run, at the estimate."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterable, Iterator
from decimal import Decimal

import dagster as dg
import fsspec
import pyarrow.compute as pc
from pipeline_support import CALLS, CountingLocalResource, materialize_range

from dagster_imggen.pipeline import PromptSource, build_image_generation_assets, read_ledger, reconcile
from dagster_imggen.request import ImageRequest
from dagster_imggen.result import ImageResult

PROMPTS = [f"a glass bottle number {i}" for i in range(6)]


class DyingResource(CountingLocalResource):
    """Yields ``survive`` results, then fails as a crashed worker would."""

    survive: int = 3

    def generate_many(self, requests: Iterable[ImageRequest]) -> Iterator[ImageResult]:
        for i, result in enumerate(super().generate_many(requests)):
            if i == self.survive:
                raise RuntimeError("worker died")
            yield result


def _pipeline(tmp_path):  # type: ignore[no-untyped-def]
    url = f"memory://pipeline-recovery-{uuid.uuid4().hex[:8]}/prompts.csv"
    with fsspec.open(url, "w") as f:
        f.write("Prompt,Category\n" + "\n".join(f"{p},Glass" for p in PROMPTS))
    return build_image_generation_assets(
        prompts=PromptSource(url=url, partition_column="Category"),
        output_root=str(tmp_path / "out"),
        defaults={"model": "gpt-image-2", "size": "1024x1024", "quality": "low", "output_format": "jpeg"},
    )


def test_a_run_dying_mid_stream_keeps_its_rows_and_the_rerun_pays_only_the_rest(tmp_path) -> None:
    pipeline = _pipeline(tmp_path)
    out = str(tmp_path / "out")
    instance = dg.DagsterInstance.ephemeral()
    dying = DyingResource(counter="dying", max_concurrency=1)
    assert not materialize_range(pipeline, ["Glass"], dying, instance, raise_on_error=False).success
    ledger = read_ledger(out)
    assert ledger.num_rows == 3 and set(ledger.column("status").to_pylist()) == {"succeeded"}
    assert reconcile(out).ok

    assert materialize_range(pipeline, ["Glass"], CountingLocalResource(counter="rest"), instance).success
    assert sorted(CALLS["rest"]) == sorted(PROMPTS[3:])  # one at a time: rows 0-2 were written
    ledger = read_ledger(out)
    assert ledger.filter(pc.equal(ledger.column("status"), "succeeded")).num_rows == 6
    assert reconcile(out).ok


def test_images_without_ledger_rows_are_recorded_once(tmp_path) -> None:
    pipeline = _pipeline(tmp_path)
    out = tmp_path / "out"
    instance = dg.DagsterInstance.ephemeral()
    assert materialize_range(pipeline, ["Glass"], CountingLocalResource(counter="first"), instance).success
    paid = sum(read_ledger(str(out)).column("cost_usd").to_pylist(), Decimal(0))
    shutil.rmtree(out / "usage")  # a hard kill before the batch reached the disk
    assert not reconcile(str(out)).ok

    assert materialize_range(pipeline, ["Glass"], CountingLocalResource(counter="second"), instance).success
    assert CALLS.get("second", []) == []  # the images are there: nothing is requested again
    ledger = read_ledger(str(out))
    assert ledger.num_rows == 6
    assert all("recovered" in (n or "") for n in ledger.column("note").to_pylist())
    assert sum(ledger.column("cost_usd").to_pylist(), Decimal(0)) == paid  # local costs are estimates
    assert reconcile(str(out)).ok

    assert materialize_range(pipeline, ["Glass"], CountingLocalResource(counter="third"), instance).success
    third = read_ledger(str(out))
    assert third.num_rows == 12 and third.filter(pc.equal(third.column("status"), "cached")).num_rows == 6

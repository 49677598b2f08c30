"""The example project: the main job runs every category of the shipped table in one run, through the
local provider by default and through any provider the environment names (here the emulator)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
from pipeline_support import REPO

from dagster_imggen.pipeline import read_ledger
from dagster_imggen.testing import ProviderEmulator


def _main_job(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("IMGGEN_", "DAGSTER_"))}
    clean.update({"DAGSTER_HOME": str(tmp_path / "home"), "IMGGEN_OUTPUT": str(tmp_path / "out"), **env})
    (tmp_path / "home").mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "assets.main_job"],
        cwd=REPO,
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_main_job_runs_all_categories_of_the_shipped_table(tmp_path: Path) -> None:
    done = _main_job(tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "12 partitions" in done.stdout
    for label in ("images :", "ledger :", "spend  :"):
        assert label in done.stdout
    out = tmp_path / "out"
    assert (
        len(list((out / "images").rglob("*.png"))) - len(list((out / "images").rglob("_contact_sheet.png")))
        == 36
    )
    assert (out / "spend" / "spend.parquet").exists()
    ledger = read_ledger(str(out))
    assert ledger.num_rows == 36 and set(ledger.column("status").to_pylist()) == {"succeeded"}
    assert len(set(ledger.column("partition_key").to_pylist())) == 12


def test_main_job_through_a_remote_provider_named_by_env(tmp_path: Path) -> None:
    with ProviderEmulator() as emu:
        done = _main_job(
            tmp_path,
            IMGGEN_PROVIDER="openai",
            IMGGEN_API_KEY="sk-example-secret-123456",
            IMGGEN_BASE_URL=emu.base_url("openai"),
            IMGGEN_OUTPUT_FORMAT="jpeg",
        )
        calls = emu.calls("openai", op="generate")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert len(calls) == 36
    assert "sk-example-secret-123456" not in done.stdout + done.stderr
    ledger = read_ledger(str(tmp_path / "out"))
    assert set(ledger.column("provider").to_pylist()) == {"openai"}
    assert pc.sum(ledger.column("cost_usd")).as_py() > 0

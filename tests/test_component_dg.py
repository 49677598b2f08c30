"""The ``dg`` CLI against ImageGenerationComponent, as subprocesses: the registry lists it, ``dg scaffold defs``
writes a working defs.yaml, ``dg check yaml`` names the bad field, and ``dg check defs`` loads the example
project with both pipelines (the Python one and the ``defs/daily_images`` component)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DG = Path(sys.executable).parent / "dg"
TYPE = "dagster_imggen.ImageGenerationComponent"

pytestmark = pytest.mark.skipif(not DG.exists(), reason=f"dg (dagster-dg-cli) not found at {DG}")


def _dg(args: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """Run ``dg`` with this interpreter's environment, a throwaway DAGSTER_HOME and no IMGGEN_* settings."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGGEN_")}
    env.update(
        DAGSTER_HOME=str(home),
        PATH=f"{DG.parent}{os.pathsep}{env.get('PATH', '')}",
        NO_COLOR="1",
        TERM="dumb",
        COLUMNS="200",
    )
    return subprocess.run(
        [str(DG), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh dg project (root module ``imggen_proj``) with no defs yet."""
    root = tmp_path / "proj"
    (root / "imggen_proj" / "defs").mkdir(parents=True)
    (root / "imggen_proj" / "__init__.py").write_text("")
    (root / "imggen_proj" / "definitions.py").write_text(
        textwrap.dedent(
            """
            from pathlib import Path

            import dagster as dg


            @dg.definitions
            def defs() -> dg.Definitions:
                return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
            """
        )
    )
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [project]
            name = "imggen-proj"
            version = "0.0.1"

            [tool.dg]
            directory_type = "project"

            [tool.dg.project]
            root_module = "imggen_proj"
            """
        )
    )
    return root


def test_dg_lists_the_component(project: Path, tmp_path: Path) -> None:
    out = _dg(["list", "components", "--json"], project, tmp_path / "home")
    assert out.returncode == 0, out.stderr[-3000:]
    items = json.loads(out.stdout)
    items = items["items"] if isinstance(items, dict) else items
    mine = [i for i in items if i["key"] == TYPE]
    assert mine and "image-generation pipeline" in mine[0]["summary"]


def test_dg_scaffold_then_check_yaml_and_defs(project: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    out = _dg(["scaffold", "defs", TYPE, "my_images", "--partitioning", "daily"], project, home)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    folder = project / "imggen_proj" / "defs" / "my_images"
    text = (folder / "defs.yaml").read_text()
    assert text.startswith(f"type: {TYPE}\n") and "by: daily" in text
    assert (folder / "prompts.csv").read_text().startswith("Prompt,Category,Challenge,Note,Date")

    check = _dg(["check", "yaml"], project, home)
    assert check.returncode == 0, _plain(check.stdout + check.stderr)[-3000:]
    defs = _dg(["check", "defs"], project, home)
    assert defs.returncode == 0, _plain(defs.stdout + defs.stderr)[-3000:]
    listed = _dg(["list", "defs", "--json"], project, home)
    assert listed.returncode == 0, listed.stderr[-3000:]
    found = json.loads(listed.stdout)
    assert {a["asset_key"] for a in found["assets"]} == {"my_images", "my_images_spend"}
    assert [s["name"] for s in found["schedules"]] == ["my_images_daily_schedule"]

    # Bad YAML: each error names its field.
    bad = (
        text.replace("    by: daily", "    by: weekly")
        .replace("    name: local", "    nme: local")
        .replace("    quality: low", "    quality: ultra")
        .replace("    image_model:", "    model:")
    )
    assert bad != text
    (folder / "defs.yaml").write_text(bad)
    check = _dg(["check", "yaml"], project, home)
    report = _plain(check.stdout + check.stderr)
    assert check.returncode == 1, report[-3000:]
    assert re.search(r"attributes\.partitioning\.by 'weekly' does not match", report), report[-3000:]
    assert "attributes.provider.nme Additional properties are not allowed ('nme' was unexpected)" in report
    assert re.search(r"attributes\.request_defaults\.quality 'ultra' does not match", report)
    assert "attributes.request_defaults.model Additional properties are not allowed" in report


def test_dg_check_defs_loads_both_example_pipelines(tmp_path: Path) -> None:
    """From the repository: the example project is a dg project whose defs/ holds the daily component."""
    pyproject = (REPO / "pyproject.toml").read_text()
    assert "[tool.dg.project]" in pyproject, (
        "pyproject.toml needs the [tool.dg] project settings (docs/component.md)"
    )
    home = tmp_path / "home"
    check = _dg(["check", "defs"], REPO, home)
    assert check.returncode == 0, _plain(check.stdout + check.stderr)[-4000:]
    listed = _dg(["list", "defs", "--json"], REPO, home)
    assert listed.returncode == 0, listed.stderr[-3000:]
    found = json.loads(listed.stdout)
    keys = {a["asset_key"] for a in found["assets"]}
    assert {"generated_images", "image_spend", "daily_images", "daily_images_spend"} <= keys
    assert "daily_images_daily_schedule" in {s["name"] for s in found["schedules"]}
    daily = next(a for a in found["assets"] if a["asset_key"] == "daily_images")
    assert daily["source"].startswith("defs/daily_images/defs.yaml")

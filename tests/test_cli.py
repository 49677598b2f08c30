"""The ``dagster-imggen`` console script: models, estimate (single and prompt tables), emulate."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dagster_imggen.cli import main, read_prompt_table
from dagster_imggen.cost import estimate_cost
from dagster_imggen.request import ImageRequest

PARTI = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "PartiPrompts.tsv"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "models")
    assert code == 0
    for provider in ("openai", "piapi", "pixapi", "aigenerate", "apiyi", "gptimage2", "local"):
        assert f"\n{provider} " in out
    assert "RETIRED 2026-10-23" in out
    code, out, _ = run(capsys, "models", "--provider", "gptimage2")
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 3 and all(line.startswith("gptimage2") for line in lines[1:])


def test_models_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "models", "--provider", "apiyi", "--json")
    data = json.loads(out)
    assert code == 0 and {d["model"] for d in data} >= {"gpt-image-1", "gpt-image-2-all"}


def test_estimate_single_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "estimate", "--provider", "openai", "--model", "gpt-image-2", "--size", "1024x1024",
        "--quality", "high", "--n", "2", "--json",
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    assert data["currency"] == "USD" and data["basis"] == "estimate"
    assert Decimal(data["cost_usd"]) == 2 * 7024 * Decimal(30) / 1_000_000


def test_estimate_single_text_flat(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "estimate", "--provider", "apiyi", "--model", "gpt-image-2-all", "--size", "auto",
        "--quality", "low", "--n", "3",
    )  # fmt: skip
    assert code == 0 and "$0.090000000 per request (flat)" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["estimate", "--provider", "openai", "--model", "gpt-image-2", "--quality", "low"], "--size"),
        (["estimate", "--provider", "openai", "--model", "gpt-image-2", "--size", "1000x1000", "--quality", "low"],
         "multiples of 16"),
        (["estimate", "--provider", "openai", "--model", "gpt-image-2", "--size", "１０２４x１０２４", "--quality", "low"],
         "size"),
        (["estimate", "--provider", "openai", "--model", "gpt-image-2", "--size", "auto", "--quality", "low",
          "--n", "0"], "--n"),
        (["estimate", "--provider", "openai", "--model", "gpt-image-1", "--size", "auto", "--quality", "low"],
         "retired"),
        (["estimate", "--provider", "nope", "--model", "gpt-image-2", "--size", "auto", "--quality", "low"],
         "provider"),
        (["estimate", "--provider", "openai", "--model", "gpt-image-2", "--size", "auto", "--quality", "low",
          "--prompts", "/nonexistent/prompts.csv"], "cannot read"),
        (["estimate", "--provider", "openai", "--model", "gpt-image-2", "--size", "auto", "--quality", "low",
          "--prompts", "prompts.xlsx"], "unknown table type"),
        (["models", "--provider", "nope"], "provider"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
        (["emulate", "--port", "99999"], "port"),
    ],
)  # fmt: skip
def test_bad_arguments_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("dagster-imggen: error: ")
    assert needle in err


def test_console_script_exit_code() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dagster_imggen.cli", "estimate", "--provider", "openai"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("ext", ["csv", "tsv", "parquet", "jsonl"])
def test_estimate_prompt_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str], ext: str) -> None:
    rows = {
        "Prompt": ["a cat", 'a "quoted" dog', "a bird on a wire", "", "x" * 33_000],
        "Category": ["Animals", "Animals", "Birds", "Animals", "Animals"],
    }
    path = tmp_path / f"prompts.{ext}"
    table = pa.table(rows)
    if ext == "parquet":
        pq.write_table(table, path)
    elif ext == "jsonl":
        path.write_text("".join(json.dumps({k: rows[k][i] for k in rows}) + "\n" for i in range(5)))
    else:
        sep = "\t" if ext == "tsv" else ","
        quote = (lambda s: s) if ext == "tsv" else (lambda s: '"' + s.replace('"', '""') + '"')
        lines = [sep.join(rows)] + [sep.join(quote(rows[k][i]) for k in rows) for i in range(5)]
        path.write_text("\n".join(lines) + "\n")
    assert read_prompt_table(str(path)).num_rows == 5
    code, out, err = run(
        capsys, "estimate", "--prompts", str(path), "--provider", "openai", "--model", "gpt-image-1.5",
        "--size", "1024x1536", "--quality", "medium", "--json",
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    assert data["prompts"] == 3 and data["rows"] == 5 and data["invalid_rows"] == 2
    assert {bad["row"]: bad["field"] for bad in data["invalid"]} == {3: "prompt", 4: "prompt"}
    expected = {
        key: sum(
            (estimate_cost(ImageRequest(prompt=p, model="gpt-image-1.5", size="1024x1536", quality="medium"),
                           "openai").usd for p, c in zip(rows["Prompt"][:3], rows["Category"][:3], strict=True)
             if c == key),
            Decimal(0),
        )
        for key in ("Animals", "Birds")
    }  # fmt: skip
    assert {k: Decimal(v["cost_usd"]) for k, v in data["partitions"].items()} == expected
    assert Decimal(data["cost_usd"]) == sum(expected.values())


def test_estimate_prompt_table_text_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.csv"
    path.write_text("text,group\nhello,a\nworld,b\n")
    code, out, _ = run(
        capsys, "estimate", "--prompts", str(path), "--prompt-column", "text", "--partition-column", "group",
        "--provider", "gptimage2", "--model", "gpt-image-1.5", "--size", "1024x1792", "--quality", "hd",
    )  # fmt: skip
    assert code == 0
    assert "2 prompts in 2 partitions" in out
    assert "total" in out and "0.026000000" in out
    code, _, err = run(
        capsys, "estimate", "--prompts", str(path), "--prompt-column", "nope",
        "--provider", "gptimage2", "--model", "gpt-image-1.5", "--size", "1024x1792", "--quality", "hd",
    )  # fmt: skip
    assert code == 2 and "--prompt-column" in err


@pytest.mark.partiprompts
def test_estimate_partiprompts(capsys: pytest.CaptureFixture[str]) -> None:
    if not PARTI.is_file():
        pytest.skip(f"PartiPrompts.tsv not found at {PARTI}")
    code, out, err = run(
        capsys, "estimate", "--prompts", str(PARTI), "--provider", "openai", "--model", "gpt-image-2",
        "--size", "1024x1024", "--quality", "low", "--json",
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    assert data["prompts"] == 1632 and data["invalid_rows"] == 0
    assert len(data["partitions"]) == 12
    assert sum(p["prompts"] for p in data["partitions"].values()) == 1632
    total = Decimal(data["cost_usd"])
    assert total == sum(Decimal(p["cost_usd"]) for p in data["partitions"].values())
    # total = 1632 x the single per-request estimate (image output) + every prompt's text tokens.
    single = Decimal(data["per_request_cost_usd"])
    assert single == 196 * Decimal(30) / 1_000_000
    assert total == 1632 * single + Decimal(data["prompt_text_cost_usd"])
    prompts = read_prompt_table(str(PARTI)).column("Prompt").to_pylist()
    text_tokens = sum(-(-len(p) // 4) for p in prompts)
    assert Decimal(data["prompt_text_cost_usd"]) == text_tokens * Decimal(5) / 1_000_000
    assert data["currency"] == "USD" and data["basis"] == "estimate"


def test_emulate_calls_serve(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[tuple[str, int]] = []
    fake = types.ModuleType("dagster_imggen.testing.emulator")
    fake.serve = lambda host, port: calls.append((host, port))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dagster_imggen.testing.emulator", fake)
    if "dagster_imggen.testing" not in sys.modules:  # keep the real package's import out of this test
        package = types.ModuleType("dagster_imggen.testing")
        package.__path__ = []
        monkeypatch.setitem(sys.modules, "dagster_imggen.testing", package)
    code, _, _ = run(capsys, "emulate", "--port", "8123")
    assert code == 0 and calls == [("127.0.0.1", 8123)]
    code, _, _ = run(capsys, "emulate", "--port", "0", "--host", "127.0.0.2")
    assert calls[-1] == ("127.0.0.2", 0)

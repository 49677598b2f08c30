"""ImageGenerationComponent: YAML loading, the Python form, keys as env references, errors naming the field,
the strict schema behind ``dg check yaml``, and partitions materialised through the local provider."""

from __future__ import annotations

import io
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import jsonschema
import pytest
import yaml
from dagster.components.testing import DefsFolderSandbox, create_defs_folder_sandbox
from PIL import Image

from dagster_imggen.components import (
    ImageGenerationComponent,
    PartitioningConfig,
    PromptsConfig,
    ProviderConfig,
)
from dagster_imggen.components.image_generation import ComponentConfigError

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning", "ignore::dagster.PreviewWarning")

PROMPTS_CSV = """Prompt,Category,Challenge,Note,Date
"a red fox asleep in snow",Animals,Basic,,2026-11-19
"a lighthouse in a storm, oil painting",Arts,Style & Format,,2026-11-20
"three blue cubes on a yellow sphere",Abstract,Quantity,,2026-11-20
"a bowl of ramen, top-down photo",Food & Beverage,Perspective,,2026-11-20
"""


def _attrs(**overrides: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "name": "daily_images",
        "prompts": {"url": "prompts.csv"},
        "partitioning": {"by": "daily", "column": "Date", "start_date": "2026-11-19"},
        "provider": {"name": "local", "max_concurrency": 2},
        "request_defaults": {"image_model": "gpt-image-2", "size": "1024x1024", "quality": "low"},
        "output_root": "out",
        "budget_usd": 5.0,
        "owners": ["team:imggen"],
        "tags": {"pipeline": "daily"},
    }
    attrs.update(overrides)
    return attrs


@pytest.fixture
def sandbox() -> Iterator[DefsFolderSandbox]:
    with create_defs_folder_sandbox() as sb:
        yield sb


def _write(sandbox: DefsFolderSandbox, name: str, attributes: dict[str, Any]) -> Path:
    folder = sandbox.defs_folder_path / name
    folder.mkdir(parents=True)
    (folder / "prompts.csv").write_text(PROMPTS_CSV, encoding="utf-8")
    doc = {"type": "dagster_imggen.ImageGenerationComponent", "attributes": attributes}
    (folder / "defs.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return folder


def _meta_value(value: Any) -> Any:
    return getattr(value, "value", value)


def test_yaml_component_materialises_a_daily_partition_locally(sandbox: DefsFolderSandbox) -> None:
    folder = _write(sandbox, "daily", _attrs())
    with sandbox.load_component_and_build_defs(defs_path=folder) as (component, defs):
        assert isinstance(component, ImageGenerationComponent)
        images = defs.resolve_assets_def("daily_images")
        assert {a.key for a in defs.resolve_all_asset_specs()} == {
            dg.AssetKey("daily_images"),
            dg.AssetKey("daily_images_spend"),
        }
        assert [s.name for s in defs.schedules or []] == ["daily_images_daily_schedule"]  # type: ignore[union-attr]
        assert set(defs.resources or {}) == {"daily_images_provider"}
        spec = next(s for s in defs.resolve_all_asset_specs() if s.key == images.key)
        assert spec.owners == ["team:imggen"] and spec.tags.get("pipeline") == "daily"
        assert images.partitions_def is not None
        keys = images.partitions_def.get_partition_keys()
        assert keys[:2] == ["2026-11-19", "2026-11-20"]

        result = dg.materialize(
            [images],
            partition_key="2026-11-20",  # the provider resource is already bound by the Definitions
            instance=dg.DagsterInstance.ephemeral(),
        )
        assert result.success
        (event,) = result.get_asset_materialization_events()
        meta = {k: _meta_value(v) for k, v in event.materialization.metadata.items()}
        assert meta["imggen/images"] == 3  # the three rows dated 2026-11-20
        assert meta["imggen/failed"] == 0
        assert meta["imggen/cost_usd"] > 0  # the local provider reports what gpt-image-2 would bill
        sheet = Path(str(meta["imggen/contact_sheet"]))
        # A relative output_root is taken from the project root (prompts.url from the defs.yaml folder).
        out = (sandbox.project_root / "out").resolve()
        assert sheet.is_relative_to(out)
        with Image.open(io.BytesIO(sheet.read_bytes())) as img:
            assert img.format == "PNG" and img.width > 3 * 128
        written = list(out.rglob("*.png"))
        assert len([p for p in written if p != sheet]) >= 3


def test_python_form_matches_yaml_form(sandbox: DefsFolderSandbox) -> None:
    folder = _write(sandbox, "daily", _attrs())
    with sandbox.load_component_and_build_defs(defs_path=folder) as (from_yaml, yaml_defs):
        in_python = ImageGenerationComponent(
            name="daily_images",
            prompts=PromptsConfig(url="prompts.csv"),
            partitioning=PartitioningConfig(by="daily", column="Date", start_date="2026-11-19"),
            provider=ProviderConfig(name="local", max_concurrency=2),
            request_defaults={"image_model": "gpt-image-2", "size": "1024x1024", "quality": "low"},  # type: ignore[arg-type]
            output_root="out",
            budget_usd="5.0",  # type: ignore[arg-type]
            owners=["team:imggen"],
            tags={"pipeline": "daily"},
        )
        assert in_python == from_yaml
        assert str(from_yaml.budget_usd) == "5.0"
        py_defs = dg.build_defs_for_component(in_python)
        assert {s.key for s in py_defs.resolve_all_asset_specs()} == {
            s.key for s in yaml_defs.resolve_all_asset_specs()
        }


def test_api_key_is_an_env_reference_never_a_literal(monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"prompts": {"url": "p.csv"}, "output_root": "out"}
    for provider in (
        {"name": "openai", "api_key": "{{ env.IMGGEN_TEST_KEY }}"},
        {"name": "openai", "api_key": "{{ env('IMGGEN_TEST_KEY') }}"},
        {"name": "openai", "api_key_env": "IMGGEN_TEST_KEY"},
    ):
        comp = ImageGenerationComponent.from_attributes_dict(attributes={**base, "provider": provider})
        key = comp.provider.key_env_var()
        assert isinstance(key, dg.EnvVar) and key.env_var_name == "IMGGEN_TEST_KEY"
        resource = comp.provider.build_resource()
        assert isinstance(resource.api_key, dg.EnvVar)  # type: ignore[attr-defined]
    secret = "sk-test-" + "z" * 24
    with pytest.raises(Exception, match=r"attributes\.provider\.api_key must be an env reference") as exc:
        ImageGenerationComponent.from_attributes_dict(
            attributes={**base, "provider": {"name": "openai", "api_key": secret}}
        )
    assert secret not in str(exc.value)
    # A rendered template ({{ env.X }} inside other text) is not an env reference either.
    monkeypatch.setenv("IMGGEN_TEST_KEY", secret)
    with pytest.raises(Exception, match="must be an env reference"):
        ImageGenerationComponent.from_attributes_dict(
            attributes={**base, "provider": {"name": "openai", "api_key": "Bearer {{ env.IMGGEN_TEST_KEY }}"}}
        )
    # Python form: a plain string is refused, dg.EnvVar is kept as such; never in repr.
    with pytest.raises(Exception, match="api_key"):
        ProviderConfig(name="openai", api_key=secret)  # type: ignore[arg-type]
    cfg = ProviderConfig(name="openai", api_key=dg.EnvVar("IMGGEN_TEST_KEY"))
    assert "IMGGEN_TEST_KEY" not in repr(cfg) and secret not in repr(cfg)


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"partitioning": {"by": "column"}}, r"partitioning\.by=column needs partitioning\.column"),
        ({"partitioning": {"by": "dynamic"}}, r"partitioning\.by=dynamic needs partitioning\.folder"),
        (
            {"partitioning": {"by": "daily", "column": "Date", "start_date": "21/11/2026"}},
            r"partitioning\.start_date '21/11/2026' is not a YYYY-MM-DD date",
        ),
        ({"partitioning": {"by": "weekly"}}, r"by\s+Input should be 'column', 'daily', 'dynamic' or 'none'"),
        ({"provider": {"name": "openai"}}, r"attributes\.provider\.api_key: provider 'openai' needs a key"),
        (
            {"provider": {"name": "local", "api_key_env": "IMGGEN_API_KEY"}},
            r"provider\.name=local takes no api_key",
        ),
        (
            {"provider": {"name": "local", "settings": {"latency": 1}}},
            r"attributes\.provider\.settings\.latency: LocalImageResource has no such field",
        ),
        (
            {"provider": {"name": "openai", "api_key_env": "K", "settings": {"max_download_bytes": -1}}},
            r"attributes\.provider\.settings\.max_download_bytes: .*greater than 0",
        ),
        (
            {"provider": {"name": "openai", "settings": {"api_key": "sk-x"}}},
            r"attributes\.provider\.settings\.api_key: set the key with provider\.api_key",
        ),
        ({"request_defaults": {"quality": "ultra"}}, r"quality\s+Input should be 'low'"),
        ({"budget_usd": "lots"}, r"attributes\.budget_usd: 'lots' is not a USD amount"),
        ({"budget_usd": -1}, r"attributes\.budget_usd: -1(\.0)? must be a finite amount >= 0"),
        (
            {"checks": {"max_failure_share": 1.5}},
            r"max_failure_share\S*\s+Input should be less than or equal to 1",
        ),
        ({"name": "my-images"}, r"name\s+String should match pattern"),
    ],
)
def test_bad_attributes_name_the_field(attributes: dict[str, Any], message: str, tmp_path: Path) -> None:
    (tmp_path / "prompts.csv").write_text(PROMPTS_CSV, encoding="utf-8")
    attrs = {"prompts": {"url": str(tmp_path / "prompts.csv")}, "output_root": str(tmp_path / "out")}
    attrs.update(attributes)
    with pytest.raises(Exception, match=message):
        comp = ImageGenerationComponent.from_attributes_dict(attributes=attrs)
        comp.provider.build_resource()


def _schema_errors(attributes: dict[str, Any]) -> list[tuple[str, str]]:
    """(dotted path, message) of each error ``dg check yaml`` would report for ``attributes``."""
    model = ImageGenerationComponent.get_model_cls()
    assert model is not None
    validator = jsonschema.Draft202012Validator(model.model_json_schema())
    return sorted(
        (".".join(str(p) for p in err.absolute_path), err.message)
        for err in validator.iter_errors(attributes)
    )


def test_schema_is_strict_where_dg_check_yaml_looks() -> None:
    assert _schema_errors(_attrs()) == []
    # Templates stay allowed in enum and number fields.
    templated = _attrs(provider={"name": "{{ env.IMGGEN_PROVIDER }}", "max_concurrency": "{{ 4 }}"})
    assert _schema_errors(templated) == []
    bad = _attrs(
        partitioning={"by": "weekly", "colum": "Date"},
        provider={"nme": "local", "rate_limit": {"requests": 20}},
        request_defaults={"quality": "ultra", "model": "gpt-image-2"},
        checks="strict",
    )
    del bad["prompts"]
    errors = dict(_schema_errors(bad))
    assert "'prompts' is a required property" in errors[""]
    assert "does not match '^(column|daily|dynamic|none)$" in errors["partitioning.by"]
    assert "'colum' was unexpected" in errors["partitioning"]
    assert "'nme' was unexpected" in errors["provider"]
    assert "'period_s' is a required property" in errors["provider.rate_limit"]
    assert "does not match '^(low|medium|high|auto|standard|hd)$" in errors["request_defaults.quality"]
    assert "'model' was unexpected" in errors["request_defaults"]  # `model` is spelt image_model
    assert "'strict' is not of type 'object'" in errors["checks"]


def test_schema_describes_every_field() -> None:
    model = ImageGenerationComponent.get_model_cls()
    assert model is not None
    schema = model.model_json_schema()
    missing = [name for name, prop in schema["properties"].items() if not prop.get("description")]
    for title, sub in schema["$defs"].items():
        missing += [f"{title}.{n}" for n, p in sub["properties"].items() if not p.get("description")]
    assert missing == []
    assert "__DAGSTER_UNSET_DEFAULT__" not in json.dumps(schema)


def test_two_components_coexist(sandbox: DefsFolderSandbox) -> None:
    _write(sandbox, "daily", _attrs())
    _write(
        sandbox,
        "by_category",
        _attrs(
            name="category_images", partitioning={"by": "column", "column": "Category"}, output_root="out2"
        ),
    )
    with sandbox.build_all_defs() as defs:
        keys = {s.key.to_user_string() for s in defs.resolve_all_asset_specs()}
        assert keys == {"daily_images", "daily_images_spend", "category_images", "category_images_spend"}
        assert set(defs.resources or {}) == {"daily_images_provider", "category_images_provider"}
        cat = defs.resolve_assets_def("category_images").partitions_def
        assert cat is not None and sorted(cat.get_partition_keys()) == sorted(
            ["Animals", "Arts", "Abstract", "Food & Beverage"]
        )
        defs.resolve_implicit_global_asset_job_def()  # the repository validates


@pytest.mark.parametrize("partitioning", ["column", "daily", "dynamic", "none"])
def test_scaffolded_defs_yaml_loads(sandbox: DefsFolderSandbox, partitioning: str) -> None:
    folder = sandbox.scaffold_component(
        ImageGenerationComponent, defs_path="my_images", scaffold_params={"partitioning": partitioning}
    )
    text = (folder / "defs.yaml").read_text()
    assert text.startswith("type: dagster_imggen.components.image_generation.ImageGenerationComponent")
    assert f"by: {partitioning}" in text and "api_key:" in text  # the key line is there, commented
    with sandbox.load_component_and_build_defs(defs_path=folder) as (component, defs):
        assert isinstance(component, ImageGenerationComponent)
        assert component.partitioning.by == partitioning
        assert defs.resolve_assets_def("my_images") is not None
        if partitioning == "dynamic":
            assert [s.name for s in defs.sensors or []] == ["my_images_new_prompt_files"]  # type: ignore[union-attr]


def test_scaffold_for_a_remote_provider_declares_the_env_requirement(sandbox: DefsFolderSandbox) -> None:
    folder = sandbox.scaffold_component(
        ImageGenerationComponent, defs_path="paid", scaffold_params={"provider": "openai"}
    )
    doc = yaml.safe_load((folder / "defs.yaml").read_text())
    assert doc["attributes"]["provider"]["api_key"] == "{{ env.IMGGEN_API_KEY }}"
    assert doc["requirements"] == {"env": ["IMGGEN_API_KEY"]}
    with sandbox.load_component_and_build_defs(defs_path=folder) as (component, _):
        assert isinstance(component, ImageGenerationComponent)
        assert component.provider.key_env_var() == dg.EnvVar("IMGGEN_API_KEY")


def test_component_config_error_is_a_value_error() -> None:
    assert issubclass(ComponentConfigError, ValueError)
    doc = textwrap.dedent(ImageGenerationComponent.__doc__ or "")
    assert "type: dagster_imggen.ImageGenerationComponent" in doc


def test_remote_provider_key_is_read_from_the_environment_at_run_time(
    sandbox: DefsFolderSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster_imggen.testing import ProviderEmulator

    secret = "sk-component-" + "q" * 20
    with ProviderEmulator(api_key=secret) as emu:
        attrs = _attrs(
            provider={
                "name": "openai",
                "api_key": "{{ env.IMGGEN_COMPONENT_TEST_KEY }}",
                "base_url": emu.base_url("openai"),
                "max_retries": 0,
            }
        )
        folder = _write(sandbox, "remote", attrs)
        monkeypatch.delenv("IMGGEN_COMPONENT_TEST_KEY", raising=False)
        with sandbox.load_component_and_build_defs(defs_path=folder) as (component, defs):
            # The definitions load without the key: it is a dg.EnvVar, read when the run starts.
            assert isinstance(component, ImageGenerationComponent)
            assert secret not in repr(component)
            monkeypatch.setenv("IMGGEN_COMPONENT_TEST_KEY", secret)
            result = dg.materialize(
                [defs.resolve_assets_def("daily_images")],
                partition_key="2026-11-19",
                instance=dg.DagsterInstance.ephemeral(),
            )
        assert result.success
        (event,) = result.get_asset_materialization_events()
        meta = event.materialization.metadata
        assert _meta_value(meta["imggen/images"]) == 1 and _meta_value(meta["imggen/failed"]) == 0
        assert secret not in json.dumps({k: str(v) for k, v in meta.items()})
        assert emu.billed("openai").calls == 1

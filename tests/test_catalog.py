"""The shipped catalog and price book, overrides from any fsspec URL, and lookups."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import fsspec
import pytest

from dagster_imggen.catalog import (
    ENV_VAR,
    Catalog,
    CatalogError,
    clear_catalog_cache,
    get_catalog,
    load_catalog,
)
from dagster_imggen.cost import estimate_cost
from dagster_imggen.errors import ImageRequestError
from dagster_imggen.request import ImageRequest

PROVIDERS = ["openai", "piapi", "pixapi", "aigenerate", "apiyi", "gptimage2", "local"]
DOCS = Path(__file__).resolve().parents[1].parent / "shared" / "providers"


@pytest.fixture(autouse=True)
def _fresh_cache() -> object:
    clear_catalog_cache()
    yield
    clear_catalog_cache()


def test_every_provider_is_in_the_catalog() -> None:
    catalog = get_catalog()
    assert sorted(catalog.providers()) == sorted(PROVIDERS)
    for provider in PROVIDERS:
        assert catalog.models(provider), provider


def test_every_price_has_a_source_and_an_as_of_date() -> None:
    for spec in get_catalog().models():
        pricing = spec.pricing
        assert pricing.source, (spec.provider, spec.model)
        assert re.fullmatch(r"\d{4}-\d{2}(-\d{2})?", pricing.as_of), pricing.as_of
        files = re.findall(r"\d{3}_[0-9a-f]{16}\.txt", pricing.source)
        assert files or "https://" in pricing.source, pricing.source
        if DOCS.is_dir():
            for name in files:
                assert (DOCS / name).is_file(), name


def test_prices_are_decimals() -> None:
    for spec in get_catalog().models():
        p = spec.pricing
        rates = [p.text_input, p.text_cached_input, p.image_input, p.image_cached_input, p.image_output]
        rates += [p.flat_usd, p.usd_per_credit]
        rates += [v for row in p.per_image.values() for v in row.values()]
        rates += [t.high for t in p.credit_tiers] + [v.credits for v in p.variants]
        for value in rates:
            assert value is None or isinstance(value, Decimal)


def test_model_lookup_and_errors() -> None:
    catalog = get_catalog()
    spec = catalog.model("openai", "gpt-image-2")
    assert spec.max_n == 10 and spec.prompt_max_chars == 32_000 and spec.max_input_images == 16
    assert spec.custom_sizes is not None and spec.custom_sizes.max_edge == 3840
    assert catalog.has_model("apiyi", "gpt-image-2-all")
    assert not catalog.has_model("gptimage2", "gpt-image-2")
    with pytest.raises(ImageRequestError) as exc:
        catalog.model("nope", "gpt-image-2")
    assert exc.value.field == "provider"
    with pytest.raises(ImageRequestError) as exc:
        catalog.model("openai", "nope")
    assert exc.value.field == "model"


def test_retirement() -> None:
    catalog = get_catalog()
    spec = catalog.model("openai", "gpt-image-1")
    assert spec.retired == date(2026, 10, 23)
    assert spec.is_retired(date(2026, 10, 23))
    assert not spec.is_retired(date(2026, 10, 22))
    assert catalog.model("piapi", "gpt-image-1").retired is None


def test_local_mirrors_openai_without_retirement() -> None:
    catalog = get_catalog()
    openai = {s.model: s for s in catalog.models("openai")}
    local = {s.model: s for s in catalog.models("local")}
    assert set(local) == set(openai)
    for model, spec in local.items():
        assert spec.estimate_only and spec.retired is None
        assert spec.pricing == openai[model].pricing
        assert spec.sizes == openai[model].sizes


def test_provider_specific_facts() -> None:
    catalog = get_catalog()
    assert catalog.model("gptimage2", "gpt-image-1").mode == "async"
    assert catalog.model("gptimage2", "gpt-image-1.5").mode == "sync"
    assert catalog.model("aigenerate", "gpt-image-1.5").mode == "async"
    all_ = catalog.model("apiyi", "gpt-image-2-all")
    assert all_.returns_one_image and all_.pricing.bills == "requested"
    assert catalog.model("pixapi", "gpt-image-2").pricing.usd_per_credit_assumed
    assert catalog.model("aigenerate", "gpt-image-1.5").pricing.usd_per_credit == Decimal("0.007")
    variant = catalog.model("aigenerate", "gpt-image-1.5").variant("text-to-image", "high")
    assert variant.slug == "openai-gpt-image-1-5-text-to-image-high"
    with pytest.raises(ImageRequestError) as exc:
        catalog.model("aigenerate", "gpt-image-1.5").variant("text-to-image", "low")
    assert exc.value.field == "quality"


def test_override_file_merges_over_shipped(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(
        '[providers.gptimage2.models."gpt-image-1".pricing]\n'
        'per_image = { "*" = { "*" = "0.030" } }\n'
        'as_of = "2026-12-01"\n'
        '[providers.myreseller]\nname = "Mine"\n'
        '[providers.myreseller.models."gpt-image-2"]\n'
        'sizes = ["1024x1024"]\nqualities = ["low", "high"]\ndefault_quality = "low"\n'
        "max_n = 2\nprompt_max_chars = 500\n"
        '[providers.myreseller.models."gpt-image-2".pricing]\n'
        'scheme = "flat"\nflat_usd = 0.05\nsource = "https://example.invalid/prices"\nas_of = "2026-12-01"\n'
    )
    catalog = load_catalog(str(path))
    r = ImageRequest(prompt="p", model="gpt-image-1", size="1024x1024", quality="hd", n=2)
    assert estimate_cost(r, "gptimage2", catalog).usd == Decimal("0.060")
    assert catalog.model("gptimage2", "gpt-image-1").max_n == 4  # untouched keys stay
    assert catalog.model("openai", "gpt-image-2") == get_catalog().model("openai", "gpt-image-2")
    mine = ImageRequest(prompt="p", quality="low", n=2).validate_for("myreseller", catalog)
    cost = estimate_cost(mine, "myreseller", catalog)
    assert cost.usd == Decimal("0.10")  # TOML float read as Decimal
    # extend=False: the file stands alone, so its partial gptimage2 entry is incomplete.
    with pytest.raises(CatalogError, match="gptimage2"):
        load_catalog(str(path), extend=False)
    alone = tmp_path / "alone.toml"
    header = "[providers.myreseller]"
    alone.write_text(header + path.read_text().split(header, 1)[1])
    assert load_catalog(str(alone), extend=False).providers() == ["myreseller"]


def test_override_from_fsspec_memory_and_json() -> None:
    with fsspec.open("memory://imggen-cat/prices.json", "w") as fh:
        fh.write(
            '{"providers": {"apiyi": {"models": {"gpt-image-2-all": {"pricing": {"flat_usd": 0.025}}}}}}'
        )
    catalog = load_catalog("memory://imggen-cat/prices.json")
    r = ImageRequest(prompt="p", model="gpt-image-2-all", n=4)
    assert estimate_cost(r, "apiyi", catalog).usd == Decimal("0.100")


def test_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "env.toml"
    path.write_text('[providers.openai.models."gpt-image-2"]\nmax_n = 4\n')
    monkeypatch.setenv(ENV_VAR, str(path))
    assert get_catalog().model("openai", "gpt-image-2").max_n == 4
    assert get_catalog() is get_catalog()  # cached
    monkeypatch.delenv(ENV_VAR)
    assert get_catalog().model("openai", "gpt-image-2").max_n == 10


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("not toml [", "cannot parse"),
        ('[providers.openai.models."gpt-image-2"]\nmax_n = 0\n', "max_n"),
        ('[providers.openai.models."gpt-image-2".pricing]\nscheme = "barter"\n', "scheme"),
        ('[providers.openai.models."gpt-image-2"]\ndefault_quality = "auto"\n', "explicit"),
        ('[providers.x.models."m".pricing]\nscheme = "flat"\n', "providers.x"),
        ('[providers.local]\nmirrors = "nobody"\n', "mirrors"),
    ],
)
def test_malformed_override(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(CatalogError, match=match):
        load_catalog(str(path))


def test_unreadable_override(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(str(tmp_path / "missing.toml"))


def test_catalog_from_dict_minimal() -> None:
    catalog = Catalog.from_dict({"providers": {}})
    assert catalog.providers() == []
    with pytest.raises(CatalogError):
        Catalog.from_dict({})

"""Cost engine: every price table cell of the provider documents, reproduced from the price book
through the public cost API, plus every OpenAI output-token figure and the fallbacks."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from dagster_imggen._log import LOGGER_NAME
from dagster_imggen.catalog import get_catalog, load_catalog
from dagster_imggen.cost import (
    IMAGE_INPUT_TOKENS_PER_IMAGE,
    cost_of_response,
    estimate_cost,
    estimate_credits,
    expected_output_tokens,
    expected_usage,
    resolve_quality,
)
from dagster_imggen.errors import ImageRequestError
from dagster_imggen.request import ImageRequest
from dagster_imggen.result import Cost, CostBasis, Usage

D = Decimal
M = 1_000_000
SIZES = ("1024x1024", "1024x1536", "1536x1024")
QUALITIES = ("low", "medium", "high")


def req(**kw: object) -> ImageRequest:
    kw.setdefault("prompt", "a red fox in the snow")
    return ImageRequest(**kw)  # type: ignore[arg-type]


# --- OpenAI output tokens ------------------------------------------------------------------------

# OpenAI's table (../shared/providers/README.md): gpt-image-1 / 1-mini / 1.5.
OPENAI_TOKENS = {
    ("1024x1024", "low"): 272,
    ("1024x1024", "medium"): 1056,
    ("1024x1024", "high"): 4160,
    ("1024x1536", "low"): 408,
    ("1024x1536", "medium"): 1584,
    ("1024x1536", "high"): 6240,
    ("1536x1024", "low"): 400,
    ("1536x1024", "medium"): 1568,
    ("1536x1024", "high"): 6208,
}


@pytest.mark.parametrize("model", ["gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5"])
@pytest.mark.parametrize(("size", "quality"), list(OPENAI_TOKENS))
def test_openai_output_token_table(model: str, size: str, quality: str) -> None:
    assert expected_output_tokens(model, size, quality) == OPENAI_TOKENS[(size, quality)]


@pytest.mark.parametrize(
    ("size", "tokens"),
    [("1024x1024", 7024), ("1536x1024", 5488), ("1792x1024", 5063), ("3584x2048", 12329)],
)
def test_gpt_image_2_tokens_match_openai_calculator(size: str, tokens: int) -> None:
    assert expected_output_tokens("gpt-image-2", size, "high") == tokens


@pytest.mark.parametrize(
    ("size", "quality", "published_usd"),
    [
        ("1024x1024", "low", "0.006"),
        ("1024x1024", "medium", "0.053"),
        ("1024x1024", "high", "0.211"),
        ("1024x1536", "low", "0.005"),
        ("1024x1536", "medium", "0.041"),
        ("1024x1536", "high", "0.165"),
    ],
)
def test_gpt_image_2_estimate_matches_published_prices(size: str, quality: str, published_usd: str) -> None:
    cost = estimate_cost(req(size=size, quality=quality), "openai", include_prompt=False)
    assert cost.basis is CostBasis.ESTIMATE
    assert abs(cost.usd - D(published_usd)) < D("0.0005")


def test_output_tokens_auto_and_aliases() -> None:
    assert expected_output_tokens("gpt-image-1.5", "auto", "high") == 6240  # dearest preset
    assert expected_output_tokens("gpt-image-2", "auto", "high") == 7024
    assert expected_output_tokens("gpt-image-1", "1024x1024", "auto") == 4160  # auto counts as high
    assert expected_output_tokens("gpt-image-1", "1024x1024", "hd") == 4160
    assert expected_output_tokens("gpt-image-1", "1024x1024", "standard") == 1056
    with pytest.raises(ImageRequestError) as exc:
        expected_output_tokens("dall-e-3", "1024x1024", "high")
    assert exc.value.field == "model"
    with pytest.raises(ImageRequestError) as exc:
        expected_output_tokens("gpt-image-2", "1024x1024", "ultra")
    assert exc.value.field == "quality"


# --- OpenAI per-token pricing --------------------------------------------------------------------

OPENAI_RATES = {  # per 1M tokens: text in, cached text, image in, cached image, image out
    "gpt-image-1": ("5", "1.25", "10", "2.50", "40"),
    "gpt-image-1-mini": ("2", "0.20", "2.50", "0.25", "8"),
    "gpt-image-1.5": ("5", "1.25", "8", "2.00", "32"),
    "gpt-image-2": ("5", "1.25", "8", "2.00", "30"),
}


def _rate_usages() -> list[Usage]:
    return [
        Usage(input_text_tokens=M),
        Usage(input_text_tokens=M, cached_input_tokens=M),
        Usage(input_image_tokens=M),
        Usage(input_image_tokens=M, cached_input_tokens=M),
        Usage(output_tokens=M),
    ]


@pytest.mark.parametrize("model", list(OPENAI_RATES))
def test_openai_token_rates(model: str) -> None:
    for usage, rate in zip(_rate_usages(), OPENAI_RATES[model], strict=True):
        cost = cost_of_response(req(model=model), "openai", usage=usage)
        assert cost.usd == D(rate), (model, usage)
        assert cost.basis is CostBasis.USAGE_TOKENS
        assert isinstance(cost.usd, Decimal)


def test_usage_cost_sums_every_kind_and_counts_cached_inside_inputs() -> None:
    usage = Usage(input_text_tokens=100, input_image_tokens=1000, cached_input_tokens=150, output_tokens=4160)
    cost = cost_of_response(req(model="gpt-image-1.5"), "openai", usage=usage)
    # 100 cached text at 1.25, 50 cached image at 2, 950 image at 8, 4160 out at 32 (per 1M).
    expected = (100 * D("1.25") + 50 * D("2") + 950 * D("8") + 4160 * D("32")) / M
    assert cost.usd == expected


def test_missing_usage_falls_back_to_estimate_and_says_so() -> None:
    r = req(model="gpt-image-2", quality="medium", n=2)
    cost = cost_of_response(r, "openai", usage=None)
    assert cost.basis is CostBasis.ESTIMATE
    assert "usage missing" in cost.detail
    assert cost.usd == estimate_cost(r, "openai").usd
    tokens = 2 * expected_output_tokens("gpt-image-2", "1024x1024", "medium")
    assert cost.usd == (expected_usage(r).input_text_tokens * D(5) + tokens * D(30)) / M


def test_estimate_equals_cost_of_expected_usage() -> None:
    r = req(model="gpt-image-1.5", size="1536x1024", quality="high", images=("a.png", "b.png"), n=3)
    usage = expected_usage(r)
    assert usage.input_text_tokens == -(-len(r.prompt) // 4)
    assert usage.input_image_tokens == 2 * IMAGE_INPUT_TOKENS_PER_IMAGE
    assert usage.output_tokens == 3 * 6208
    assert cost_of_response(r, "openai", usage=usage).usd == estimate_cost(r, "openai").usd


def test_estimate_without_prompt_text() -> None:
    r = req(model="gpt-image-2", quality="low")
    with_text = estimate_cost(r, "openai")
    without = estimate_cost(r, "openai", include_prompt=False)
    assert without.usd == 196 * D(30) / M
    assert with_text.usd - without.usd == expected_usage(r).input_text_tokens * D(5) / M


def test_local_is_priced_like_openai_with_estimate_basis() -> None:
    r = req(model="gpt-image-1", quality="high")  # retired on OpenAI, not offline
    local = cost_of_response(r, "local", usage=expected_usage(r))
    assert local.basis is CostBasis.ESTIMATE
    assert local.usd == cost_of_response(r, "openai", usage=expected_usage(r)).usd
    assert estimate_cost(r, "local").usd == local.usd


# --- PiAPI (000_305fa6c5cb57ea7f.txt) ---------------------------------------------------------

PIAPI_TOKEN_TABLE = {  # text in, text cached, image in, image cached, image out (per 1M)
    "gpt-image-1": ("5.00", "1.25", "10.00", "1.25", "40.00"),
    "gpt-image-1.5": ("5.00", "1.25", "8.00", "1.25", "32.00"),
    "gpt-image-2": ("5.00", "1.25", "8.00", "1.25", "30.00"),
}

# The three unlabeled per-resolution tables, in order gpt-image-1, gpt-image-1.5, gpt-image-2.
PIAPI_RESOLUTION_TABLES = {
    "gpt-image-1": {"1024x1024": (".011", ".042", ".167"), "1024x1536": (".016", ".063", ".250"),
                    "1536x1024": (".016", ".063", ".250")},
    "gpt-image-1.5": {"1024x1024": (".009", ".034", ".133"), "1024x1536": (".013", ".051", ".200"),
                      "1536x1024": (".013", ".051", ".200")},
    "gpt-image-2": {"1024x1024": (".008", ".032", ".125"), "1024x1536": (".012", ".048", ".188"),
                    "1536x1024": (".012", ".048", ".188")},
}  # fmt: skip


@pytest.mark.parametrize("model", list(PIAPI_TOKEN_TABLE))
def test_piapi_token_table(model: str) -> None:
    for usage, rate in zip(_rate_usages(), PIAPI_TOKEN_TABLE[model], strict=True):
        cost = cost_of_response(req(model=model, quality="low"), "piapi", usage=usage)
        assert cost.usd == D(rate)
        assert cost.basis is CostBasis.USAGE_TOKENS


@pytest.mark.parametrize("model", list(PIAPI_RESOLUTION_TABLES))
@pytest.mark.parametrize("size", SIZES)
def test_piapi_resolution_tables(model: str, size: str) -> None:
    """Each "~$" cell is the gpt-image-1 output-token count for the size and quality times the
    model's output rate. The doc prints one figure for both 1536-px orientations, matching the
    1024x1536 count; every cell agrees within $0.001 (the doc's "~" and 3-decimal rounding)."""
    token_size = "1024x1536" if size == "1536x1024" else size
    for quality, cell in zip(QUALITIES, PIAPI_RESOLUTION_TABLES[model][size], strict=True):
        tokens = expected_output_tokens("gpt-image-1", token_size, quality)
        cost = cost_of_response(
            req(model=model, size=size, quality=quality), "piapi", usage=Usage(output_tokens=tokens)
        )
        assert cost.basis is CostBasis.USAGE_TOKENS
        assert abs(cost.usd - D(cell)) <= D("0.001"), (model, size, quality, cost.usd, cell)


def test_piapi_example_from_brief() -> None:
    cost = cost_of_response(
        req(model="gpt-image-2", quality="high"), "piapi", usage=Usage(output_tokens=4160)
    )
    assert cost.usd == D("0.1248")
    assert cost.usd.quantize(D("0.001")) == D("0.125")


@pytest.mark.parametrize("n", [1, 3])
def test_piapi_preview_flat_per_image(n: int) -> None:
    for size, quality in (("1024x1024", "standard"), ("1536x1024", "high")):
        r = req(model="gpt-image-2-preview", size=size, quality=quality, n=n)
        for cost in (estimate_cost(r, "piapi"), cost_of_response(r, "piapi", usage=Usage(output_tokens=765))):
            assert cost.basis is CostBasis.FLAT
            assert cost.usd == D("0.10") * n


# --- Pixapi (001_d01986769ffd2010.txt) --------------------------------------------------------

PIXAPI_MATRIX = {  # tier -> (a size in the tier, low, medium, high/auto)
    "1K": [("1024x1024", 1, 4, 14), ("1536x1024", 1, 4, 14)],
    "2K": [("1552x1024", 2, 17, 67), ("2048x2048", 2, 17, 67)],
    "4K": [("2064x2064", 4, 34, 133), ("3840x2160", 4, 34, 133)],
}


@pytest.mark.parametrize("tier", list(PIXAPI_MATRIX))
@pytest.mark.parametrize("n", [1, 3])
def test_pixapi_credit_matrix(tier: str, n: int) -> None:
    spec = get_catalog().model("pixapi", "gpt-image-2")
    usd_per_credit = spec.pricing.usd_per_credit
    assert usd_per_credit is not None
    for size, low, medium, high in PIXAPI_MATRIX[tier]:
        for quality, credits in (("low", low), ("medium", medium), ("high", high), ("auto", high)):
            r = req(size=size, quality=quality, n=n)
            assert estimate_credits(r, "pixapi") == credits * n
            cost = estimate_cost(r, "pixapi")
            assert cost.basis is CostBasis.CREDITS
            assert cost.usd == credits * n * usd_per_credit
            assert f"{credits * n} credits" in cost.detail


def test_pixapi_auto_size_is_1k_tier_and_credit_value_is_configurable(tmp_path: object) -> None:
    assert estimate_credits(req(size="auto", quality="high"), "pixapi") == 14
    cost = estimate_cost(req(size="auto", quality="high"), "pixapi")
    assert "ASSUMED" in cost.detail  # the doc gives no USD per credit
    override = tmp_path / "pix.toml"  # type: ignore[operator]
    override.write_text('[providers.pixapi.models."gpt-image-2".pricing]\nusd_per_credit = "0.02"\n'
                        "usd_per_credit_assumed = false\n")  # fmt: skip
    catalog = load_catalog(str(override))
    cost = estimate_cost(req(size="2048x2048", quality="high", n=2), "pixapi", catalog)
    assert cost.usd == 67 * 2 * D("0.02")
    assert "ASSUMED" not in cost.detail


def test_pixapi_reported_credits_override() -> None:
    cost = cost_of_response(req(quality="high"), "pixapi", usage=None, credits=D(20))
    assert cost.basis is CostBasis.CREDITS
    assert cost.usd == 20 * get_catalog().model("pixapi", "gpt-image-2").pricing.usd_per_credit  # type: ignore[operator]


# --- AI Generate (002_7794215a2f478efb.txt) ----------------------------------------------------

AIGENERATE_VARIANTS = [  # (mode, quality, credits, USD) as in the doc's table
    ("image-to-image", "medium", "4.00", "0.0280"),
    ("text-to-image", "medium", "4.00", "0.0280"),
    ("text-to-image", "high", "22.00", "0.1540"),
    ("image-to-image", "high", "22.00", "0.1540"),
]


@pytest.mark.parametrize(("mode", "quality", "credits", "usd"), AIGENERATE_VARIANTS)
def test_aigenerate_variants(mode: str, quality: str, credits: str, usd: str) -> None:
    images = ("ref.png",) if mode == "image-to-image" else ()
    r = req(model="gpt-image-1.5", quality=quality, images=images)
    r.validate_for("aigenerate")
    assert estimate_credits(r, "aigenerate") == D(credits)
    cost = estimate_cost(r, "aigenerate")
    assert cost.basis is CostBasis.CREDITS
    assert cost.usd == D(usd)
    slug = get_catalog().model("aigenerate", "gpt-image-1.5").variant(mode, quality).slug
    assert slug == f"openai-gpt-image-1-5-{mode}-{quality}"
    assert slug in cost.detail


def test_aigenerate_credits_header_overrides_estimate() -> None:
    r = req(model="gpt-image-1.5", quality="high")
    cost = cost_of_response(r, "aigenerate", usage=None, credits=D("21.5"))
    assert cost.usd == D("21.5") * D("0.007")
    assert cost.basis is CostBasis.CREDITS
    assert "reported" in cost.detail
    assert cost_of_response(r, "aigenerate", usage=None).usd == D("0.154")


# --- APIYI (003_d307cd8db33a550d.txt) ----------------------------------------------------------

APIYI_TABLES = {  # quality -> (1024x1024, 1024x1536 / 1536x1024)
    "gpt-image-1.5": {"low": ("0.009", "0.013"), "medium": ("0.034", "0.050"), "high": ("0.133", "0.200")},
    "gpt-image-1": {"low": ("0.005", "0.006"), "medium": ("0.011", "0.015"), "high": ("0.036", "0.052")},
}


@pytest.mark.parametrize("model", list(APIYI_TABLES))
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("quality", QUALITIES)
def test_apiyi_per_image_tables(model: str, size: str, quality: str) -> None:
    cell = D(APIYI_TABLES[model][quality][0 if size == "1024x1024" else 1])
    r = req(model=model, size=size, quality=quality, n=2)
    # Token cost above the table: the table (cheaper) is billed, per image.
    dear = cost_of_response(r, "apiyi", usage=Usage(output_tokens=M))
    assert dear.basis is CostBasis.PER_IMAGE_TABLE
    assert dear.usd == 2 * cell
    # Token cost below the table: tokens are billed.
    cheap = cost_of_response(r, "apiyi", usage=Usage(output_tokens=100))
    assert cheap.basis is CostBasis.USAGE_TOKENS
    assert cheap.usd < 2 * cell


def test_apiyi_legacy_token_rates() -> None:
    for model, (inp, out) in {"gpt-image-1.5": ("5", "10"), "gpt-image-1": ("2.50", "8")}.items():
        # Small usages so that tokens stay cheaper than the per-image table.
        usage = Usage(input_text_tokens=1000, input_image_tokens=1000, output_tokens=1000)
        cost = cost_of_response(req(model=model, quality="high"), "apiyi", usage=usage)
        assert cost.usd == (2000 * D(inp) + 1000 * D(out)) / M


def test_apiyi_gpt_image_2_all_bills_n_although_one_image_returns() -> None:
    r = req(model="gpt-image-2-all", n=3)
    cost = cost_of_response(r, "apiyi", usage=None, images_returned=1)
    assert cost.basis is CostBasis.FLAT
    assert cost.usd == D("0.09")
    assert estimate_cost(r, "apiyi").usd == D("0.09")


# --- GPTImage2 (004_be499b8a5e35d015.txt) ------------------------------------------------------


@pytest.mark.parametrize(("model", "price"), [("gpt-image-1", "0.034"), ("gpt-image-1.5", "0.013")])
def test_gptimage2_per_image_prices(model: str, price: str) -> None:
    for size in ("1024x1024", "1024x1792", "1792x1024"):
        for quality in ("standard", "hd"):
            r = req(model=model, size=size, quality=quality, n=4)
            est = estimate_cost(r, "gptimage2")
            assert est.basis is CostBasis.PER_IMAGE_TABLE
            assert est.usd == 4 * D(price)
            # Per successfully generated image: failed ones are not billed.
            got = cost_of_response(r, "gptimage2", usage=None, images_returned=3)
            assert got.usd == 3 * D(price)


def test_gptimage2_openai_direct_comparison() -> None:
    # The doc's "OpenAI direct $0.042" for gpt-image-1 is 1024x1024 medium at $40/1M output tokens.
    cost = estimate_cost(req(model="gpt-image-1", quality="medium"), "openai", include_prompt=False)
    assert cost.usd.quantize(D("0.001")) == D("0.042")


# --- quality guard -------------------------------------------------------------------------------


def test_resolve_quality_never_implicit_auto(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER_NAME)
    assert resolve_quality(req(), "openai") == "medium"
    assert resolve_quality(req(), "openai", default="low") == "low"
    assert resolve_quality(req(), "piapi", default="auto") == "medium"
    assert "never sends auto implicitly" in caplog.text
    assert resolve_quality(req(model="gpt-image-1"), "gptimage2", default="medium") == "standard"
    assert resolve_quality(req(model="gpt-image-1"), "gptimage2", default="high") == "hd"
    assert resolve_quality(req(model="gpt-image-1.5"), "aigenerate", default="low") == "medium"
    assert resolve_quality(req(quality="high"), "openai", default="low") == "high"


@pytest.mark.parametrize(("provider", "model"), [("openai", "gpt-image-2"), ("piapi", "gpt-image-1.5"),
                                                 ("pixapi", "gpt-image-2"), ("apiyi", "gpt-image-1")])  # fmt: skip
def test_explicit_auto_warns_on_token_or_credit_billed(
    provider: str, model: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER_NAME)
    assert resolve_quality(req(model=model, quality="auto"), provider, default="low") == "auto"
    assert [r for r in caplog.records if r.name == LOGGER_NAME and "quality=auto" in r.getMessage()]


def test_explicit_auto_on_flat_model_is_quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER_NAME)
    assert resolve_quality(req(model="gpt-image-2-all", quality="auto"), "apiyi") == "auto"
    assert "quality=auto" not in caplog.text


def test_costs_are_decimal_and_cost_type() -> None:
    for spec in get_catalog().models():
        quality = spec.default_quality
        size = spec.sizes[0]
        cost = estimate_cost(req(model=spec.model, size=size, quality=quality), spec.provider)
        assert isinstance(cost, Cost)
        assert isinstance(cost.usd, Decimal)
        assert cost.usd > 0, (spec.provider, spec.model)


def test_apiyi_table_for_auto_quality_and_size() -> None:
    r = req(model="gpt-image-1.5", size="auto", quality="auto")
    cost = cost_of_response(r, "apiyi", usage=Usage(output_tokens=M))
    assert cost.basis is CostBasis.PER_IMAGE_TABLE
    assert cost.usd == D("0.200")  # auto is billed as high; auto size as the dearest preset

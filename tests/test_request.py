"""ImageRequest: structural rules, every catalog rule with both sides of each bound, from_row and
the content-based request hash."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import fsspec
import pytest
from pydantic import ValidationError

from dagster_imggen.catalog import CustomSizeRule
from dagster_imggen.errors import ImageRequestError
from dagster_imggen.request import ImageRequest, check_custom_size, parse_size


def req(**kw: object) -> ImageRequest:
    kw.setdefault("prompt", "a lighthouse at dusk")
    return ImageRequest(**kw)  # type: ignore[arg-type]


def refused(provider: str, field: str, **kw: object) -> ImageRequestError:
    with pytest.raises(ImageRequestError) as exc:
        ImageRequest.from_row({"prompt": "a lighthouse at dusk", **kw}, row=7).validate_for(provider, row=7)
    assert exc.value.field == field, str(exc.value)
    assert exc.value.row == 7
    return exc.value


def accepted(provider: str, **kw: object) -> None:
    req(**kw).validate_for(provider)


# --- size parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size", ["0x0", "-16x1024", "1024x1024x3", "１０２４x１０２４", "1024", "x", "", "1024 x 1024", "0016x1024",
             "1024x", "abcxdef", "1e3x1024", "1024x1024\n1", "9" * 5000 + "x16", "+16x16", "1024×1024"],
)  # fmt: skip
def test_hostile_sizes_give_clean_errors(size: str) -> None:
    with pytest.raises(ImageRequestError) as exc:
        ImageRequest.from_row({"prompt": "p", "size": size}, row=3)
    assert exc.value.field == "size"
    assert exc.value.row == 3
    assert str(exc.value).startswith("row 3: size")
    with pytest.raises(ImageRequestError) as exc2:
        parse_size(size)
    assert exc2.value.field == "size"


def test_hostile_but_well_formed_size_refused_by_model_rules() -> None:
    err = refused("openai", "size", size="99999x16")
    assert "gpt-image-2" in str(err)
    refused("openai", "size", size="99999x16", model="gpt-image-1.5")


def test_parse_size() -> None:
    assert parse_size("auto") is None
    assert parse_size("1536x1024") == (1536, 1024)
    assert req(size=" 1024X1536 ").size == "1024x1536"
    assert req(size="AUTO").dimensions is None


# --- gpt-image-2 custom sizes (OpenAI image-generation guide) -------------------------------------


def test_multiples_of_16() -> None:
    err = refused("openai", "size", size="1000x1000")
    assert str(err) == "row 7: size 1000x1000: width and height must be multiples of 16 (gpt-image-2)"
    refused("openai", "size", size="1024x1032")
    accepted("openai", size="1008x1008")
    accepted("openai", size="1024x1040")


def test_min_pixels_655360() -> None:
    accepted("openai", size="1024x640")  # 655,360 exactly
    err = refused("openai", "size", size="1008x640")  # 645,120
    assert "below the minimum of 655,360" in str(err)
    # The exact bound, with the multiple-of-16 rule relaxed: 655,359 vs 655,360 pixels.
    rule = CustomSizeRule(multiple_of=1, min_pixels=655_360, max_pixels=8_294_400)
    check_custom_size(640, 1024, rule, "t")
    with pytest.raises(ImageRequestError, match="655,359 pixels is below"):
        check_custom_size(3, 218_453, rule, "t")


def test_max_pixels_8294400() -> None:
    accepted("openai", size="3840x2160")  # 8,294,400 exactly
    accepted("openai", size="2160x3840")
    err = refused("openai", "size", size="3840x2176")
    assert "8,355,840 pixels is above the maximum of 8,294,400" in str(err)
    refused("openai", "size", size="2880x2896")
    rule = CustomSizeRule(multiple_of=1, min_pixels=1, max_pixels=8_294_400)
    check_custom_size(2160, 3840, rule, "t")
    with pytest.raises(ImageRequestError, match="8,294,401 pixels is above"):
        check_custom_size(373, 22_237, rule, "t")


def test_aspect_ratio_3_to_1() -> None:
    accepted("openai", size="3072x1024")  # 3:1
    accepted("openai", size="1024x3072")
    err = refused("openai", "size", size="3088x1024")  # 3.016:1
    assert "aspect ratio" in str(err)
    refused("openai", "size", size="1024x3088")
    rule = CustomSizeRule(multiple_of=1, min_pixels=1, max_aspect=Decimal(3))
    check_custom_size(300, 100, rule, "t")
    check_custom_size(100, 300, rule, "t")
    with pytest.raises(ImageRequestError, match=r"3\.01:1"):
        check_custom_size(301, 100, rule, "t")
    with pytest.raises(ImageRequestError, match="aspect"):
        check_custom_size(100, 301, rule, "t")


def test_longest_edge_3840() -> None:
    accepted("openai", size="3840x1296")
    err = refused("openai", "size", size="3856x1296")
    assert "longest edge 3856 px is above the maximum of 3840 px" in str(err)
    refused("openai", "size", size="1296x3856")


@pytest.mark.parametrize("provider", ["pixapi", "piapi", "apiyi", "local"])
def test_custom_size_rules_at_resellers(provider: str) -> None:
    accepted(provider, size="2048x1152")
    refused(provider, "size", size="1000x1000")
    refused(provider, "size", size="3856x1296")


# --- gpt-image-1 family presets ------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt-image-1.5", "gpt-image-1-mini"])
def test_gpt_image_1_family_only_presets(model: str) -> None:
    for size in ("1024x1024", "1536x1024", "1024x1536", "auto"):
        accepted("openai", model=model, size=size)
    for size in ("1024x1792", "2048x2048", "1008x1008", "1536x1536"):
        err = refused("openai", "size", model=model, size=size)
        assert "must be one of auto, 1024x1024, 1536x1024, 1024x1536" in str(err)


# --- n, prompt, quality --------------------------------------------------------------------------


def test_n_bounds_on_openai() -> None:
    accepted("openai", n=1)
    accepted("openai", n=10)
    refused("openai", "n", n=11)
    with pytest.raises(ImageRequestError) as exc:
        ImageRequest.from_row({"prompt": "p", "n": 0}, row=1)
    assert exc.value.field == "n"
    with pytest.raises(ValidationError):
        req(n=0)


def test_prompt_length_openai_32000() -> None:
    accepted("openai", prompt="x" * 32_000)
    err = refused("openai", "prompt", prompt="x" * 32_001)
    assert "32,001 characters is above the maximum of 32,000" in str(err)


@pytest.mark.parametrize("model", ["gpt-image-1.5", "gpt-image-1", "gpt-image-1-mini"])
def test_prompt_length_apiyi_legacy_1000(model: str) -> None:
    accepted("apiyi", model=model, prompt="x" * 1000)
    refused("apiyi", "prompt", model=model, prompt="x" * 1001)


def test_apiyi_gpt_image_2_all_takes_long_prompts() -> None:
    accepted("apiyi", model="gpt-image-2-all", prompt="x" * 1001)


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t"])
def test_empty_prompt(prompt: str) -> None:
    with pytest.raises(ImageRequestError) as exc:
        ImageRequest.from_row({"prompt": prompt}, row=0)
    assert exc.value.field == "prompt"


def test_missing_prompt() -> None:
    with pytest.raises(ImageRequestError) as exc:
        ImageRequest.from_row({"size": "1024x1024"}, row="r1")
    assert exc.value.field == "prompt"
    assert exc.value.row == "r1"


def test_quality_per_model() -> None:
    accepted("openai", quality="high")
    refused("openai", "quality", quality="hd")
    refused("openai", "quality", quality="standard")
    with pytest.raises(ImageRequestError) as exc:
        ImageRequest.from_row({"prompt": "p", "quality": "ultra"})
    assert exc.value.field == "quality"


# --- GPTImage2 (004_be499b8a5e35d015.txt) --------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt-image-1", "gpt-image-1.5"])
def test_gptimage2_rules(model: str) -> None:
    for size in ("1024x1024", "1024x1792", "1792x1024"):
        for quality in ("standard", "hd"):
            accepted("gptimage2", model=model, size=size, quality=quality)
    accepted("gptimage2", model=model, size="1024x1792", quality="hd", n=4)
    refused("gptimage2", "n", model=model, size="1024x1024", n=5)
    for size in ("1536x1024", "1024x1536", "auto", "1792x1008"):
        refused("gptimage2", "size", model=model, size=size)
    for quality in ("low", "medium", "high", "auto"):
        refused("gptimage2", "quality", model=model, size="1024x1024", quality=quality)


# --- output_compression / background / output_format ------------------------------------------


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_compression_bounds_with_jpeg_webp(fmt: str) -> None:
    accepted("openai", output_format=fmt, output_compression=0)
    accepted("openai", output_format=fmt, output_compression=100)
    for bad in (-1, 101):
        with pytest.raises(ImageRequestError) as exc:
            ImageRequest.from_row({"prompt": "p", "output_format": fmt, "output_compression": bad})
        assert exc.value.field == "output_compression"


def test_compression_refused_with_png() -> None:
    with pytest.raises(ImageRequestError, match="only with output_format jpeg or webp") as exc:
        ImageRequest.from_row({"prompt": "p", "output_format": "png", "output_compression": 50})
    assert exc.value.field == "output_compression"


def test_background_transparent_needs_png_or_webp() -> None:
    accepted("openai", model="gpt-image-1.5", background="transparent", output_format="png")
    accepted("openai", model="gpt-image-1.5", background="transparent", output_format="webp")
    accepted("openai", model="gpt-image-1.5", background="opaque", output_format="jpeg")
    with pytest.raises(ImageRequestError) as exc:
        ImageRequest.from_row({"prompt": "p", "background": "transparent", "output_format": "jpeg"})
    assert exc.value.field == "background"


def test_gpt_image_2_has_no_transparent_background() -> None:
    refused("openai", "background", background="transparent")
    accepted("openai", background="opaque")


def test_unknown_output_format() -> None:
    with pytest.raises(ImageRequestError) as exc:
        ImageRequest.from_row({"prompt": "p", "output_format": "gif"})
    assert exc.value.field == "output_format"


# --- edits and masks -----------------------------------------------------------------------------


def test_edits_refused_where_unsupported() -> None:
    for model in ("gpt-image-1.5", "gpt-image-1-mini"):  # APIYI: edits gpt-image-1 only
        err = refused("apiyi", "images", model=model, images=["a.png"])
        assert "edits are not supported" in str(err)
    accepted("apiyi", model="gpt-image-1", images=("a.png",), mask="m.png")


def test_masks_refused_where_unsupported() -> None:
    refused("piapi", "mask", images=["a.png"], mask="m.png")
    refused("pixapi", "mask", images=["a.png"], mask="m.png")
    refused("gptimage2", "mask", model="gpt-image-1.5", size="1024x1024", images=["a.png"], mask="m.png")
    accepted("gptimage2", model="gpt-image-1", size="1024x1024", images=("a.png",), mask="m.png")
    accepted("openai", images=("a.png",), mask="m.png")


def test_input_image_count() -> None:
    accepted("openai", images=tuple(f"{i}.png" for i in range(16)))
    refused("openai", "images", images=[f"{i}.png" for i in range(17)])
    accepted("piapi", images=("a.png",))
    refused("piapi", "images", images=["a.png", "b.png"])


def test_mask_needs_images() -> None:
    with pytest.raises(ImageRequestError) as exc:
        ImageRequest.from_row({"prompt": "p", "mask": "m.png"})
    assert exc.value.field == "mask"


# --- retired models, unknown names ---------------------------------------------------------------


def test_retired_model_fails_unless_allowed() -> None:
    err = refused("openai", "model", model="gpt-image-1")
    assert "retired" in str(err) and "2026-10-23" in str(err)
    req(model="gpt-image-1").validate_for("openai", allow_retired=True)
    accepted("piapi", model="gpt-image-1")  # retirement is per provider
    accepted("local", model="gpt-image-1")


def test_unknown_provider_and_model() -> None:
    with pytest.raises(ImageRequestError) as exc:
        req().validate_for("midjourney")
    assert exc.value.field == "provider"
    refused("openai", "model", model="dall-e-3")
    refused("gptimage2", "model", model="gpt-image-2")


# --- from_row ------------------------------------------------------------------------------------


def test_from_row_coerces_and_treats_missing() -> None:
    r = ImageRequest.from_row(
        {"prompt": "p", "n": "2", "quality": None, "output_compression": float("nan"), "images": "a.png"},
        row=4,
    )
    assert r.n == 2 and r.quality is None and r.output_compression is None and r.images == ("a.png",)


def test_from_row_numpy_and_pandas_cells() -> None:
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    r = ImageRequest.from_row({"prompt": "p", "n": np.int64(3), "quality": pd.NA, "mask": None}, row=0)
    assert r.n == 3 and r.quality is None


def test_from_row_unknown_column() -> None:
    with pytest.raises(ImageRequestError) as exc:
        ImageRequest.from_row({"prompt": "p", "colour": "red"}, row=9)
    assert exc.value.field == "colour"
    assert str(exc.value) == "row 9: colour: unknown field"


def test_from_row_bad_types() -> None:
    with pytest.raises(ImageRequestError) as exc:
        ImageRequest.from_row({"prompt": "p", "n": "two"}, row=2)
    assert exc.value.field == "n" and exc.value.row == 2
    with pytest.raises(ImageRequestError) as exc:
        ImageRequest.from_row(["prompt"], row=2)  # type: ignore[arg-type]
    assert exc.value.row == 2


def test_validate_for_rechecks_structure() -> None:
    bad = ImageRequest.model_construct(prompt="", model="gpt-image-2", size="1024x1024", n=1)
    with pytest.raises(ImageRequestError) as exc:
        bad.validate_for("openai")
    assert exc.value.field == "prompt"


# --- request_hash --------------------------------------------------------------------------------


def test_request_hash_is_stable_and_parameter_sensitive() -> None:
    a = req(quality="low")
    assert a.request_hash() == req(quality="low").request_hash()
    assert len(a.request_hash()) == 64
    assert a.request_hash() != req(quality="high").request_hash()
    assert a.request_hash() != req(quality="low", prompt="a lighthouse at dusk ").request_hash()
    assert req(extra={"user": None}).request_hash() == req().request_hash()
    assert req(extra={"user": "u1"}).request_hash() != req().request_hash()


def test_request_hash_uses_image_content(tmp_path: Path) -> None:
    one, two, other = tmp_path / "one.png", tmp_path / "two.png", tmp_path / "other.png"
    one.write_bytes(b"\x89PNG same bytes")
    two.write_bytes(b"\x89PNG same bytes")
    other.write_bytes(b"\x89PNG other bytes")
    h1 = req(images=(str(one),)).request_hash()
    assert h1 == req(images=(str(two),)).request_hash()
    assert h1 != req(images=(str(other),)).request_hash()
    assert req(images=(str(one),), mask=str(one)).request_hash() != h1
    one.write_bytes(b"\x89PNG changed")
    assert req(images=(str(one),)).request_hash() != h1


def test_request_hash_reads_fsspec_urls() -> None:
    with fsspec.open("memory://imggen-test/ref.png", "wb") as fh:
        fh.write(b"\x89PNG memory")
    h = req(images=("memory://imggen-test/ref.png",)).request_hash()
    assert h != req().request_hash()


def test_request_hash_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageRequestError) as exc:
        req(images=(str(tmp_path / "nope.png"),)).request_hash()
    assert exc.value.field == "images"
    with pytest.raises(ImageRequestError) as exc:
        (tmp_path / "a.png").write_bytes(b"x")
        req(images=(str(tmp_path / "a.png"),), mask=str(tmp_path / "nope.png")).request_hash()
    assert exc.value.field == "mask"

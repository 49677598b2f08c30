"""Cost engine: what a request will cost (estimate) and what a response did cost.

Every figure is USD as ``decimal.Decimal`` (quantised to 1e-9, the ledger's scale) with a
:class:`~dagster_imggen.result.CostBasis`:

- ``usage_tokens``: the response's ``usage`` x the per-1M-token rates (text input, cached input,
  image input, image output);
- ``flat``: a flat fee per image or per call (PiAPI ``gpt-image-2-preview`` $0.10 per image;
  APIYI ``gpt-image-2-all`` $0.03 per image, billing ``n`` although it returns one image);
- ``credits``: provider credits x USD per credit (Pixapi's size-tier x quality matrix with
  ``quality=auto`` billed as high and ``size=auto`` as the 1K tier, times n; AI Generate's
  per-variant credits at $0.007; a credits figure reported by the provider overrides the estimate);
- ``per_image_table``: a per-image price table (GPTImage2; APIYI legacy models are billed the
  cheaper of token cost and table cost);
- ``estimate``: expected tokens for size and quality (nothing reported yet, usage missing, or the
  offline ``local`` provider).

Prices come from the catalog (``catalog.toml``), each with its source and as-of date.
"""

from __future__ import annotations

import dataclasses
import math
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from ._log import logger
from .errors import ImageRequestError
from .request import parse_size
from .result import Cost, CostBasis, Usage

if TYPE_CHECKING:
    from .catalog import Catalog, ModelSpec, Pricing
    from .request import ImageRequest

__all__ = [
    "IMAGE_INPUT_TOKENS_PER_IMAGE",
    "cost_of_response",
    "estimate_cost",
    "estimate_credits",
    "expected_output_tokens",
    "expected_usage",
    "resolve_quality",
    "token_cost",
]


_MILLION = Decimal(1_000_000)
_USD_SCALE = Decimal("0.000000001")  # 1e-9 USD, the ledger's decimal128(18, 9)

#: Expected image-input tokens per reference image of an edit: PiAPI's sample edit response
#: reports ``image_tokens: 1105`` for one reference image (000_305fa6c5cb57ea7f.txt, 2026-11-21).
IMAGE_INPUT_TOKENS_PER_IMAGE = 1105

#: Characters per text token for prompt estimates (the usual ~4 chars/token rule of thumb).
CHARS_PER_TOKEN = 4

# gpt-image-1 family: grid cells per short edge by quality (OpenAI's output-token table).
_GPT_IMAGE_1_GRID = {"low": 16, "medium": 32, "high": 64}
# gpt-image-2 (fit to OpenAI's calculator; see expected_output_tokens).
_GPT_IMAGE_2_AXIS = {"low": 16, "medium": 48, "high": 96}
_GPT_IMAGE_2_OFFSET = 2_000_000
_GPT_IMAGE_2_SCALE = 4_000_000
_ESTIMATE_SIZES = ("1024x1024", "1536x1024", "1024x1536")


def _usd(value: Decimal) -> Decimal:
    return value.quantize(_USD_SCALE, rounding=ROUND_HALF_UP)


def _token_quality(quality: str) -> str:
    """Map any quality onto low | medium | high for token counting (auto/hd -> high, standard -> medium)."""
    mapped = {"auto": "high", "hd": "high", "standard": "medium"}.get(quality, quality)
    if mapped not in _GPT_IMAGE_1_GRID:
        raise ImageRequestError(f"quality {quality!r}: cannot estimate output tokens", field="quality")
    return mapped


def expected_output_tokens(model: str, size: str, quality: str) -> int:
    """Expected image output tokens for one image of ``size`` (pixels ``"WxH"`` or ``"auto"``) at
    ``quality`` (low | medium | high; auto and hd count as high, standard as medium).

    ``size="auto"`` counts as the most expensive of 1024x1024, 1536x1024 and 1024x1536.

    - gpt-image-1, gpt-image-1-mini, gpt-image-1.5 (and other ``gpt-image-1*``): OpenAI's table
      (image-generation guide; ../shared/providers/README.md, as of 2026-11-21)::

                      low   medium  high
          1024x1024   272   1056    4160
          1024x1536   408   1584    6240
          1536x1024   400   1568    6208

      computed as ``cols * rows + rows`` with the short edge ``g`` cells (16/32/64 by quality) and
      the long edge ``ceil(g * long / short)`` cells; this reproduces every cell exactly.
    - gpt-image-2 (and ``gpt-image-2-*``): the algorithm behind OpenAI's gpt-image-2 cost
      calculator as published on the OpenAI developer forum (thread 1382699, 2026-06-05), with
      ``q`` = 16/48/96 for low/medium/high::

          s = (2*q*short + long) // (2*long)
          tokens = ceil(q * s * (2_000_000 + width*height) / 4_000_000)

      Residuals against OpenAI's calculator figures quoted on the forum: 1024x1024 high 7024,
      1536x1024 high 5488, 1792x1024 high 5063, 3584x2048 high 12329: all 0 tokens. At $30 per 1M
      output tokens it gives $0.00588/$0.05268/$0.21072 for 1024x1024 low/medium/high and
      $0.00474/$0.04116/$0.16464 for 1024x1536, against OpenAI's published ~$0.006/$0.053/$0.211
      and ~$0.005/$0.041/$0.165: every residual under $0.0005 (the rounding of the published cents).

    Raises ``ImageRequestError`` for an unknown model family, size or quality.
    """
    q = _token_quality(quality)
    dims = parse_size(size)
    if dims is None:
        return max(expected_output_tokens(model, s, q) for s in _ESTIMATE_SIZES)
    width, height = dims
    long_edge, short_edge = max(width, height), min(width, height)
    if model.startswith("gpt-image-2"):
        axis = _GPT_IMAGE_2_AXIS[q]
        short_factor = (2 * axis * short_edge + long_edge) // (2 * long_edge)
        numerator = axis * short_factor * (_GPT_IMAGE_2_OFFSET + width * height)
        return -(-numerator // _GPT_IMAGE_2_SCALE)
    if model.startswith("gpt-image-1"):
        grid = _GPT_IMAGE_1_GRID[q]
        long_cells = -(-grid * long_edge // short_edge)
        cols, rows = (long_cells, grid) if width >= height else (grid, long_cells)
        return cols * rows + rows
    raise ImageRequestError(f"model {model!r}: no output-token model for this family", field="model")


def expected_usage(request: ImageRequest, *, quality: str | None = None) -> Usage:
    """Realistic ``Usage`` for ``request`` (tokens): what the local provider and the emulator report.

    - text input: ``ceil(len(prompt) / 4)``;
    - image input: ``1105`` per reference image (PiAPI's sample edit response, 000_*.txt);
    - output: ``n x expected_output_tokens(model, size, quality)``; ``quality`` defaults to the
      request's, else ``medium``.
    """
    q = quality or request.quality or "medium"
    return Usage(
        input_text_tokens=math.ceil(len(request.prompt) / CHARS_PER_TOKEN),
        input_image_tokens=IMAGE_INPUT_TOKENS_PER_IMAGE * len(request.images),
        cached_input_tokens=0,
        output_tokens=request.n * expected_output_tokens(request.model, request.size, q),
    )


def token_cost(pricing: Pricing, usage: Usage) -> Decimal:
    """USD for ``usage`` at ``pricing``'s per-1M-token rates (not quantised).

    Cached input tokens are part of the input tokens: they come off the text tokens first, then the
    image tokens, and are billed at the cached rates (the uncached rate when none is listed).
    """
    text_rate = pricing.text_input or Decimal(0)
    image_rate = pricing.image_input if pricing.image_input is not None else text_rate
    text_cached_rate = pricing.text_cached_input if pricing.text_cached_input is not None else text_rate
    image_cached_rate = pricing.image_cached_input if pricing.image_cached_input is not None else image_rate
    out_rate = pricing.image_output or Decimal(0)
    cached_text = min(usage.cached_input_tokens, usage.input_text_tokens)
    cached_image = min(usage.cached_input_tokens - cached_text, usage.input_image_tokens)
    total = (
        (usage.input_text_tokens - cached_text) * text_rate
        + cached_text * text_cached_rate
        + (usage.input_image_tokens - cached_image) * image_rate
        + cached_image * image_cached_rate
        + usage.output_tokens * out_rate
    )
    return total / _MILLION


def _catalog(catalog: Catalog | None) -> Catalog:
    from .catalog import get_catalog

    return catalog or get_catalog()


def _billing_quality(request: ImageRequest, spec: ModelSpec) -> str:
    return request.quality or spec.default_quality


def _billed_images(request: ImageRequest, pricing: Pricing, images_returned: int | None) -> int:
    if pricing.bills == "returned" and images_returned is not None:
        return max(images_returned, 0)
    return request.n


def _table_price(pricing: Pricing, quality: str, size: str) -> Decimal:
    """USD per image from ``per_image``; auto quality reads the high row, auto size the dearest cell."""
    table = pricing.per_image
    # auto reads the row it is billed as (high); standard/hd read medium/high.
    alias = pricing.auto_quality_as if quality == "auto" else _token_quality(quality)
    row = table.get(quality) or table.get(alias) or table.get("*")
    if row is None:
        raise ImageRequestError(f"quality {quality}: no per-image price", field="quality")
    price = row.get(size) or row.get("*")
    if price is None and size == "auto":
        price = max(row.values())
    if price is None:
        raise ImageRequestError(f"size {size}: no per-image price", field="size")
    return price


def _tier_credits(spec: ModelSpec, request: ImageRequest, quality: str) -> tuple[Decimal, str]:
    pricing = spec.pricing
    q = pricing.auto_quality_as if quality == "auto" else quality
    dims = parse_size(request.size)
    tiers = sorted(pricing.credit_tiers, key=lambda t: t.max_long_edge)
    if dims is None:
        tier = next((t for t in tiers if t.name == pricing.auto_size_tier), tiers[0])
    else:
        long_edge = max(dims)
        found = next((t for t in tiers if long_edge <= t.max_long_edge), None)
        if found is None:
            raise ImageRequestError(
                f"size {request.size}: long edge {long_edge} px is above every credit tier ({spec.label})",
                field="size",
            )
        tier = found
    return tier.credits(q), f"tier {tier.name} {q}"


def estimate_credits(request: ImageRequest, provider: str, catalog: Catalog | None = None) -> Decimal | None:
    """Credits ``request`` should cost at ``provider`` (credit-billed models), else None.

    Pixapi: matrix value for the size tier (long edge) and quality, times n (``auto`` quality = high,
    ``auto`` size = 1K tier; 001_d01986769ffd2010.txt). AI Generate: the variant's credits per image
    times n (002_7794215a2f478efb.txt). Raises ``ImageRequestError`` when no price applies.
    """
    spec = _catalog(catalog).model(provider, request.model)
    if spec.pricing.scheme != "credits":
        return None
    return _credits_detail(request, spec)[0]


def _credits_detail(request: ImageRequest, spec: ModelSpec) -> tuple[Decimal, str]:
    quality = _billing_quality(request, spec)
    if spec.pricing.variants:
        mode = "image-to-image" if request.is_edit else "text-to-image"
        variant = spec.variant(mode, quality)
        return variant.credits * request.n, f"variant {variant.slug}: {variant.credits} credits x {request.n}"
    per_image, how = _tier_credits(spec, request, quality)
    return per_image * request.n, f"{how}: {per_image} credits x {request.n}"


def _credits_cost(spec: ModelSpec, credits: Decimal, how: str) -> Cost:
    pricing = spec.pricing
    rate = pricing.usd_per_credit or Decimal(0)
    assumed = (
        " (ASSUMED USD value per credit; override usd_per_credit in the catalog)"
        if (pricing.usd_per_credit_assumed)
        else ""
    )
    detail = f"{credits} credits x ${rate}/credit{assumed}; {how}"
    basis = CostBasis.ESTIMATE if spec.estimate_only else CostBasis.CREDITS
    return Cost(_usd(credits * rate), basis, detail)


def _token_estimate(
    request: ImageRequest, spec: ModelSpec, include_prompt: bool
) -> tuple[Decimal, Usage, str]:
    quality = _billing_quality(request, spec)
    usage = expected_usage(request, quality=quality)
    if not include_prompt:
        usage = dataclasses.replace(usage, input_text_tokens=0)
    how = (
        f"expected {usage.output_tokens} output tokens ({request.n} x {request.size} {quality}), "
        f"{usage.input_text_tokens} text + {usage.input_image_tokens} image input tokens"
    )
    return token_cost(spec.pricing, usage), usage, how


def estimate_cost(
    request: ImageRequest, provider: str, catalog: Catalog | None = None, *, include_prompt: bool = True
) -> Cost:
    """Expected cost of ``request`` at ``provider`` before it is sent (USD ``Decimal``).

    Uses the request's quality, else the catalog's explicit ``default_quality`` for the model.
    Token-billed models: ``expected_usage`` x the rates (prompt text included), basis ``estimate``;
    APIYI legacy: the cheaper of that and the per-image table; flat, per-image-table and credit
    prices are documented figures and keep their own basis. ``include_prompt=False`` leaves out the
    prompt's text tokens (the per-request image part only). Raises ``ImageRequestError`` for an
    unknown provider/model or a size/quality without a price.
    """
    spec = _catalog(catalog).model(provider, request.model)
    return _price(
        request, spec, usage=None, credits=None, images_returned=None, include_prompt=include_prompt
    )


def cost_of_response(
    request: ImageRequest,
    provider: str,
    *,
    usage: Usage | None,
    credits: Decimal | None = None,
    images_returned: int | None = None,
    catalog: Catalog | None = None,
) -> Cost:
    """Cost of a response to ``request`` from ``provider`` (USD ``Decimal``).

    ``usage``: the response's token usage (None when absent: token-billed models then fall back to
    the estimate, basis ``estimate``, and ``Cost.detail`` says so). ``credits``: credits the provider
    reported (e.g. AI Generate's ``X-AI-Credits-Charged`` header), which override the estimate.
    ``images_returned``: images in the response; used where the provider bills returned images
    (GPTImage2 bills successful images only) and ignored where it bills ``n`` (APIYI
    ``gpt-image-2-all``). The ``local`` provider always reports basis ``estimate``.
    """
    spec = _catalog(catalog).model(provider, request.model)
    return _price(request, spec, usage=usage, credits=credits, images_returned=images_returned, response=True)


def _price(
    request: ImageRequest,
    spec: ModelSpec,
    *,
    usage: Usage | None,
    credits: Decimal | None,
    images_returned: int | None,
    response: bool = False,
    include_prompt: bool = True,
) -> Cost:
    pricing = spec.pricing
    scheme = pricing.scheme
    src = f"[{pricing.source}, as of {pricing.as_of}]"

    if scheme == "credits":
        if credits is not None:
            return _credits_cost(spec, Decimal(credits), f"reported by {spec.provider} {src}")
        amount, how = _credits_detail(request, spec)
        return _credits_cost(spec, amount, f"estimated from {how} {src}")

    if scheme == "flat":
        count = 1 if pricing.per == "call" else _billed_images(request, pricing, images_returned)
        flat = pricing.flat_usd or Decimal(0)
        basis = CostBasis.ESTIMATE if spec.estimate_only else CostBasis.FLAT
        return Cost(_usd(flat * count), basis, f"${flat} per {pricing.per} x {count} {src}")

    if scheme == "per_image_table":
        count = _billed_images(request, pricing, images_returned)
        quality = _billing_quality(request, spec)
        price = _table_price(pricing, quality, request.size)
        basis = CostBasis.ESTIMATE if spec.estimate_only else CostBasis.PER_IMAGE_TABLE
        return Cost(
            _usd(price * count), basis, f"${price} per image ({request.size} {quality}) x {count} {src}"
        )

    # tokens / tokens_or_table
    if usage is not None:
        tokens_usd = token_cost(pricing, usage)
        basis = CostBasis.ESTIMATE if spec.estimate_only else CostBasis.USAGE_TOKENS
        how = (
            f"usage: {usage.input_text_tokens} text + {usage.input_image_tokens} image input tokens "
            f"({usage.cached_input_tokens} cached), {usage.output_tokens} output tokens"
        )
        if spec.estimate_only:
            how = f"offline provider, priced like OpenAI; {how}"
    else:
        tokens_usd, _, how = _token_estimate(request, spec, include_prompt)
        basis = CostBasis.ESTIMATE
        if response:
            how = f"usage missing from the response; estimated from {how}"
    cost = Cost(_usd(tokens_usd), basis, f"{how} {src}")
    if scheme == "tokens_or_table":
        count = _billed_images(request, pricing, images_returned)
        quality = _billing_quality(request, spec)
        table_usd = _table_price(pricing, quality, request.size) * count
        if table_usd < tokens_usd:
            table_basis = CostBasis.ESTIMATE if spec.estimate_only else CostBasis.PER_IMAGE_TABLE
            return Cost(
                _usd(table_usd),
                table_basis,
                f"per-image table ${table_usd} ({count} x {request.size} {quality}) is cheaper than "
                f"tokens ${_usd(tokens_usd)} ({how}) {src}",
            )
        return Cost(cost.usd, cost.basis, f"{cost.detail}; cheaper than per-image table ${table_usd}")
    return cost


def resolve_quality(
    request: ImageRequest, provider: str, default: str | None = None, catalog: Catalog | None = None
) -> str:
    """The quality to send for ``request``: never ``auto`` unless the caller asked for it.

    - ``request.quality`` set: returned as is; ``auto`` on a token-billed model (or one whose credits
      bill ``auto`` as high) logs a WARNING on logger ``dagster_imggen``: PiAPI documents that
      ``auto`` can bill ~2x (000_305fa6c5cb57ea7f.txt) and Pixapi bills ``auto`` as high
      (001_d01986769ffd2010.txt).
    - otherwise ``default`` (the resource's configurable default) when the model accepts it
      (standard<->medium and hd<->high are translated), else the catalog's ``default_quality``.
      A ``default`` of ``auto`` is ignored with a warning.

    Raises ``ImageRequestError`` for an unknown provider/model.
    """
    spec = _catalog(catalog).model(provider, request.model)
    if request.quality is not None:
        if request.quality == "auto" and (spec.pricing.token_billed or spec.pricing.scheme == "credits"):
            logger.warning(
                "quality=auto requested for %s on %s: %s; pass an explicit quality (low/medium/high) "
                "to keep costs predictable",
                request.model,
                provider,
                "token-billed, auto can bill ~2x an explicit quality"
                if spec.pricing.token_billed
                else f"billed as {spec.pricing.auto_quality_as}",
            )
        return request.quality
    if default is None:
        return spec.default_quality
    if default == "auto":
        logger.warning(
            "default quality 'auto' ignored for %s on %s: the library never sends auto implicitly; sending %r",
            request.model,
            provider,
            spec.default_quality,
        )
        return spec.default_quality
    if default in spec.qualities:
        return default
    translated = {"standard": "medium", "medium": "standard", "hd": "high", "high": "hd"}.get(default)
    if translated in spec.qualities:
        return translated
    return spec.default_quality

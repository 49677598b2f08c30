"""Cost engine (stub signatures; being completed under issue #2)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from .result import Cost, Usage

if TYPE_CHECKING:
    from .catalog import Catalog
    from .request import ImageRequest


def expected_output_tokens(model: str, size: str, quality: str) -> int:
    raise NotImplementedError


def expected_usage(request: ImageRequest) -> Usage:
    raise NotImplementedError


def estimate_cost(request: ImageRequest, provider: str, catalog: Catalog | None = None) -> Cost:
    raise NotImplementedError


def cost_of_response(
    request: ImageRequest,
    provider: str,
    *,
    usage: Usage | None,
    credits: Decimal | None = None,
    images_returned: int | None = None,
    catalog: Catalog | None = None,
) -> Cost:
    raise NotImplementedError


def resolve_quality(
    request: ImageRequest, provider: str, default: str | None = None, catalog: Catalog | None = None
) -> str:
    raise NotImplementedError

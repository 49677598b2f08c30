"""dagster-imggen: image generation for Dagster.

Public names load lazily, so ``import dagster_imggen`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # core
    "ImageRequest": ".request",
    "ImageResult": ".result",
    "GeneratedImage": ".result",
    "Usage": ".result",
    "Cost": ".result",
    "CostBasis": ".result",
    "TaskState": ".result",
    "Catalog": ".catalog",
    "load_catalog": ".catalog",
    "get_catalog": ".catalog",
    "estimate_cost": ".cost",
    "cost_of_response": ".cost",
    "expected_output_tokens": ".cost",
    "expected_usage": ".cost",
    "estimate_credits": ".cost",
    "resolve_quality": ".cost",
    "ModelSpec": ".catalog",
    "CatalogError": ".catalog",
    "parse_size": ".request",
    # errors
    "ImgGenError": ".errors",
    "ImageRequestError": ".errors",
    "ProviderError": ".errors",
    "RetryableProviderError": ".errors",
    "RateLimitError": ".errors",
    "TerminalProviderError": ".errors",
    "AuthenticationError": ".errors",
    "InsufficientCreditsError": ".errors",
    "ContentRejectedError": ".errors",
    "MalformedResponseError": ".errors",
    "ImageDecodeError": ".errors",
    "DownloadError": ".errors",
    "UnsafeURLError": ".errors",
    "TaskFailedError": ".errors",
    "TaskCancelledError": ".errors",
    "TaskTimeoutError": ".errors",
    "TransportError": ".errors",
    # resources
    "ImageProviderResource": ".providers.base",
    "RemoteImageResource": ".providers.base",
    "RateLimit": ".providers.base",
    "OpenAIImageResource": ".providers.openai",
    "PiAPIImageResource": ".providers.piapi",
    "PixapiImageResource": ".providers.pixapi",
    "APIYIImageResource": ".providers.apiyi",
    "AIGenerateImageResource": ".providers.aigenerate",
    "GPTImage2ImageResource": ".providers.gptimage2",
    "LocalImageResource": ".providers.local",
    # pipeline
    "build_image_generation_assets": ".pipeline.factory",
    "ImagePipeline": ".pipeline.factory",
    "PromptSource": ".pipeline.prompts",
    # component
    "ImageGenerationComponent": ".components.image_generation",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dagster_imggen' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

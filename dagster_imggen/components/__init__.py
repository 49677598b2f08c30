"""``dg`` Components: ``ImageGenerationComponent`` declares a whole pipeline in ``defs.yaml``."""

from .image_generation import (
    ChecksConfig,
    ImageGenerationComponent,
    ImageGenerationScaffolder,
    PartitioningConfig,
    PromptsConfig,
    ProviderConfig,
    RequestDefaults,
)

__all__ = [
    "ChecksConfig",
    "ImageGenerationComponent",
    "ImageGenerationScaffolder",
    "PartitioningConfig",
    "PromptsConfig",
    "ProviderConfig",
    "RequestDefaults",
]

"""The example project's ``dg.Definitions`` (``dagster dev -w workspace.yaml`` loads it)."""

from __future__ import annotations

from assets import PIPELINE, provider_resource

defs = PIPELINE.to_definitions(resources={"image_provider": provider_resource()})

"""The example project's ``dg.Definitions`` (``dagster dev -w workspace.yaml`` loads it).

Two pipelines: the Python one (``assets/``, partitioned by category) and a daily one declared as an
``ImageGenerationComponent`` in ``defs/daily_images/defs.yaml``.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from assets import PIPELINE, provider_resource

defs = dg.Definitions.merge(
    PIPELINE.to_definitions(resources={"image_provider": provider_resource()}),
    dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
)

"""The example project: one image pipeline over a prompt table partitioned by ``Category``.

Configured by environment variables (see ``assets/imggen.py``); the local offline provider by
default, so everything runs without a key or network.
"""

from .imggen import PIPELINE, build_pipeline, provider_resource

__all__ = ["PIPELINE", "build_pipeline", "provider_resource"]

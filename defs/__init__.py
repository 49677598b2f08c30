"""The example project's ``dg`` defs folder: pipelines declared as Components (``defs.yaml``)."""

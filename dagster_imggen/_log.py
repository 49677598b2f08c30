"""The library's logger.

It is ``dagster.get_dagster_logger("dagster_imggen")``: a child of Dagster's builtin logger, so every
retry, its reason and every warning land in the run's event log with no ``python_logs`` setting, and
outside Dagster it is a plain ``logging`` logger named ``dagster.builtin.dagster_imggen``.
"""

from __future__ import annotations

import dagster as dg

logger = dg.get_dagster_logger("dagster_imggen")
LOGGER_NAME = logger.name

#!/usr/bin/env bash
# The main job on a fresh machine: every partition of the prompt table in one run (local provider
# unless IMGGEN_PROVIDER says otherwise), then where the images, the ledger and the spend table are.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
if [ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ]; then PY=.venv/bin/python; fi
exec "$PY" -m assets.main_job "$@"

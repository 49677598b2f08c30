#!/usr/bin/env bash
# Smoke runs of every benchmark: tiny sizes, seconds each, no timing assertions, results not saved.
# Run from the repository root (CI: `bash benchmarks/smoke.sh`); exits non-zero on the first error.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python
export PYTHONUNBUFFERED=1 DAGSTER_DISABLE_TELEMETRY=1

run() {
  local name=$1
  shift
  local started=$SECONDS
  echo "smoke: $name"
  if ! "$PY" "benchmarks/$name" --smoke "$@" >"${TMPDIR:-/tmp}/imggen-smoke-$name.log" 2>&1; then
    echo "smoke: $name FAILED; last lines:" >&2
    tail -n 40 "${TMPDIR:-/tmp}/imggen-smoke-$name.log" >&2
    exit 1
  fi
  echo "smoke: $name ok ($((SECONDS - started)) s)"
}

run bench_throughput.py
run bench_overhead.py
run bench_memory.py
run bench_main_job.py
run bench_backfill.py
if [ -f benchmarks/bench_generate_many.py ]; then
  run bench_generate_many.py
fi
echo "smoke: all benchmarks ok"

#!/usr/bin/env bash
# Screenshots of the example project in a real browser: materialise a few partitions, start `dagster dev`,
# drive headless Chromium (Debian's `chromium`, through playwright-core) and save PNGs here.
#
#   apt-get install -y chromium     # and node + npm
#   docs/screenshots/take.sh [PORT]  # default 3333; takes 2-10 minutes, depending on the machine
#
# Everything it writes (DAGSTER_HOME, IMGGEN_OUTPUT, node_modules) goes to a temp dir, removed at the end.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
cd "$HERE/../.."
PORT="${1:-3333}"
BIN="${VENV_BIN:-$(pwd)/.venv/bin}"
WORK="$(mktemp -d)"
export DAGSTER_HOME="$WORK/home" IMGGEN_OUTPUT="$WORK/output" PATH="$BIN:$PATH"
mkdir -p "$DAGSTER_HOME"
printf 'telemetry:\n  enabled: false\n' > "$DAGSTER_HOME/dagster.yaml"
DEV_PID=""
cleanup() {
  if [ -n "$DEV_PID" ]; then # dagster dev runs in its own process group (setsid): stop that group only
    kill -INT -- "-$DEV_PID" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 -- "-$DEV_PID" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$DEV_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

materialize() { dagster asset materialize -f definitions.py "$@" > "$WORK/materialize.log" 2>&1 || { tail -30 "$WORK/materialize.log"; return 1; }; }

echo "materialising into $IMGGEN_OUTPUT"
for p in Animals Arts Abstract; do
  materialize --select generated_images --partition "$p"
  materialize --select image_spend # one spend point per run, for its Plots tab
done
# The daily pipeline declared as a component (defs/daily_images/defs.yaml), when definitions.py loads it.
if dagster asset list -f definitions.py 2>/dev/null | grep -qx daily_images; then
  for d in 2026-11-14 2026-11-15; do
    materialize --select daily_images --partition "$d"
    materialize --select daily_images_spend
  done
fi

echo "starting dagster dev on port $PORT"
# In its own session, so that cleanup stops exactly this process group (its pid is the group id).
setsid bash -c 'echo $$ > "$1"; exec dagster dev -w workspace.yaml -h 127.0.0.1 -p "$2"' _ "$WORK/dev.pid" "$PORT" \
  > "$WORK/dev.log" 2>&1 &
for _ in $(seq 1 50); do [ -s "$WORK/dev.pid" ] && break; sleep 0.1; done
DEV_PID="$(cat "$WORK/dev.pid")"
for _ in $(seq 1 90); do curl -sf "http://127.0.0.1:$PORT/server_info" > /dev/null && break; sleep 2; done
curl -sf "http://127.0.0.1:$PORT/server_info" > /dev/null || { tail -40 "$WORK/dev.log"; exit 1; }
# Mark the first-visit "Join the Dagster community" dialog as seen, so it does not cover the pages.
curl -sf -H 'Content-Type: application/json' -d '{"query":"mutation { setNuxSeen }"}' \
  "http://127.0.0.1:$PORT/graphql" > /dev/null || true

(cd "$WORK" && npm init -y > /dev/null && npm i --silent playwright-core > /dev/null)
NODE_PATH="$WORK/node_modules" node "$HERE/take.js" "http://127.0.0.1:$PORT" "$HERE"
ls -l "$HERE"/*.png

#!/usr/bin/env bash
# run.sh — run the browser tests against a Parley built from this checkout.
#
#   bash scripts/browser/run.sh
#
# Builds the server, starts it on a free loopback port with a throw-away
# SQLite data directory (or against PARLEY_URL if that is already set: then
# nothing is started), installs the test's npm dependencies from the lock
# file, and runs `npm test` (node:test + playwright-core driving Debian's
# /usr/bin/chromium). Screenshots go to $SCREENSHOT_DIR
# (default scripts/browser/screenshots). Extra arguments go to node --test,
# e.g. --test-name-pattern=offline.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "browser tests: installing Debian's chromium"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "browser tests need Chromium at $chromium (apt-get install chromium, or set CHROMIUM_PATH)" >&2
    exit 1
  fi
fi

cd "$here"
if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

server_pid=""
workdir=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  [ -n "$workdir" ] && rm -rf "$workdir"
}
trap cleanup EXIT

if [ -z "${PARLEY_URL:-}" ]; then
  workdir="$(mktemp -d)"
  (cd "$root" && go build -o "$workdir/parley" .)
  port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
  # Its own environment: no MONGO_URI/REDIS_URL from the caller's shell.
  env -u MONGO_URI -u REDIS_URL \
    HOST=127.0.0.1 PORT="$port" DATA_DIR="$workdir/data" BCRYPT_COST=4 LOG_LEVEL=warn \
    JWT_SECRET="browser-tests-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')" \
    "$workdir/parley" >"$workdir/parley.log" 2>&1 &
  server_pid=$!
  export PARLEY_URL="http://127.0.0.1:$port"
  for _ in $(seq 1 150); do
    if curl -fsS "$PARLEY_URL/readyz" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
      echo "parley exited during start-up:" >&2
      cat "$workdir/parley.log" >&2
      exit 1
    fi
    sleep 0.2
  done
  curl -fsS "$PARLEY_URL/readyz" >/dev/null || { echo "parley did not become ready" >&2; cat "$workdir/parley.log" >&2; exit 1; }
fi

echo "browser tests against $PARLEY_URL"
status=0
node --test --test-concurrency=1 --test-reporter=spec "$@" test/ || status=$?
if [ "$status" != 0 ] && [ -n "$workdir" ]; then
  echo "--- parley log ---" >&2
  tail -n 100 "$workdir/parley.log" >&2
fi
exit "$status"

#!/usr/bin/env bash
# Installs what the test suite talks to, on a fresh machine: redis-server
# (when REDIS_URL is not given), Debian's Chromium for the browser tests,
# Debian's python3-socketio for the Python client test, and the npm packages
# of the JS suites. Go tests start their own Redis and
# MongoDB-wire server (FerretDB) from these.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# nginx: the load-balancer tests run their own, on a free port.
if [ ! -x /usr/sbin/nginx ]; then need_apt+=(nginx); fi
if [ -z "${REDIS_URL:-}" ] && ! command -v redis-server >/dev/null; then need_apt+=(redis-server); fi
if [ -z "${PARLEY_SKIP_BROWSER:-}" ] && [ ! -x /usr/bin/chromium ]; then need_apt+=(chromium); fi
if ! /usr/bin/python3 -c 'import socketio, requests, websocket' 2>/dev/null; then
  need_apt+=(python3-socketio python3-requests python3-websocket)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test-deps: installing ${need_apt[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "test-deps: missing ${need_apt[*]}; install them (or set REDIS_URL / PARLEY_SKIP_BROWSER=1)" >&2
    exit 1
  fi
fi

for dir in scripts/js scripts/mern scripts/browser scripts/cluster; do
  if [ -f "$dir/package-lock.json" ]; then
    # Skip when node_modules already matches the lock file.
    stamp="$dir/node_modules/.package-lock.json"
    if [ ! -f "$stamp" ] || ! cmp -s <(sed -n '/"packages"/,$p' "$dir/package-lock.json" | sed 1d) <(sed -n '/"packages"/,$p' "$stamp" | sed 1d) 2>/dev/null; then
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
  fi
done

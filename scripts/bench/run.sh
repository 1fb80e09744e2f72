#!/usr/bin/env bash
# Issue 9's load run, side by side in one go: Node's bare socket.io (../shared/bench/node-bare),
# then Parley on its embedded store, with the shared load generator, all on 127.0.0.1.
# Run nothing else meanwhile: the generator shares the machine's cores with the server.
#
# usage: scripts/bench/run.sh <parley-bin> <outdir> [bench-dir (default ../shared/bench)]
# Results: <outdir>/results.jsonl (one JSON line per run, the generator's), <outdir>/*.txt (its
# step-by-step output), <outdir>/parley-*.log.
set -euo pipefail
BIN=$(realpath "$1"); OUT=$(realpath -m "$2"); BENCH=$(realpath "${3:-$(dirname "$0")/../../../shared/bench}")
mkdir -p "$OUT"; W=$(mktemp -d); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cp -r "$BENCH/." "$W/bench"
(cd "$W/bench/loadgen" && go build -o ../lg .) && (cd "$W/bench/node-bare" && npm ci --silent)
LG="$W/bench/lg"; RES="$OUT/results.jsonl"
# A TCP connect, not an HTTP request: node-bare answers nothing outside /socket.io/.
waitport() { for _ in $(seq 150); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.2; done; echo "port $1 never answered" >&2; return 1; }
stop() { kill "$1"; wait "$1" 2>/dev/null || true; }

echo "== Node bare socket.io"
node "$W/bench/node-bare/server.js" 127.0.0.1 3102 >"$OUT/node.log" 2>&1 & NODE=$!; PIDS+=("$NODE")
waitport 3102
NURL='ws://127.0.0.1:3102/socket.io/?EIO=4&transport=websocket'
"$LG" -mode fanout -label node-bare -url "$NURL" -n 1000 -room 10 -rates 2000,4000,6000,8000,10000,12000 -step 5s -pid "$NODE" -out "$RES" | tee "$OUT/node-fanout.txt"
"$LG" -mode storm -label node-bare -url "$NURL" -n 5000 -pid "$NODE" -out "$RES" | tee "$OUT/node-storm.txt"
"$LG" -mode idle -label node-bare -url "$NURL" -n 10000 -hold 10s -pid "$NODE" -out "$RES" | tee "$OUT/node-idle.txt"
stop "$NODE"

# Every client comes from 127.0.0.1 and sends flat out: the flood limits are lifted for the run.
PENV=(HOST=127.0.0.1 PORT=5091 JWT_SECRET=bench-secret-bench-secret-bench-secret BCRYPT_COST=4 LOG_LEVEL=warn
      LIMIT_MESSAGE_SEND=100000/s:100000 LIMIT_TYPING=100000/s:100000 LIMIT_HANDSHAKES=100000/s:100000
      LIMIT_REST=100000/s:100000 LIMIT_SIGNUPS=100000/s:100000 MAX_SOCKETS_PER_USER=1000
      MAX_SOCKETS_PER_ADDRESS=100000 LOGIN_FAILURES_PER_ADDRESS=100000 PPROF=1 PPROF_ADDR=127.0.0.1:6061)
parley() { # data-dir log
  env "${PENV[@]}" DATA_DIR="$1" "$BIN" >"$2" 2>&1 & PARLEY=$!; PIDS+=("$PARLEY"); waitport 5091
}
BASE=http://127.0.0.1:5091

echo "== Parley: acked sends into rooms of 10"
parley "$W/chat" "$OUT/parley-chat.log"
"$LG" -mode app-chat -label parley -base "$BASE" -group 10 -users 1000 -rates 2000,4000,6000,8000,9000,10000,12000 -step 5s -pid "$PARLEY" -out "$RES" | tee "$OUT/parley-chat.txt"
stop "$PARLEY"

echo "== Parley: authenticated handshakes, then idle sockets"
parley "$W/idle" "$OUT/parley-connect.log"
"$LG" -mode app-setup -base "$BASE" -state "$W/state.json" -n 10000 | tail -3
"$LG" -mode app-connect -label parley -base "$BASE" -state "$W/state.json" -n 10000 -pid "$PARLEY" -out "$RES" | tee "$OUT/parley-connect.txt"
stop "$PARLEY"
parley "$W/idle" "$OUT/parley-idle.log"   # a fresh process on the same data: RSS is the sockets'
"$LG" -mode app-idle -label parley -base "$BASE" -state "$W/state.json" -n 10000 -hold 15s -pid "$PARLEY" -out "$RES" | tee "$OUT/parley-idle.txt"
stop "$PARLEY"
echo "results: $RES"

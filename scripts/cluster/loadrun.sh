#!/usr/bin/env bash
# Load run for docs/PERFORMANCE.md "Many nodes": one Parley node vs two, same load, both on one
# shared MongoDB-wire store (scripts/ferretdb) and a private redis-server, everything on 127.0.0.1.
# usage: loadrun.sh <parley-bin> <ferretdb-bin> <lg-bin, patched> <outdir> <shape> [rates [users]]
# shape: one | two (nodes on FerretDB and Redis), sqlite (one node, embedded store, no Redis),
# sqlite-redis (one node, embedded store, REDIS_URL: every broadcast goes through Redis).
# FERRETDB=postgresql puts FerretDB on PostgreSQL (a fresh database parley_load_<pid> on
# $PG_URL, default postgres://postgres@127.0.0.1:5432, dropped at the end) instead of SQLite.
# LGARGS adds generator flags (e.g. -split-chats), FERRETDB_ARGS FerretDB flags (-log-level debug); STEP (5s) and SETTLE (10s) set the step length
# and the pause after connecting. Ends with one line per step: rates, p99s, lost, CPU per process.
set -u
BIN=$1; FDB=$2; LG=$3; OUT=$4; SHAPE=$5; RATES=${6:-50,100,200,400,800}; USERS=${7:-200}
FERRETDB=${FERRETDB:-sqlite}; PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
mkdir -p "$OUT"; W=$(mktemp -d); PIDS=(); PGDB=
# Nodes first (they say goodbye to Redis and the store), then Redis and FerretDB, then its database.
cleanup() {
  for ((i=${#PIDS[@]}-1; i>=0; i--)); do kill "${PIDS[i]}" 2>/dev/null; wait "${PIDS[i]}" 2>/dev/null; done
  [ -n "$PGDB" ] && psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" >/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ulimit -n 65536 2>/dev/null
RP=$(freeport)
redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no >"$W/redis.log" 2>&1 & PIDS+=($!); RPID=$!
CPU=(-cpu "redis=$RPID")
case $FERRETDB in
  sqlite) FARGS=(-dir "$W/ferret");;
  postgresql)
    PGDB=parley_load_$$
    psql -q "$PG_URL/postgres" -c "CREATE DATABASE $PGDB" || exit 1
    FARGS=(-postgresql "$PG_URL/$PGDB")
    # The backends serving this database, titled "postgres: [cluster: ]<user> <db> <client> <state>"
    # (the server's shared WAL writer and checkpointer are not counted).
    CPU+=(-cpu "pg=~^postgres: .*postgres $PGDB ");;
  *) echo "FERRETDB=$FERRETDB: want sqlite or postgresql" >&2; exit 2;;
esac
"$FDB" "${FARGS[@]}" ${FERRETDB_ARGS:-} >"$W/ferret.uri" 2>"$OUT/ferret-$SHAPE.log" & PIDS+=($!); FPID=$!
case $SHAPE in sqlite*) ;; *) CPU+=(-cpu "ferretdb=$FPID");; esac
for i in $(seq 100); do [ -s "$W/ferret.uri" ] && redis-cli -p "$RP" ping >/dev/null 2>&1 && break; sleep 0.2; done
URI=$(head -1 "$W/ferret.uri")
# Flood limits lifted (the LIMIT_* of branch sec; ignored where they do not exist).
LIMITS=(LIMIT_MESSAGE_SEND=100000/s:100000 LIMIT_TYPING=100000/s:100000 LIMIT_HANDSHAKES=100000/s:100000
        LIMIT_REST=100000/s:100000 LIMIT_SIGNUPS=100000/s:100000 MAX_SOCKETS_PER_USER=1000 MAX_SOCKETS_PER_ADDRESS=100000
        LOGIN_FAILURES_PER_ADDRESS=100000)
startnode() { # port
  mkdir -p "$W/d$1"
  STORE=(MONGO_URI="$URI" MONGO_DB=bench); REDIS=(REDIS_URL="redis://127.0.0.1:$RP")
  case $SHAPE in sqlite) STORE=(MONGO_URI=); REDIS=(REDIS_URL=);; sqlite-redis) STORE=(MONGO_URI=);; esac
  env "${LIMITS[@]}" "${STORE[@]}" "${REDIS[@]}" HOST=127.0.0.1 PORT="$1" DATA_DIR="$W/d$1" \
    JWT_SECRET=bench-secret-bench-secret-bench-secret BCRYPT_COST=4 LOG_LEVEL=warn "$BIN" >"$OUT/parley-$SHAPE-$1.log" 2>&1 &
  PIDS+=($!); CPU+=(-cpu "node$2=$!")
  for i in $(seq 150); do curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && break; sleep 0.2; done
}
P1=$(freeport); startnode "$P1" 1; SPLIT=()
if [ "$SHAPE" = two ]; then P2=$(freeport); startnode "$P2" 2; SPLIT=(-split-base "http://127.0.0.1:$P2"); fi
LABEL="parley-$SHAPE-$FERRETDB"
"$LG" -mode app-chat -label "$LABEL" -base "http://127.0.0.1:$P1" "${SPLIT[@]}" -group 10 -users "$USERS" \
  -rates "$RATES" -step "${STEP:-5s}" -settle "${SETTLE:-10s}" -db-pid "$FPID" -redis-pid "$RPID" "${CPU[@]}" ${LGARGS:-} \
  -out "$OUT/app-chat.jsonl" >"$OUT/$SHAPE.txt" 2>&1
rc=$?
echo "exit $rc (log $OUT/$SHAPE.txt)"
# One line per step of this run (the last line of the JSONL is this run's).
[ -s "$OUT/app-chat.jsonl" ] && tail -1 "$OUT/app-chat.jsonl" | jq -r --arg l "$LABEL" '
  def n: if . == null then "-" else (. * 10 | round / 10 | tostring) end;
  select(.label == $l or .label == null) | .steps[] |
  "\($l) rate \(.rate): sent \(.sent_per_s|n)/s deliv \(.delivered_per_s|n)/s ack p99 \(.alat_p99_ms|n) ms deliv p99 \(.dlat_p99_ms|n) ms lost \(.lost) no-ack \(.no_ack) \(if .pass then "PASS" else "FAIL" end) | cpu% " +
  ([to_entries[] | select(.key|startswith("cpu_")) | "\(.key[4:]) \(.value|n)"] | join(" ")) + " machine \(.sys_cpu|n)"'
exit $rc

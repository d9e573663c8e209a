#!/usr/bin/env bash
# Side-by-side comparison of rebound proxy binaries: one redis-server, one `rebound proxy` per
# binary given, then ROUNDS rounds of redis-benchmark GET (-c 50, N requests) at -P 1 and -P 16:
# direct, then through each binary in turn. Prints rps and the proxy's CPU per request (user +
# sys from /proc), the figure that stays comparable on a noisy shared machine.
# Usage: scripts/bench-proxy-compare.sh ROUNDS N BIN...   (kills only what it started)
set -euo pipefail
ROUNDS=$1; N=$2; shift 2
PIDS=(); TMP=$(mktemp -d)
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT
fp() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RPORT=$(fp)
redis-server --port $RPORT --bind 127.0.0.1 --save '' --appendonly no --dir $TMP --logfile $TMP/r.log &
PIDS+=($!)
until redis-cli -p $RPORT ping >/dev/null 2>&1; do sleep 0.05; done
declare -A PORT PPIDS
for b in "$@"; do
  APORT=$(fp)
  $b proxy --host 127.0.0.1 --port $APORT > $TMP/p.log 2>&1 &
  PIDS+=($!); PPIDS[$b]=$!
  until curl -sf http://127.0.0.1:$APORT/version >/dev/null; do sleep 0.05; done
  PORT[$b]=$(curl -sf -X POST http://127.0.0.1:$APORT/proxies -d "{\"name\":\"b\",\"listen\":\"127.0.0.1:0\",\"upstream\":\"127.0.0.1:$RPORT\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["listen"].rsplit(":",1)[1])')
done
ticks() { awk '{print $14+$15}' /proc/$1/stat; }
run() { redis-benchmark -h 127.0.0.1 -p $1 -t get -n $N -c 50 -P $2 --csv | awk -F, '/"GET"/ {gsub(/"/,"",$2); print $2}'; }
for r in $(seq 1 $ROUNDS); do
  for P in 1 16; do
    echo "r$r P$P direct $(run $RPORT $P)"
    for b in "$@"; do
      t0=$(ticks ${PPIDS[$b]}); rps=$(run ${PORT[$b]} $P); t1=$(ticks ${PPIDS[$b]})
      echo "r$r P$P ${b##*/} $rps cpu_us_per_req=$(echo "($t1-$t0)*10000/$N" | bc -l | cut -c1-5)"
    done
  done
done

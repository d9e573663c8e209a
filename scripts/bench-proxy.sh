#!/usr/bin/env bash
# Benchmark of rebound's proxy against a direct connection, with redis-benchmark.
#
# Starts its own redis-server (loopback, free port, no persistence) and `rebound proxy` (release
# build; one runtime thread unless PROXY_ARGS says otherwise), creates one proxy through the
# Toxiproxy API, then:
#   * throughput: redis-benchmark -t set,get -n $N -c 50 at -P 1 and -P 16, direct and proxied,
#     alternating, $RUNS runs each; prints the ratio of medians proxied/direct for the 4 figures;
#   * added latency: redis-benchmark -t get -c 1 -P 1, p50 proxied minus p50 direct (medians);
#   * memory per idle connection: proxy RSS delta / $IDLE_CONNS idle connections.
# Kills exactly the processes it started (by pid) on exit.
#
#   * the proxy's CPU time per request (user + system, from /proc), printed before the summary.
# Env: N (200000), RUNS (3), IDLE_CONNS (1000), LAT_N (50000), REBOUND_BIN (skip the build),
# PROXY_ARGS (extra `rebound proxy` arguments, e.g. `--threads 2`).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-200000}
RUNS=${RUNS:-3}
IDLE_CONNS=${IDLE_CONNS:-1000}
LAT_N=${LAT_N:-50000}

PIDS=()
TMP=$(mktemp -d)
cleanup() {
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_for() { # wait_for <seconds> <command...>
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS > deadline)); then echo "timed out waiting for: $*" >&2; exit 1; fi
        sleep 0.05
    done
}

# --- redis -------------------------------------------------------------------------------
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$TMP" --logfile "$TMP/redis.log" --daemonize no --maxclients 20000 &
PIDS+=($!)
wait_for 10 redis-cli -p "$RPORT" ping

# --- proxy -------------------------------------------------------------------------------
APORT=$(free_port)
if [[ -n "${REBOUND_BIN:-}" ]]; then
    BIN=$REBOUND_BIN
else
    (cd "$ROOT" && cargo build --release -q -p rebound --bin rebound)
    BIN=$ROOT/target/release/rebound
fi
# shellcheck disable=SC2206 # PROXY_ARGS is a list of words.
PROXY_CMD=("$BIN" proxy --host 127.0.0.1 --port "$APORT" ${PROXY_ARGS:-})
"${PROXY_CMD[@]}" >"$TMP/proxy.log" 2>&1 &
PPID_PROXY=$!
PIDS+=("$PPID_PROXY")
API="http://127.0.0.1:$APORT"
wait_for 10 curl -sf "$API/version"
PPORT=$(curl -sf -X POST "$API/proxies" \
    -d "{\"name\":\"bench\",\"listen\":\"127.0.0.1:0\",\"upstream\":\"127.0.0.1:$RPORT\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["listen"].rsplit(":",1)[1])')
echo "redis 127.0.0.1:$RPORT  proxy 127.0.0.1:$PPORT (${PROXY_CMD[0]##*/}, pid $PPID_PROXY)"

# --- throughput ----------------------------------------------------------------------------
RESULTS="$TMP/results.csv"
: >"$RESULTS"
CPU="$TMP/cpu.csv"
: >"$CPU"
ticks() { awk '{print $14 + $15}' "/proc/$PPID_PROXY/stat"; }
bench() { # bench <label> <port> <pipeline>
    local t0 t1
    t0=$(ticks)
    redis-benchmark -h 127.0.0.1 -p "$2" -t set,get -n "$N" -c 50 -P "$3" --csv |
        python3 -c '
import csv, sys
for row in csv.reader(sys.stdin):
    if row and row[0] in ("SET", "GET"):
        print(f"{sys.argv[1]},{sys.argv[2]},{row[0]},{row[1]}")' "$1" "$3" >>"$RESULTS"
    t1=$(ticks)
    if [[ $1 == proxied ]]; then echo "$3,$((t1 - t0))" >>"$CPU"; fi
}
for run in $(seq 1 "$RUNS"); do
    for p in 1 16; do
        bench direct "$RPORT" "$p"
        bench proxied "$PPORT" "$p"
    done
    echo "throughput run $run/$RUNS done"
done
python3 - "$CPU" "$N" "$(getconf CLK_TCK)" <<'EOF'
import statistics, sys
cpu, n, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
per = {}
for line in open(cpu):
    p, t = line.strip().split(",")
    per.setdefault(p, []).append(int(t) / hz / (2 * n) * 1e6)
print("proxy CPU per request (user+sys, median): "
      + ", ".join(f"-P {p}: {statistics.median(v):.1f} us" for p, v in sorted(per.items(), key=lambda x: int(x[0]))))
EOF

# --- added latency -------------------------------------------------------------------------
LAT="$TMP/latency.csv"
: >"$LAT"
for run in $(seq 1 "$RUNS"); do
    for target in direct:"$RPORT" proxied:"$PPORT"; do
        redis-benchmark -h 127.0.0.1 -p "${target#*:}" -t get -n "$LAT_N" -c 1 -P 1 --csv |
            python3 -c '
import csv, sys
rows = list(csv.reader(sys.stdin))
head = rows[0]
for row in rows[1:]:
    if row and row[0] == "GET":
        print(sys.argv[1] + "," + row[head.index("p50_latency_ms")])' "${target%%:*}" >>"$LAT"
    done
done

# --- memory per idle connection ------------------------------------------------------------
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$PPID_PROXY/status"; }
RSS0=$(rss_kb)
python3 - "$PPORT" "$IDLE_CONNS" "$API" <<'EOF' &
import json, socket, sys, time, urllib.request
port, n, api = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
print("OPEN", flush=True)
sys.stdin.close()
time.sleep(3600)  # Held open until the script kills this process.
EOF
HOLDER=$!
PIDS+=("$HOLDER")
conns() { curl -sf "$API/proxies/bench/connections" | python3 -c 'import json,sys; print(json.load(sys.stdin)["connections"])'; }
redis_clients() { redis-cli -p "$RPORT" info clients | awk -F: '/^connected_clients/ {print $2+0}'; }
all_open() { (($(conns) >= IDLE_CONNS && $(redis_clients) >= IDLE_CONNS)); }
wait_for 30 all_open
RSS1=$(rss_kb)
kill "$HOLDER" 2>/dev/null || true

python3 - "$RESULTS" "$LAT" "$RSS0" "$RSS1" "$IDLE_CONNS" <<'EOF'
import statistics, sys
results, lat, rss0, rss1, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
data = {}
for line in open(results):
    label, p, test, rps = line.strip().split(",")
    data.setdefault((test, p, label), []).append(float(rps))
print()
print(f"{'figure':<12} {'direct rps':>12} {'proxied rps':>12} {'ratio':>7}")
for p in ("1", "16"):
    for test in ("SET", "GET"):
        d = statistics.median(data[(test, p, "direct")])
        x = statistics.median(data[(test, p, "proxied")])
        print(f"{test} -P {p:<4} {d:>12.0f} {x:>12.0f} {x / d:>7.3f}")
l = {}
for line in open(lat):
    label, p50 = line.strip().split(",")
    l.setdefault(label, []).append(float(p50))
dl, pl = statistics.median(l["direct"]), statistics.median(l["proxied"])
print(f"p50 latency, 1 client: direct {dl * 1000:.0f} us, proxied {pl * 1000:.0f} us, added {(pl - dl) * 1000:.0f} us")
print(f"memory per idle connection: {(rss1 - rss0) / n:.1f} KiB (RSS {rss0} -> {rss1} KiB, {n} connections)")
EOF

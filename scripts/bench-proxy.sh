#!/usr/bin/env bash
# Benchmark of rebound's proxy with redis-benchmark, side by side in one run with a direct
# connection and, when given, a Toxiproxy binary and an earlier rebound binary.
#
# Starts its own redis-server (loopback, free port, no persistence) and one proxy server per
# proxy target (`rebound proxy`, release build, one runtime thread unless PROXY_ARGS says
# otherwise; `toxiproxy-server` when TOXIPROXY_BIN is set; `rebound proxy` from
# REBOUND_BEFORE_BIN when set), creates one proxy in each through the Toxiproxy API; with
# FLOOR=1 also a minimal C proxy (below: epoll, one read and one write per readable socket,
# nothing else), whose cost is the floor of the system calls on this machine, so that rebound's
# own overhead can be told from the kernel's. Then, the targets alternating within each round,
# $RUNS rounds of:
#   * throughput: redis-benchmark -t set,get -n $N -c 50 at -P 1 and -P 16; the ratio of
#     medians proxied/direct;
#   * CPU per request of each proxy process (user + system, from /proc/PID/task/*/schedstat,
#     nanosecond counters) over the same runs: the figure that stays comparable on a shared
#     machine, since it does not depend on how much CPU the others leave to the benchmark;
#   * added latency: redis-benchmark -t get -n $LAT_N -c 1 -P 1, p50 proxied minus p50 direct;
# and then the memory per idle connection: proxy RSS delta / $IDLE_CONNS idle connections.
# The 1-minute load average is read before each measurement and shown beside each figure
# (min-max over the rounds): figures taken under different loads are not comparable.
# Speed goals are checked here, not in timed tests: GOAL_P1_US (9) and GOAL_P16_US (0.6) for
# rebound's CPU per request, GOAL_LAT_US (15) for its added p50, GOAL_IDLE_KIB (8) for its
# memory per idle connection; a miss is printed, and the exit status is 3 when STRICT=1.
# Kills exactly the processes it started (by pid) on exit.
#
# Env: N (200000), RUNS (3), IDLE_CONNS (1000), LAT_N (50000), REBOUND_BIN (skip the build),
# REBOUND_BEFORE_BIN, TOXIPROXY_BIN, FLOOR, PROXY_ARGS (extra `rebound proxy` arguments, e.g.
# `--threads 2`), STRICT.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-200000}
RUNS=${RUNS:-3}
IDLE_CONNS=${IDLE_CONNS:-1000}
LAT_N=${LAT_N:-50000}
GOAL_P1_US=${GOAL_P1_US:-9}
GOAL_P16_US=${GOAL_P16_US:-0.6}
GOAL_LAT_US=${GOAL_LAT_US:-15}
GOAL_IDLE_KIB=${GOAL_IDLE_KIB:-8}

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

load1() { cut -d' ' -f1 /proc/loadavg; }

# --- redis -------------------------------------------------------------------------------
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$TMP" --logfile "$TMP/redis.log" --daemonize no --maxclients 20000 &
PIDS+=($!)
wait_for 10 redis-cli -p "$RPORT" ping

# --- proxies -------------------------------------------------------------------------------
if [[ -n "${REBOUND_BIN:-}" ]]; then
    BIN=$REBOUND_BIN
else
    (cd "$ROOT" && cargo build --release -q -p rebound --bin rebound)
    BIN=$ROOT/target/release/rebound
fi

declare -A PPORT PPID_OF APORT_OF
TARGETS=(direct)
PPORT[direct]=$RPORT

start_proxy() { # start_proxy <label> <command...>: serves the API on $APORT
    local label=$1; shift
    "$@" >"$TMP/$label.log" 2>&1 &
    PPID_OF[$label]=$!
    PIDS+=($!)
    local api="http://127.0.0.1:${APORT_OF[$label]}"
    wait_for 10 curl -sf "$api/version"
    PPORT[$label]=$(curl -sf -X POST "$api/proxies" \
        -d "{\"name\":\"bench\",\"listen\":\"127.0.0.1:0\",\"upstream\":\"127.0.0.1:$RPORT\"}" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["listen"].rsplit(":",1)[1])')
    TARGETS+=("$label")
    echo "$label: proxy 127.0.0.1:${PPORT[$label]} (pid ${PPID_OF[$label]}, $1)"
}

# shellcheck disable=SC2206 # PROXY_ARGS is a list of words.
EXTRA=(${PROXY_ARGS:-})
APORT_OF[rebound]=$(free_port)
start_proxy rebound "$BIN" proxy --host 127.0.0.1 --port "${APORT_OF[rebound]}" "${EXTRA[@]}"
if [[ -n "${REBOUND_BEFORE_BIN:-}" ]]; then
    APORT_OF[before]=$(free_port)
    start_proxy before "$REBOUND_BEFORE_BIN" proxy --host 127.0.0.1 \
        --port "${APORT_OF[before]}" "${EXTRA[@]}"
fi
if [[ -n "${TOXIPROXY_BIN:-}" ]]; then
    APORT_OF[toxiproxy]=$(free_port)
    start_proxy toxiproxy "$TOXIPROXY_BIN" -host 127.0.0.1 -port "${APORT_OF[toxiproxy]}"
fi
if [[ ${FLOOR:-0} == 1 ]]; then
    cat >"$TMP/floor.c" <<'EOF'
/* The least a user-space TCP proxy does per request: one epoll loop; on each readable socket
   one read and a write of it to the peer socket; nothing else. Usage: floor LPORT UPORT. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXFD 65536
static int peer[MAXFD];

static struct sockaddr_in loopback(int port) {
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static void drop(int ep, int fd) {
    int p = peer[fd];
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    epoll_ctl(ep, EPOLL_CTL_DEL, p, NULL);
    close(fd);
    close(p);
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: floor LPORT UPORT\n"); return 2; }
    struct sockaddr_in la = loopback(atoi(argv[1])), ua = loopback(atoi(argv[2]));
    int one = 1, ls = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(ls, (struct sockaddr *)&la, sizeof la) || listen(ls, 1024)) { perror("listen"); return 1; }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls}, evs[256];
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    static char buf[65536];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == ls) {
                int c = accept(ls, NULL, NULL), u = socket(AF_INET, SOCK_STREAM, 0);
                if (c < 0 || c >= MAXFD || u >= MAXFD || connect(u, (struct sockaddr *)&ua, sizeof ua)) {
                    close(c); close(u); continue;
                }
                setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                peer[c] = u; peer[u] = c;
                ev.data.fd = c; epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
                ev.data.fd = u; epoll_ctl(ep, EPOLL_CTL_ADD, u, &ev);
                continue;
            }
            ssize_t r = read(fd, buf, sizeof buf);
            if (r <= 0) { drop(ep, fd); continue; }
            for (ssize_t off = 0; off < r;) {
                ssize_t w = write(peer[fd], buf + off, r - off);
                if (w <= 0) { drop(ep, fd); break; }
                off += w;
            }
        }
    }
}
EOF
    cc -O2 -o "$TMP/floor" "$TMP/floor.c"
    PPORT[floor]=$(free_port)
    "$TMP/floor" "${PPORT[floor]}" "$RPORT" &
    PPID_OF[floor]=$!
    PIDS+=($!)
    wait_for 10 redis-cli -p "${PPORT[floor]}" ping
    TARGETS+=(floor)
    echo "floor: proxy 127.0.0.1:${PPORT[floor]} (pid ${PPID_OF[floor]}, C, epoll + read + write)"
fi
echo "redis 127.0.0.1:$RPORT; targets: ${TARGETS[*]}; load $(load1)"

# CPU time of a process so far in nanoseconds: the sum over its threads.
cpu_ns() {
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f\n", s}'
}

# --- throughput and CPU per request ----------------------------------------------------------
RESULTS="$TMP/results.csv" # target,pipeline,test,rps,load
CPU="$TMP/cpu.csv"         # target,pipeline,ns,requests,load
: >"$RESULTS"
: >"$CPU"
bench() { # bench <target> <pipeline>
    local target=$1 p=$2 t0=0 t1=0 load
    load=$(load1)
    [[ $target != direct ]] && t0=$(cpu_ns "${PPID_OF[$target]}")
    redis-benchmark -h 127.0.0.1 -p "${PPORT[$target]}" -t set,get -n "$N" -c 50 -P "$p" --csv |
        python3 -c '
import csv, sys
for row in csv.reader(sys.stdin):
    if row and row[0] in ("SET", "GET"):
        print(",".join([sys.argv[1], sys.argv[2], row[0], row[1], sys.argv[3]]))' \
            "$target" "$p" "$load" >>"$RESULTS"
    if [[ $target != direct ]]; then
        t1=$(cpu_ns "${PPID_OF[$target]}")
        echo "$target,$p,$((t1 - t0)),$((2 * N)),$load" >>"$CPU"
    fi
}
# --- added latency -----------------------------------------------------------------------------
LAT="$TMP/latency.csv" # target,p50_ms,load
: >"$LAT"
latency() { # latency <target>
    local load
    load=$(load1)
    redis-benchmark -h 127.0.0.1 -p "${PPORT[$1]}" -t get -n "$LAT_N" -c 1 -P 1 --csv |
        python3 -c '
import csv, sys
rows = list(csv.reader(sys.stdin))
head = rows[0]
for row in rows[1:]:
    if row and row[0] == "GET":
        print(",".join([sys.argv[1], row[head.index("p50_latency_ms")], sys.argv[2]]))' \
            "$1" "$load" >>"$LAT"
}
for run in $(seq 1 "$RUNS"); do
    for p in 1 16; do
        for target in "${TARGETS[@]}"; do bench "$target" "$p"; done
    done
    for target in "${TARGETS[@]}"; do latency "$target"; done
    echo "round $run/$RUNS done (load $(load1))"
done

# --- memory per idle connection --------------------------------------------------------------
MEM="$TMP/memory.csv" # target,kib_per_conn,rss0,rss1,load
: >"$MEM"
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
redis_clients() { redis-cli -p "$RPORT" info clients | awk -F: '/^connected_clients/ {print $2+0}'; }
for target in "${TARGETS[@]}"; do
    [[ $target == direct ]] && continue
    pid=${PPID_OF[$target]}
    load=$(load1)
    base_clients=$(redis_clients)
    rss0=$(rss_kb "$pid")
    python3 - "${PPORT[$target]}" "$IDLE_CONNS" <<'EOF' &
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
time.sleep(3600)  # Held open until the script kills this process.
EOF
    holder=$!
    PIDS+=("$holder")
    all_open() { (($(redis_clients) >= base_clients + IDLE_CONNS)); }
    all_closed() { (($(redis_clients) <= base_clients)); }
    wait_for 30 all_open
    sleep 0.5 # let the proxy settle (goroutines, buffers) before reading its RSS
    rss1=$(rss_kb "$pid")
    kill "$holder" 2>/dev/null || true
    wait "$holder" 2>/dev/null || true
    wait_for 30 all_closed
    echo "$target,$(python3 -c "print(($rss1 - $rss0) / $IDLE_CONNS)"),$rss0,$rss1,$load" >>"$MEM"
done

python3 - "$RESULTS" "$CPU" "$LAT" "$MEM" "$N" "$GOAL_P1_US" "$GOAL_P16_US" "$GOAL_LAT_US" \
    "$GOAL_IDLE_KIB" "${STRICT:-0}" "${TARGETS[@]}" <<'EOF'
import statistics, sys
(results, cpu, lat, mem, n, g1, g16, glat, gidle, strict), targets = sys.argv[1:11], sys.argv[11:]
goals = {"1": float(g1), "16": float(g16)}
proxies = [t for t in targets if t != "direct"]
def load_range(v):
    return f"{min(v):.1f}-{max(v):.1f}"
rps, rps_load = {}, {}
for line in open(results):
    t, p, test, r, load = line.strip().split(",")
    rps.setdefault((t, p, test), []).append(float(r))
    rps_load.setdefault(p, []).append(float(load))
print()
print("throughput (median rps; ratio to direct)")
print(f"{'figure':<10}" + "".join(f"{t:>22}" for t in targets) + f"{'load':>12}")
for p in ("1", "16"):
    for test in ("SET", "GET"):
        d = statistics.median(rps[("direct", p, test)])
        cells = []
        for t in targets:
            x = statistics.median(rps[(t, p, test)])
            cells.append(f"{x:>14.0f}" + (f" ({x / d:.3f})" if t != "direct" else " " * 8))
        print(f"{test} -P {p:<3}" + "".join(f"{c:>22}" for c in cells) + f"{load_range(rps_load[p]):>12}")
per, cpu_load = {}, {}
for line in open(cpu):
    t, p, ns, reqs, load = line.strip().split(",")
    per.setdefault((t, p), []).append(int(ns) / int(reqs) / 1000)
    cpu_load.setdefault((t, p), []).append(float(load))
print()
print("proxy CPU per request (user+sys, median over rounds; ratio to rebound)")
misses = []
for p in ("1", "16"):
    base = statistics.median(per[("rebound", p)])
    cells = []
    for t in proxies:
        v = statistics.median(per[(t, p)])
        cells.append(f"{t} {v:.2f} us ({v / base:.2f}x, load {load_range(cpu_load[(t, p)])})")
    print(f"  -P {p:<3} " + "; ".join(cells))
    if base > goals[p]:
        misses.append(f"CPU per request at -P {p}: {base:.2f} us > {goals[p]} us")
l, l_load = {}, {}
for line in open(lat):
    t, p50, load = line.strip().split(",")
    l.setdefault(t, []).append(float(p50) * 1000)
    l_load.setdefault(t, []).append(float(load))
direct = statistics.median(l["direct"])
print()
print(f"p50 latency, 1 client, -P 1: direct {direct:.0f} us (load {load_range(l_load['direct'])})")
for t in proxies:
    v = statistics.median(l[t])
    print(f"  {t}: {v:.0f} us, added {v - direct:.0f} us (load {load_range(l_load[t])})")
    if t == "rebound" and v - direct > float(glat):
        misses.append(f"added p50 latency: {v - direct:.0f} us > {glat} us")
print()
print("memory per idle connection (RSS delta / connections)")
for line in open(mem):
    t, kib, rss0, rss1, load = line.strip().split(",")
    print(f"  {t}: {float(kib):.1f} KiB (RSS {rss0} -> {rss1} KiB, load {float(load):.1f})")
    if t == "rebound" and float(kib) > float(gidle):
        misses.append(f"memory per idle connection: {float(kib):.1f} KiB > {gidle} KiB")
print()
for m in misses:
    print(f"GOAL MISSED: {m}")
if not misses:
    print("rebound meets its goals (CPU per request, added latency, memory per idle connection)")
sys.exit(3 if misses and strict == "1" else 0)
EOF

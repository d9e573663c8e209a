#!/usr/bin/env bash
# `just soak-noisy N [ARGS]`: the whole suite N times in a row (scripts/soak.sh) beside a noisy
# neighbour, as on a shared CI runner: redis-benchmark with 50 clients against a Redis of its
# own, in a loop, and a parallel compile of the workspace (release, its own target directory,
# cleaned and built again in a loop). The neighbour's processes are stopped by pid on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
shift || true
pids=()
tmp=$(mktemp -d)
cleanup() {
    for p in "${pids[@]}"; do
        kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.1
done
# Each in a process group of its own, so the whole loop goes on exit.
setsid bash -c "while :; do redis-benchmark -p $port -c 50 -n 200000 -q >/dev/null 2>&1; done" &
pids+=($!)
setsid bash -c "while :; do cargo clean --quiet --release --target-dir target/noisy -p rebound-core -p rebound-proxy -p rebound >/dev/null 2>&1; cargo build --quiet --release --target-dir target/noisy -p rebound >/dev/null 2>&1; done" &
pids+=($!)
echo "noisy neighbour: redis-benchmark -c 50 on port $port, a release build in a loop (pids ${pids[*]})"
scripts/soak.sh "$runs" "$@"

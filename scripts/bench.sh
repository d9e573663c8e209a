#!/usr/bin/env bash
# `just bench`: every speed figure of rebound in one table, each beside its goal.
#
#   ledger check, 1,000,000 messages        cargo bench --bench throughput (release)
#   producer rates, local Redis / RabbitMQ  the same (RabbitMQ: durable, persistent, confirms)
#   peak memory of `rebound run`            benches/large.toml (100,000 messages), VmHWM of
#                                           the rebound process, polled (release)
#   warm `cargo test --workspace`           wall time after `--no-run` built everything
#   overhead per scenario                   setup + teardown from each report.json `phases`
#                                           of that suite run
#   proxy ratios, latency, memory           scripts/bench-proxy.sh (its summary table)
#
# BENCH_SKIP_SUITE=1 leaves out the suite run (and the per-scenario overheads);
# BENCH_SKIP_PROXY=1 the proxy benchmark. Everything is kept in target/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/bench
mkdir -p "$out"
figures="$out/figures.txt"
: >"$figures"
note() { printf '==> %s\n' "$*" >&2; }

note "load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"

# --- ledger and producers (release) ----------------------------------------------------------
note "cargo bench --bench throughput"
cargo bench --quiet -p rebound --bench throughput 2>"$out/throughput.err" | tee "$out/throughput.txt" >&2
grep '^figure ' "$out/throughput.txt" | cut -d' ' -f2- >>"$figures"

# --- peak memory of a 100,000-message run (release) -------------------------------------------
note "rebound run benches/large.toml (release)"
cargo build --quiet --release -p rebound -p rebound-fixtures
rm -rf "$out/large"
target/release/rebound run benches/large.toml --runtime local --report-dir "$out/large" >"$out/large.txt" 2>&1 &
pid=$!
peak=0
# VmHWM is the process's own high-water mark: the last value read before it exits is its peak
# up to that moment (the final report writing can add a little after the last read).
while kill -0 "$pid" 2>/dev/null; do
    hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$hwm" ] && [ "$hwm" -gt "$peak" ] && peak=$hwm
    sleep 0.05 # sampling a gauge, not waiting for an event
done
wait "$pid" || { cat "$out/large.txt" >&2; echo "bench: the 100,000-message run failed" >&2; exit 1; }
echo "peak_rss_100k $((peak / 1024)) MiB" >>"$figures"
cat "$out/large.txt" >&2

# --- the whole suite, warm --------------------------------------------------------------------
if [ "${BENCH_SKIP_SUITE:-0}" != 1 ]; then
    note "cargo test --workspace (warm)"
    cargo test --workspace --no-run --quiet 2>/dev/null
    rm -rf target/rebound-reports
    t0=$(date +%s.%N)
    status=0
    cargo test --workspace >"$out/suite.log" 2>&1 || status=$?
    t1=$(date +%s.%N)
    echo "suite_wall $(python3 -c "print(f'{$t1 - $t0:.0f}')") s exit=$status" >>"$figures"
    python3 - >>"$figures" <<'PY'
import json, pathlib
for report in sorted(pathlib.Path("target/rebound-reports").glob("*/*/report.json")):
    r = json.loads(report.read_text())
    p = r.get("phases") or {}
    toml = (report.parent / "scenario.toml").read_text() if (report.parent / "scenario.toml").exists() else ""
    rabbit = 'kind = "rabbitmq"' in toml
    over = (p.get("setup_ms", 0) + p.get("teardown_ms", 0)) / 1000
    print(f"overhead {report.parent.parent.name} {over:.2f} s rabbitmq={int(rabbit)}")
PY
fi

# --- the proxy ---------------------------------------------------------------------------------
if [ "${BENCH_SKIP_PROXY:-0}" != 1 ]; then
    note "scripts/bench-proxy.sh"
    bash scripts/bench-proxy.sh >"$out/proxy.txt" 2>&1 || { cat "$out/proxy.txt" >&2; exit 1; }
    awk '/^(SET|GET) -P/ { printf "proxy %s%s %s\n", $1, $3, $NF }
         /^p50 latency/ { for (i = 1; i <= NF; i++) if ($i == "added") printf "proxy_latency %s us\n", $(i+1) }
         /^memory per idle connection/ { printf "proxy_conn_mem %s KiB\n", $5 }' "$out/proxy.txt" >>"$figures"
fi

note "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- one table -----------------------------------------------------------------------------------
python3 - "$figures" <<'PY'
import sys
rows = []
def row(what, value, goal, met):
    rows.append((what, value, goal, "-" if met is None else ("met" if met else "MISSED")))
for line in open(sys.argv[1]):
    f = line.split()
    k = f[0]
    if k == "ledger_1m":
        row("ledger check, 1,000,000 messages", f"{float(f[1]):.3f} s", "<= 1 s", float(f[1]) <= 1)
    elif k == "redis_producer":
        row("producer rate, local Redis (AOF always)", f"{float(f[1]):,.0f} msg/s", ">= 50,000 msg/s", float(f[1]) >= 50000)
    elif k == "rabbitmq_producer":
        row("producer rate, local RabbitMQ (confirms)", f"{float(f[1]):,.0f} msg/s", ">= 10,000 msg/s", float(f[1]) >= 10000)
    elif k == "peak_rss_100k":
        row("peak RSS of rebound run, 100,000 messages", f"{f[1]} MiB", "", None)
    elif k == "suite_wall":
        ok = f[3] == "exit=0"
        row("cargo test --workspace, warm" + ("" if ok else f" ({f[3]})"), f"{f[1]} s", "<= 180 s", int(f[1]) <= 180 and ok)
    elif k == "overhead":
        rabbit = f[4] == "rabbitmq=1"
        goal = 6 if rabbit else 1
        row(f"overhead (setup + teardown): {f[1]}", f"{float(f[2]):.2f} s", f"<= {goal} s", float(f[2]) <= goal)
    elif k == "proxy":
        row(f"proxy throughput ratio {f[1]}", f[2], ">= 0.85", float(f[2]) >= 0.85)
    elif k == "proxy_latency":
        row("proxy added latency p50, 1 client", f"{f[1]} us", "", None)
    elif k == "proxy_conn_mem":
        row("proxy memory per idle connection", f"{f[1]} KiB", "", None)
w = [max(len(r[i]) for r in rows + [("figure", "value", "goal", "")]) for i in range(4)]
print()
print(f"| {'figure':<{w[0]}} | {'value':>{w[1]}} | {'goal':<{w[2]}} | {'':<{w[3]}} |")
print(f"|{'-' * (w[0] + 2)}|{'-' * (w[1] + 2)}|{'-' * (w[2] + 2)}|{'-' * (w[3] + 2)}|")
for r in rows:
    print(f"| {r[0]:<{w[0]}} | {r[1]:>{w[1]}} | {r[2]:<{w[2]}} | {r[3]:<{w[3]}} |")
PY

#!/usr/bin/env bash
# `just soak N [ARGS]`: the whole suite N times in a row (`cargo test --workspace`, or
# `cargo test ARGS` when given, e.g. `-p rebound-suite`). Stops at the first failing round, keeps
# every round's log in target/soak/round-<i>.log and prints one line per round (its time and
# result).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
shift || true
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--workspace)
out=target/soak
mkdir -p "$out"
rm -f "$out"/round-*.log
# Build once, outside the timed rounds.
cargo test "${args[@]}" --no-run --quiet
failures=0
for i in $(seq 1 "$runs"); do
    log="$out/round-$i.log"
    t0=$(date +%s)
    status=0
    cargo test "${args[@]}" >"$log" 2>&1 || status=$?
    secs=$(( $(date +%s) - t0 ))
    summary=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
                   END { printf "%d passed, %d failed", p, f }' "$log")
    echo "soak round $i of $runs: ${secs} s, $summary, exit $status (load $(cut -d' ' -f1-3 /proc/loadavg))"
    if [ "$status" -ne 0 ]; then
        failures=1
        sed -n '/^failures:/,/^test result/p' "$log" | head -n 60
        echo "soak: round $i failed; log kept in $log"
        exit 1
    fi
done
echo "soak: $runs rounds, 0 failures (logs in $out/)"

# rebound's everyday commands. Install just with `pip install rust-just` or `cargo install just`.

# Run the scenario suite and the unit tests (what CI runs).
test:
    cargo test --workspace

# Run every scenario in scenarios/ and write reports to reports/ (replacing the last ones).
scenarios *ARGS:
    cargo build --quiet -p rebound -p rebound-fixtures
    ./target/debug/rebound run scenarios/ examples/ --report-dir reports --overwrite {{ARGS}}

# The detection matrix, RUNS times in a row: every broken mode of the fixtures must fail exactly
# its checks (tests/scenarios.rs NEGATIVE_CONTROLS) and every resilient scenario must pass, in
# every round; the first flaky verdict stops it. One test at a time: the verdicts are judged,
# not the machine's ability to run two brokers and their workers on two cores.
matrix RUNS="5":
    #!/usr/bin/env bash
    set -euo pipefail
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    for i in $(seq 1 {{RUNS}}); do
        echo "== matrix round $i of {{RUNS}}"
        status=0
        cargo test -p rebound-suite --test scenarios -- --skip examples:: --skip timing:: --test-threads 1 >"$log" 2>&1 || status=$?
        grep -E '^test result' "$log" || true
        if [ "$status" -ne 0 ]; then
            sed -n '/^failures:/,$p' "$log"
            mkdir -p target && cp "$log" "target/matrix-round-$i.log"
            tail -n 20 "$log"
            echo "matrix round $i failed (exit $status); full log: target/matrix-round-$i.log"
            exit 1
        fi
    done
    echo "matrix: {{RUNS}} rounds, no flaky verdict"

# Build the container images the docker runtime uses (redis:7, rabbitmq:3) from Debian
# packages, for engines without a registry. Does nothing when they exist. Needs root and
# debootstrap (`apt-get install debootstrap`).
images:
    scripts/build-images.sh

# Run every scenario on containers (`just images` first when no registry is reachable).
scenarios-docker *ARGS:
    just scenarios --runtime docker {{ARGS}}

# Check every scenario file.
validate:
    cargo run --quiet -p rebound -- validate scenarios/ examples/

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# What CI does, from a fresh machine.
ci:
    bash .ci/run

# Run the scenarios and render reports/index.html to reports/index.png in headless Chromium
# (Debian: `apt-get install -y chromium`), to look at what people will see.
index-png *ARGS:
    just scenarios {{ARGS}} || true
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1300,2200 --screenshot="$PWD/reports/index.png" "file://$PWD/reports/index.html"
    @echo "reports/index.png"

# Re-render saved reports (checks re-run); flag p95 regressions against an older directory.
report DIR="reports" *ARGS:
    cargo run --quiet -p rebound -- report {{DIR}} {{ARGS}}

# Proxy benchmark, the targets alternating in one run with the load recorded beside each figure:
# direct Redis, rebound's proxy, and Toxiproxy (TOXIPROXY_BIN=...), the syscall floor (FLOOR=1),
# an earlier rebound (REBOUND_BEFORE_BIN=...) when given. Settings as VAR=value arguments:
# `just bench-proxy N=50000 TOXIPROXY_BIN=/usr/local/bin/toxiproxy-server`.
bench-proxy *ARGS:
    env {{ARGS}} bash scripts/bench-proxy.sh

# Timing fidelity on a quiet machine: p99 |gap the proxy saw - delay the worker announced| <= 2 ms.
fidelity:
    REBOUND_FIDELITY_P99_MS=2 cargo test -p rebound-suite -- timing::fidelity --exact --nocapture

# The docker::* scenario tests alone, required (need an engine and `just images`).
docker-tests:
    REBOUND_REQUIRE_DOCKER=1 cargo test -p rebound-suite -- docker:: --nocapture

# The whole suite (`cargo test --workspace`) RUNS times in a row; stops at the first failing
# round and keeps its log in target/soak/. The goal is 0 failures in 10.
soak RUNS="10" *ARGS:
    scripts/soak.sh {{RUNS}} {{ARGS}}

# The same beside a noisy neighbour, as on a shared CI runner: redis-benchmark -c 50 against a
# Redis of its own in a loop, and a parallel release compile in a loop. The goal is 0 failures
# in 10: timing is judged against how late the machine's own timers were.
soak-noisy RUNS="10" *ARGS:
    scripts/soak-noisy.sh {{RUNS}} {{ARGS}}

# Sharding across CI machines: `cargo nextest run --partition count:K/N` for K = 1..N must run
# every scenario test exactly once (asks nextest itself; the suite's sharding::partitions test
# checks the same rule without nextest).
shards N="3":
    #!/usr/bin/env bash
    set -euo pipefail
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
    list() { cargo nextest list --workspace -E 'binary_id(rebound-suite::scenarios)' --run-ignored all --message-format json "$@" 2>/dev/null; }
    list > "$dir/all.json"
    for k in $(seq 1 {{N}}); do list --partition "count:$k/{{N}}" > "$dir/$k.json"; done
    python3 - "$dir" {{N}} <<'PY'
    import json, sys, collections
    d, n = sys.argv[1], int(sys.argv[2])
    cases = lambda f: json.load(open(f))["rust-suites"]["rebound-suite::scenarios"]["testcases"]
    every = set(cases(f"{d}/all.json"))
    seen = collections.Counter()
    for k in range(1, n + 1):
        mine = [t for t, c in cases(f"{d}/{k}.json").items() if c["filter-match"]["status"] == "matches"]
        print(f"partition {k}/{n}: {len(mine)} tests")
        seen.update(mine)
    bad = sorted(t for t in every if seen[t] != 1)
    if bad or set(seen) != every:
        sys.exit(f"not run exactly once: {bad}")
    print(f"{len(every)} tests, each in exactly one of {n} partitions")
    PY

# Every speed figure in one table beside its goal: ledger on 1,000,000 messages, producer rates
# (local Redis, local RabbitMQ with confirms), peak memory of a 100,000-message run, the warm
# suite's wall time and each scenario's overhead, the proxy's ratios (scripts/bench.sh).
bench:
    scripts/bench.sh

# `rebound explore` against every broken mode of the fixtures, from files without the exposing
# fault (scenarios/explore/): each must find a failing schedule within BUDGET and shrink it to
# at most 2 steps; the resilient fixtures, with the same files and budget, must find nothing.
# Logs and found files under target/explore-matrix/; one line of figures per mode.
explore-matrix BUDGET="2m" SEED="1":
    #!/usr/bin/env bash
    set -uo pipefail
    cargo build --quiet -p rebound -p rebound-fixtures
    out=target/explore-matrix
    rm -rf "$out" && mkdir -p "$out"
    status=0
    echo "explore-matrix: budget {{BUDGET}}, seed {{SEED}}, $(date -u +%FT%TZ)"
    # file, broken mode ("" for the resilient fixture)
    for case in "redis-worker --no-reconnect" "redis-worker --no-health-check" \
                "redis-pop --no-processing-list" "redis-storm --no-reset" \
                "amqp-worker --auto-ack" \
                "redis-worker" "redis-pop" "redis-storm" "amqp-worker"; do
        read -r file mode <<<"$case"
        label="$file${mode:+ $mode}"
        dir="$out/${file}${mode:+-${mode#--}}"
        args=(explore "scenarios/explore/$file.toml" --budget {{BUDGET}} --seed {{SEED}} --runtime local --out "$dir")
        [ -n "$mode" ] && args+=("--worker-arg=$mode")
        start=$(date +%s)
        ./target/debug/rebound "${args[@]}" >"$dir.log" 2>&1
        rc=$?
        took=$(( $(date +%s) - start ))
        summary=$(grep -E 'schedule\(s\) tried' "$dir.log" || echo "no summary")
        finding=$(grep -E '^  [a-z_]+: schedule #' "$dir.log" | head -n 1 || true)
        steps=$(sed -nE 's/.*; ([0-9]+) step\(s\):.*/\1/p' <<<"$finding")
        if [ -n "$mode" ]; then
            if [ "$rc" -eq 1 ] && [ -n "$steps" ] && [ "$steps" -le 2 ] && grep -q 'fails it as written' <<<"$finding"; then
                verdict=ok
            else
                verdict=FAILED; status=1
            fi
        else
            if [ "$rc" -eq 0 ]; then verdict=ok; else verdict=FAILED; status=1; fi
        fi
        echo "== $label: $verdict (exit $rc, ${took}s) $summary"
        [ -n "$finding" ] && echo "  $finding"
        grep -E '^  flaky ' "$dir.log" || true
    done
    exit $status

# rebound's everyday commands. Install just with `pip install rust-just` or `cargo install just`.

# Run the scenario suite and the unit tests (what CI runs).
test:
    cargo test --workspace

# Run every scenario in scenarios/ and write reports to reports/.
scenarios *ARGS:
    cargo build --quiet -p rebound -p rebound-fixtures
    ./target/debug/rebound run scenarios/ examples/*/ --report-dir reports {{ARGS}}

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
    cargo run --quiet -p rebound -- validate scenarios/ examples/*/

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

# Proxy throughput and latency against direct Redis (ratios of medians, side by side).
bench-proxy *ARGS:
    bash scripts/bench-proxy.sh {{ARGS}}

# Timing fidelity on a quiet machine: p99 |gap the proxy saw - delay the worker announced| <= 2 ms.
fidelity:
    REBOUND_FIDELITY_P99_MS=2 cargo test -p rebound-suite -- timing::fidelity --exact --nocapture

# The docker::* scenario tests (need an engine and `just images`).
docker-tests:
    REBOUND_DOCKER_TESTS=1 cargo test -p rebound-suite -- docker:: --nocapture

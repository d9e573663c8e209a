# rebound's everyday commands. Install just with `pip install rust-just` or `cargo install just`.

# Run the scenario suite and the unit tests (what CI runs).
test:
    cargo test --workspace

# Run every scenario in scenarios/ and write reports to reports/.
scenarios *ARGS:
    cargo build --quiet -p rebound -p rebound-fixtures
    ./target/debug/rebound run scenarios/ --report-dir reports {{ARGS}}

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
    cargo run --quiet -p rebound -- validate scenarios/

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

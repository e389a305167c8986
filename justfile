# Mirrors .ci/run; `just ci` before pushing.

default: test

# The README's test command.
test:
    cargo test

# What CI runs.
ci:
    bash .ci/run

fmt:
    cargo fmt

lint:
    cargo clippy --all-targets -- -D warnings

# Benchmarks (release build): `stack template` against its floor.
bench:
    cargo bench --bench template

# The quick start: render the example platform.
demo:
    cargo run --release -- template

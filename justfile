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

# A real control plane (etcd, kube-apiserver, controller-manager, scheduler,
# kwok) built from Go modules into ~/.cache/stack-tools; see scripts/real-cluster.
real-cluster-build:
    scripts/real-cluster build

# Run a command against a throwaway real cluster: `just real-cluster-run kubectl get nodes`.
real-cluster-run +CMD:
    dir=$(mktemp -d) && scripts/real-cluster run "$dir" -- {{CMD}}; rc=$?; rm -rf "$dir"; exit $rc

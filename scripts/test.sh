#!/usr/bin/env bash
# Runs Skiff's whole test suite on a fresh machine: installs what the tests
# need, then runs every unit, conformance and integration test.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo build --workspace --all-targets
# Container tests re-exec their own binary as the container helper, so they
# use their own harness (nextest cannot list them): run them with cargo test.
cargo test -p skiff-runtime --test containers
cargo nextest run --workspace --no-fail-fast "$@"

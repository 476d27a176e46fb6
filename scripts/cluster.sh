#!/usr/bin/env bash
# Starts a single-node Skiff cluster on the embedded defaults (SQLite in
# /var/lib/skiff, API on https://127.0.0.1:6443). Then, in another shell:
#   ./target/release/skiff kubectl get ns
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo build --release -p skiff
exec ./target/release/skiff server "$@"

#!/usr/bin/env bash
# Every test: set up, then formatting, lints, the dependency-license check, and the whole
# workspace's tests (units, real models against onnxruntime, end to end on real images).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/setup.sh --browser

step() { printf '\n== test: %s\n' "$*"; }

step "rustfmt"
cargo fmt --all --check

step "clippy"
cargo clippy --release --locked --workspace --all-targets -- -D warnings

step "licenses"
python3 scripts/check_licenses.py

step "cargo test"
cargo test --release --locked --workspace

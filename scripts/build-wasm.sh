#!/usr/bin/env bash
# Builds the edge stage for both WebAssembly hosts, once each (SIMD, see .cargo/config.toml):
#
#   target/wasm32-wasip2/release/patchwire_edge.wasm   the gateway component (wit/edge.wit)
#   www/pkg/patchwire_edge{.js,_bg.wasm}               the browser ES module (wasm-bindgen)
#
# Only the edge crate is built for wasm, with its own feature set; native builds always build
# the whole workspace, so the two never invalidate each other's dependencies.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

cargo rustc --release --locked -p patchwire-edge --lib --target wasm32-wasip2 --crate-type cdylib
cargo rustc --release --locked -p patchwire-edge --lib --target wasm32-unknown-unknown --crate-type cdylib
wasm-bindgen --target web --out-dir www/pkg \
    target/wasm32-unknown-unknown/release/patchwire_edge.wasm

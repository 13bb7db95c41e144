#!/usr/bin/env bash
# The edge stage natively and in wasmtime, with and without SIMD, in one run:
# results/edge.{md,json}. Builds a scalar (no simd128) component once, into its own target
# directory so it never disturbs the SIMD build (about 10 minutes cold on 2 cores).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
shared="${PATCHWIRE_SHARED:-$(cd "$repo/.." && pwd)/shared}"

CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS="-C target-feature=-simd128" \
    cargo rustc --release --locked -p patchwire-edge --lib --target wasm32-wasip2 \
    --crate-type cdylib --target-dir target/scalar
./target/release/patchwire bench edge --data "$shared/datasets/mvtec_ad" --category bottle \
    --scalar-component target/scalar/wasm32-wasip2/release/patchwire_edge.wasm --out results

#!/usr/bin/env bash
# Fuzzes the server's payload decoder (codec/fuzz, target decode_payload) for SECONDS
# (default 900), seeded with one valid payload per scenario and every artifact kind.
#
# cargo-fuzz drives libFuzzer with AddressSanitizer, which needs nightly compiler flags; on
# this machine's stable toolchain RUSTC_BOOTSTRAP=1 enables them for this build only.
# Any crash is saved under codec/fuzz/artifacts/decode_payload/ and fails the script.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-900}"
command -v cargo-fuzz > /dev/null || cargo install cargo-fuzz --locked --version 0.13.2
cd "$repo/codec/fuzz"
cargo run --release --quiet --bin make_corpus
RUSTC_BOOTSTRAP=1 cargo fuzz run -O decode_payload corpus/decode_payload -- \
    -max_total_time="$seconds" -rss_limit_mb=2048

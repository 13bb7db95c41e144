#!/usr/bin/env bash
# The main job on the bundled data: set up, then train and evaluate PatchCore on MVTec AD
# bottle for the `original` and `features` scenarios, writing out/bottle.json
# and the table out/eval-bottle.md.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/setup.sh

shared="${PATCHWIRE_SHARED:-$(cd "$repo/.." && pwd)/shared}"
mkdir -p out
./target/release/patchwire eval --data "$shared/datasets/mvtec_ad" --category bottle \
    --scenario original,features --json out/bottle.json --out out
echo "report written to out/bottle.json and out/eval-bottle.md"

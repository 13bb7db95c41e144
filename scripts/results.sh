#!/usr/bin/env bash
# Regenerates every measured table of the README into results/ and splices them into
# README.md. Slow (tens of minutes on 2 cores): it trains PatchCore many times on real data.
#
#   bash scripts/results.sh            # everything
#   bash scripts/results.sh knn        # one group: eval, backbones, knn, inference
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/setup.sh
shared="${PATCHWIRE_SHARED:-$(cd "$repo/.." && pwd)/shared}"
mvtec="$shared/datasets/mvtec_ad"
pw=./target/release/patchwire
groups=("$@")
want_group() { [[ ${#groups[@]} -eq 0 ]] || [[ " ${groups[*]} " == *" $1 "* ]]; }

if want_group eval; then
    $pw eval --data "$mvtec" --category bottle --scenario original,features \
        --json results/eval-bottle.json --out results
fi
if want_group backbones; then
    candidates=(
        --candidate efficientnet-lite0:stage2,stage3,stage4
        --candidate efficientnet-lite0:stage2,stage3,stage5
        --candidate efficientnet-lite0:stage3,stage5
        --candidate efficientnet-lite2:stage2,stage3,stage4
        --candidate efficientnet-lite2:stage2,stage3,stage5
        --candidate efficientnet-lite2:stage3,stage5
    )
    $pw bench backbones --data "$mvtec" --category bottle "${candidates[@]}" --out results
    $pw bench backbones --data "$shared/datasets" --category magnetic_tile --good MT_Free \
        "${candidates[@]}" --out results
fi
if want_group knn; then
    $pw bench knn --data "$mvtec" --category bottle --sizes 10000,40000 --out results
fi
if want_group inference; then
    $pw bench inference --image "$mvtec/bottle/test/broken_large/000.png" --out results
fi
python3 scripts/readme_tables.py

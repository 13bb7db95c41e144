#!/usr/bin/env bash
# Regenerates every measured table of the README into results/ and splices them into
# README.md. Slow (tens of minutes on 2 cores): it trains PatchCore many times on real data.
#
#   bash scripts/results.sh            # everything
#   bash scripts/results.sh knn        # some groups: eval, backbones, knn, klt, webp, edge, inference
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/setup.sh
shared="${PATCHWIRE_SHARED:-../shared}"
mvtec="$shared/datasets/mvtec_ad"
pw=./target/release/patchwire
groups=("$@")
want_group() { [[ ${#groups[@]} -eq 0 ]] || [[ " ${groups[*]} " == *" $1 "* ]]; }

if want_group eval; then
    # Every scenario, on bottle and on the magnetic tile set (whose good class is MT_Free).
    # Magnetic tile trains on 100 of its 476 training images to keep this run near an hour
    # on 2 cores; it is still tested on all 868 held-out images.
    $pw eval --data "$mvtec" --category bottle --scenario all \
        --json results/eval-bottle.json --out results
    $pw eval --data "$shared/datasets" --category magnetic_tile --good MT_Free --max-train 100 \
        --scenario all --json results/eval-magnetic_tile.json --out results
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
if want_group klt; then
    bash scripts/klt-ablation.sh
fi
if want_group webp; then
    $pw bench webp --data "$mvtec" --category bottle --out results
fi
if want_group edge; then
    bash scripts/bench-edge.sh
fi
if want_group inference; then
    $pw bench inference --image "$mvtec/bottle/test/broken_large/000.png" --out results
fi
python3 scripts/readme_tables.py

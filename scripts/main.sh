#!/usr/bin/env bash
# The main job on the bundled data: set up, train PatchCore on MVTec AD bottle for the
# scenarios the camera page offers (each model once; later runs reuse out/models/), then start
# the inspection service and print the camera page's URL for device `camera-1`.
#
#   bash scripts/main.sh                      # listens on 127.0.0.1:8080
#   PATCHWIRE_LISTEN=0.0.0.0:8080 bash scripts/main.sh
#
# Stop it with Ctrl-C; results stay in out/patchwire.sqlite across restarts.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/setup.sh

shared="${PATCHWIRE_SHARED:-$(cd "$repo/.." && pwd)/shared}"
pw=./target/release/patchwire
mkdir -p out/models
models=()
for scenario in webp features rs pq klt-rc; do
    model="out/models/bottle-$scenario.pwm"
    if [[ ! -s "$model" ]]; then
        printf '\n== main: training bottle / %s\n' "$scenario"
        # Written under a temporary name first so an interrupted run never leaves a model
        # that looks finished.
        $pw train --data "$shared/datasets/mvtec_ad" --category bottle --scenario "$scenario" \
            --out "$model.part"
        mv "$model.part" "$model"
    fi
    models+=(--model "$model")
done

printf '\n== main: serving\n'
exec $pw serve "${models[@]}" --listen "${PATCHWIRE_LISTEN:-127.0.0.1:8080}" \
    --db out/patchwire.sqlite --device camera-1

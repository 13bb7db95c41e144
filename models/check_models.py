"""Check that every classifier in models/build/manifest.json names three photos correctly.

    models/.venv/bin/python models/check_models.py

For each model of the manifest that has a classifier output, each photo of
shared/models/mobilenet_v2 is resized straight to the model's input size (no crop, PIL
bilinear, as the pipeline does), scaled with the manifest's mean/std and run through
onnxruntime. The top-1 label must be the expected one:

    parrot.jpg        macaw
    grace_hopper.bmp  military uniform
    cat.bmp           tabby, tiger cat or Egyptian cat

Models converted from a TFLite file are also compared with the original TFLite model when
`ai_edge_litert` is installed: both must agree on the top-1 class. Exits 1 on any wrong
or disagreeing top-1, 2 when the manifest or a file is missing.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

MODELS_DIR = Path(__file__).resolve().parent
BUILD = MODELS_DIR / "build"
PHOTOS = {
    "parrot.jpg": {"macaw"},
    "grace_hopper.bmp": {"military uniform"},
    "cat.bmp": {"tabby", "tiger cat", "Egyptian cat"},
}
PHOTO_DIR = "models/mobilenet_v2"
TFLITE_SOURCES = {"mobilenet_v2": "models/mobilenet_v2/tf2_mobilenet_v2_1.0_224_ptq.tflite"}


def shared_dir() -> Path:
    return Path(os.environ.get("PATCHWIRE_SHARED") or MODELS_DIR.parent.parent / "shared")


def short_label(line: str) -> str:
    """'tabby, tabby cat' -> 'tabby': the first name of a label line."""
    return line.split(",")[0].strip()


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def load_rgb(path: Path, height: int, width: int) -> np.ndarray:
    """The photo as uint8 [height, width, 3], resized without keeping the aspect ratio."""
    with Image.open(path) as image:
        resized = image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)


def to_input(rgb: np.ndarray, scaling: dict) -> np.ndarray:
    mean = np.array(scaling["mean"], np.float32)
    std = np.array(scaling["std"], np.float32)
    x = (rgb.astype(np.float32) / 255.0 - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


class TfliteReference:
    """The original TFLite model, run with ai_edge_litert; None when that is not installed."""

    @classmethod
    def open(cls, path: Path) -> "TfliteReference | None":
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            return None
        return cls(Interpreter(model_path=str(path)))

    def __init__(self, interpreter):
        self.interpreter = interpreter
        self.interpreter.allocate_tensors()

    def probabilities(self, rgb: np.ndarray) -> np.ndarray:
        # The quantized model takes raw uint8 pixels and scales them in its first op.
        it = self.interpreter
        it.set_tensor(it.get_input_details()[0]["index"], rgb[None])
        it.invoke()
        out = it.get_output_details()[0]
        scale, zero_point = out["quantization"]
        return (it.get_tensor(out["index"])[0].astype(np.float32) - zero_point) * scale


def check_model(name: str, entry: dict, shared: Path, labels: list[str]) -> int:
    """Print one line per photo; return the number of failures."""
    classifier = entry["classifier"]
    offset = classifier["label_offset"]
    _, _, height, width = entry["input"]["shape"]
    session = ort.InferenceSession(str(BUILD / entry["file"]), providers=["CPUExecutionProvider"])
    reference = None
    if name in TFLITE_SOURCES:
        reference = TfliteReference.open(shared / TFLITE_SOURCES[name])
        if reference is None:
            print(f"{name}: ai_edge_litert not installed, no comparison with the TFLite model")

    failures = 0
    for photo, expected in PHOTOS.items():
        rgb = load_rgb(shared / PHOTO_DIR / photo, height, width)
        (scores,) = session.run(
            [classifier["output"]],
            {entry["input"]["name"]: to_input(rgb, entry["input"]["scaling"])},
        )
        scores = scores.reshape(-1)
        probs = scores if classifier["activation"] == "softmax" else softmax(scores)
        top = int(np.argmax(probs))
        label = short_label(labels[top + offset])
        verdict = "ok" if label in expected else f"WRONG (expected {' / '.join(sorted(expected))})"
        failures += label not in expected
        line = f"{name:20} {photo:18} {label:18} p={probs[top]:.3f}  {verdict}"

        if reference is not None:
            ref_probs = reference.probabilities(rgb)
            ref_top = int(np.argmax(ref_probs))
            agrees = ref_top == top
            failures += not agrees
            line += f"   tflite: {short_label(labels[ref_top + offset])} p={ref_probs[ref_top]:.3f}"
            line += "" if agrees else "  DISAGREES"
        print(line)
    return failures


def main() -> int:
    manifest_path = BUILD / "manifest.json"
    if not manifest_path.exists():
        print(f"error: {manifest_path} not found; run models/prepare.sh first", file=sys.stderr)
        return 2
    models = json.loads(manifest_path.read_text())["models"]
    shared = shared_dir()

    failures, checked = 0, 0
    for name, entry in models.items():
        classifier = entry.get("classifier")
        outputs = {o["name"] for o in entry["outputs"]}
        if classifier is None or classifier["output"] not in outputs:
            print(f"{name}: no classifier output, skipped")
            continue
        labels_path = shared / classifier["labels"]
        if not labels_path.exists():
            print(f"error: label file {labels_path} not found", file=sys.stderr)
            return 2
        labels = labels_path.read_text().splitlines()
        if classifier["classes"] + classifier["label_offset"] > len(labels):
            print(f"error: {name}: {len(labels)} labels for {classifier['classes']} classes")
            return 2
        failures += check_model(name, entry, shared, labels)
        checked += 1

    if checked == 0:
        print("error: no model with a classifier in the manifest", file=sys.stderr)
        return 2
    print(f"{checked} model(s) checked, {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

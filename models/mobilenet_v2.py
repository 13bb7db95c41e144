"""Convert the int8 TF-Hub MobileNetV2 1.0/224 TFLite model into a float32 ONNX graph.

The source is `tf2_mobilenet_v2_1.0_224_ptq.tflite` (post-training quantized, int8 weights and
activations, from google-coral/test_data). The ONNX graph it becomes:

- runs entirely in float32: weights and biases are dequantized once here, activation
  quantization is dropped (a fused RELU6 becomes Clip(0, 6), a fused RELU becomes Relu);
- is NCHW: TFLite's NHWC kernels are transposed and TF "SAME" padding is written out as
  explicit pads (TF puts the odd pixel of a stride-2 window at the bottom/right);
- takes one input `input`, float32 [1, 3, 224, 224], RGB already scaled by the caller as
  (x - 127.5) / 127.5 (no scaling node in the graph);
- has four outputs: the feature taps `features.3`, `features.8`, `features.14` and the
  pre-softmax classifier output `logits` [1, 1001] (class 0 is "background").

Tensor names follow torchvision's `mobilenet_v2().features` numbering, so the taps read
like the ones in the reference code (MoViAD / PaSTe use `features.3/8/14`):

    features.0            stem conv 3x3 stride 2, 32 channels
    features.1            inverted residual, expansion 1, 16 channels
    features.2 .. 3       24 channels, stride 4   (features.3 is the second, with its Add)
    features.4 .. 6       32 channels, stride 8
    features.7 .. 10      64 channels, stride 16  (features.8 is the second, with its Add)
    features.11 .. 13     96 channels, stride 16
    features.14 .. 16     160 channels, stride 32 (features.14 is the first, no Add)
    features.17           320 channels, stride 32
    features.18           conv 1x1, 1280 channels
    pool, classifier, logits

Inside block k the tensors are `features.k.expand`, `features.k.depthwise`,
`features.k.project` (only when an Add follows) and `features.k` (the block's output).

The block numbering is found from the graph's structure (each block ends at its linear 1x1
"project" conv, plus the residual Add that consumes it) and then checked twice: against the
TF scope names stored in the file (`MobileNetV2/expanded_conv_<k>/...`; this TF-Hub export
numbers its blocks like torchvision) and against the channel / stride / residual layout of
torchvision's MobileNetV2. A mismatch stops the conversion.
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass, field

import numpy as np
import onnx
import tflite
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
# The onnx package stamps its own newest IR version unless told otherwise; IR 8 (onnx 1.10
# to 1.14) is well below the IR 10 that onnxruntime 1.20 reads, and tract-onnx 0.23 loads it.
IR_VERSION = 8

INPUT_NAME = "input"
INPUT_SIZE = 224
NUM_CLASSES = 1001
TAPS = {
    "features.3": (24, 56, 56),
    "features.8": (64, 14, 14),
    "features.14": (160, 7, 7),
}
LOGITS = "logits"
OUTPUTS = [*TAPS, LOGITS]

# torchvision's MobileNetV2 inverted-residual settings (expansion t, channels c, repeats n,
# first stride s), used only to check the block numbering found in the file.
_TORCHVISION_SETTINGS = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]

_OP_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
_TYPE_DTYPES = {
    tflite.TensorType.FLOAT32: np.float32,
    tflite.TensorType.INT8: np.int8,
    tflite.TensorType.UINT8: np.uint8,
    tflite.TensorType.INT32: np.int32,
    tflite.TensorType.INT64: np.int64,
}
_ACT_NONE = tflite.ActivationFunctionType.NONE
_ACT_RELU = tflite.ActivationFunctionType.RELU
_ACT_RELU6 = tflite.ActivationFunctionType.RELU6


class ConversionError(RuntimeError):
    """The TFLite file holds something this converter does not handle or did not expect."""


# ---------------------------------------------------------------------------------------
# Reading the flatbuffer


@dataclass
class Op:
    """One TFLite operator, with its options already decoded into plain values."""

    index: int
    kind: str
    inputs: list[int]
    outputs: list[int]
    options: dict = field(default_factory=dict)


class TfliteGraph:
    """Read access to the single subgraph of a TFLite model file."""

    def __init__(self, data: bytes, path: str):
        self.path = path
        self.data = data
        self.model = tflite.Model.GetRootAsModel(data, 0)
        if self.model.SubgraphsLength() != 1:
            raise ConversionError(
                f"{path}: expected 1 subgraph, found {self.model.SubgraphsLength()}"
            )
        self.graph = self.model.Subgraphs(0)

    def tensor_name(self, index: int) -> str:
        return self.graph.Tensors(index).Name().decode("utf-8", "replace")

    def shape(self, index: int) -> list[int]:
        tensor = self.graph.Tensors(index)
        return [int(d) for d in tensor.ShapeAsNumpy()] if tensor.ShapeLength() else []

    def quantization(self, index: int) -> tuple[np.ndarray, np.ndarray, int] | None:
        """Scales, zero points and quantized axis of a tensor, or None if it is not quantized."""
        q = self.graph.Tensors(index).Quantization()
        if q is None or q.ScaleLength() == 0:
            return None
        zero_points = q.ZeroPointAsNumpy() if q.ZeroPointLength() else np.zeros(1, np.int64)
        return (
            q.ScaleAsNumpy().astype(np.float64),
            zero_points.astype(np.int64),
            q.QuantizedDimension(),
        )

    def raw(self, index: int) -> np.ndarray:
        """The stored values of a constant tensor, in its stored integer or float type."""
        tensor = self.graph.Tensors(index)
        name = self.tensor_name(index)
        dtype = _TYPE_DTYPES.get(tensor.Type())
        if dtype is None:
            raise ConversionError(f"tensor {index} ({name}): unsupported type {tensor.Type()}")
        buffer = self.model.Buffers(tensor.Buffer())
        if buffer.DataLength() > 0:
            payload = buffer.DataAsNumpy().tobytes()
        elif buffer.Offset() > 1:
            # Files over 2 GB keep buffers after the flatbuffer; offsets count from file start.
            payload = self.data[buffer.Offset() : buffer.Offset() + buffer.Size()]
        else:
            raise ConversionError(f"tensor {index} ({name}) is used as a constant but has no data")
        values = np.frombuffer(payload, dtype=dtype)
        shape = self.shape(index)
        if values.size != int(np.prod(shape)):
            raise ConversionError(
                f"tensor {index} ({name}): {values.size} stored values for shape {shape}"
            )
        return values.reshape(shape)

    def dequantized(self, index: int) -> np.ndarray:
        """A constant tensor as float32: (q - zero_point) * scale, per channel where stored so."""
        values = self.raw(index)
        if values.dtype == np.float32:
            return values.copy()
        quant = self.quantization(index)
        if quant is None:
            raise ConversionError(
                f"tensor {index} ({self.tensor_name(index)}) is {values.dtype} without "
                "quantization parameters, cannot turn it into float"
            )
        scales, zero_points, axis = quant
        if scales.size > 1:
            bshape = [1] * values.ndim
            bshape[axis] = scales.size
            if values.shape[axis] != scales.size:
                raise ConversionError(
                    f"tensor {index}: {scales.size} scales for axis {axis} of shape {values.shape}"
                )
            scales = scales.reshape(bshape)
            zero_points = np.broadcast_to(zero_points, (scales.size,)).reshape(bshape)
        return ((values.astype(np.float64) - zero_points) * scales).astype(np.float32)

    def ops(self) -> list[Op]:
        result = []
        for i in range(self.graph.OperatorsLength()):
            op = self.graph.Operators(i)
            code = self.model.OperatorCodes(op.OpcodeIndex())
            # Files from TF >= 2.4 store codes above 127 only in BuiltinCode; older ones only
            # in DeprecatedBuiltinCode. The larger of the two is the real one.
            kind = _OP_NAMES.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?")
            result.append(
                Op(
                    index=i,
                    kind=kind,
                    inputs=[int(t) for t in op.InputsAsNumpy()],
                    outputs=[int(t) for t in op.OutputsAsNumpy()],
                    options=_decode_options(kind, op),
                )
            )
        return result


def _decode_options(kind: str, op) -> dict:
    table = op.BuiltinOptions()
    if table is None:
        return {}
    if kind == "CONV_2D":
        o = tflite.Conv2DOptions()
        o.Init(table.Bytes, table.Pos)
        return {
            "padding": o.Padding(),
            "stride": (o.StrideH(), o.StrideW()),
            "dilation": (o.DilationHFactor(), o.DilationWFactor()),
            "activation": o.FusedActivationFunction(),
        }
    if kind == "DEPTHWISE_CONV_2D":
        o = tflite.DepthwiseConv2DOptions()
        o.Init(table.Bytes, table.Pos)
        return {
            "padding": o.Padding(),
            "stride": (o.StrideH(), o.StrideW()),
            "dilation": (o.DilationHFactor(), o.DilationWFactor()),
            "activation": o.FusedActivationFunction(),
            "depth_multiplier": o.DepthMultiplier(),
        }
    if kind == "ADD":
        o = tflite.AddOptions()
        o.Init(table.Bytes, table.Pos)
        return {"activation": o.FusedActivationFunction()}
    if kind == "MEAN":
        o = tflite.ReducerOptions()
        o.Init(table.Bytes, table.Pos)
        return {"keep_dims": bool(o.KeepDims())}
    if kind == "SOFTMAX":
        o = tflite.SoftmaxOptions()
        o.Init(table.Bytes, table.Pos)
        return {"beta": o.Beta()}
    return {}


# ---------------------------------------------------------------------------------------
# Naming the tensors after torchvision's blocks


def _name_ops(graph: TfliteGraph, ops: list[Op]) -> dict[int, str]:
    """Map each op index that produces a kept tensor to its torchvision-style name.

    QUANTIZE / DEQUANTIZE ops get no name: in the float graph they pass their input through.
    """
    names: dict[int, str] = {}
    body = [op for op in ops if op.kind not in ("QUANTIZE", "DEQUANTIZE")]

    def fail(op: Op, why: str) -> ConversionError:
        return ConversionError(
            f"op {op.index} ({op.kind}, output {graph.tensor_name(op.outputs[0])[:80]!r}): {why}"
        )

    def is_1x1_conv(op: Op) -> bool:
        return op.kind == "CONV_2D" and graph.shape(op.inputs[1])[1:3] == [1, 1]

    # Stem.
    pos = 0
    if body[pos].kind != "CONV_2D" or is_1x1_conv(body[pos]):
        raise fail(body[pos], "expected the 3x3 stem convolution first")
    names[body[pos].index] = "features.0"
    pos += 1

    # Inverted residual blocks: [expand 1x1 + RELU6] depthwise + RELU6, project 1x1, [Add].
    block = 0
    while pos < len(body) and body[pos].kind != "MEAN":
        op = body[pos]
        if op.kind == "CONV_2D" and pos + 1 < len(body) and body[pos + 1].kind == "MEAN":
            break  # the last 1x1 conv before pooling, features.18
        block += 1
        prefix = f"features.{block}"
        if op.kind == "CONV_2D":
            if not is_1x1_conv(op) or op.options["activation"] != _ACT_RELU6:
                raise fail(op, f"expected the 1x1 RELU6 expand conv of block {block}")
            names[op.index] = f"{prefix}.expand"
            pos += 1
            op = body[pos]
        if op.kind != "DEPTHWISE_CONV_2D":
            raise fail(op, f"expected the depthwise conv of block {block}")
        names[op.index] = f"{prefix}.depthwise"
        pos += 1
        project = body[pos]
        if not is_1x1_conv(project) or project.options["activation"] != _ACT_NONE:
            raise fail(project, f"expected the linear 1x1 project conv of block {block}")
        pos += 1
        following = body[pos] if pos < len(body) else None
        if (
            following is not None
            and following.kind == "ADD"
            and project.outputs[0] in following.inputs
        ):
            names[project.index] = f"{prefix}.project"
            names[following.index] = prefix
            pos += 1
        else:
            names[project.index] = prefix

    # Head: conv 1x1 to 1280, global mean, 1x1 conv classifier, reshape to [1, 1001].
    head = body[pos:]
    kinds = [op.kind for op in head]
    if kinds[:4] != ["CONV_2D", "MEAN", "CONV_2D", "RESHAPE"]:
        raise ConversionError(f"unexpected classifier head, ops {kinds}")
    names[head[0].index] = f"features.{block + 1}"
    names[head[1].index] = "pool"
    names[head[2].index] = "classifier"
    names[head[3].index] = LOGITS
    for op in head[4:]:
        if op.kind != "SOFTMAX":
            raise fail(op, "unexpected op after the logits")
        names[op.index] = "probs"

    _check_against_tf_scopes(graph, ops, names)
    _check_against_torchvision(graph, ops, names, block)
    return names


def _check_against_tf_scopes(graph: TfliteGraph, ops: list[Op], names: dict[int, str]) -> None:
    """Each block's ops must carry the TF scope `expanded_conv_<k>` of the same number k."""
    scope = re.compile(r"MobileNetV2/expanded_conv_(\d+)/")
    for op in ops:
        name = names.get(op.index, "")
        match = re.fullmatch(r"features\.(\d+)(\..*)?", name)
        if not match or match.group(1) in ("0", "18"):
            continue
        tf_name = graph.tensor_name(op.outputs[0]).split(";")[0]
        found = scope.match(tf_name)
        if found is None or found.group(1) != match.group(1):
            raise ConversionError(
                f"op {op.index} was numbered {name} from the graph structure, but its TF scope "
                f"is {tf_name!r}"
            )


def _check_against_torchvision(
    graph: TfliteGraph, ops: list[Op], names: dict[int, str], blocks: int
) -> None:
    """Block outputs must have torchvision's channels, stride and residual layout."""
    expected = {0: (32, 2, False)}
    k, stride = 1, 2
    for _t, channels, repeats, first_stride in _TORCHVISION_SETTINGS:
        for r in range(repeats):
            stride *= first_stride if r == 0 else 1
            expected[k] = (channels, stride, r > 0)
            k += 1
    if blocks != len(expected) - 1:
        raise ConversionError(f"found {blocks} inverted residual blocks, torchvision has {k - 1}")

    by_name = {name: op for op in ops if (name := names.get(op.index))}
    for index, (channels, stride, residual) in expected.items():
        name = f"features.{index}"
        op = by_name[name]
        _, height, width, found_channels = graph.shape(op.outputs[0])
        found = (found_channels, INPUT_SIZE // height, op.kind == "ADD")
        if found != (channels, stride, residual) or height != width:
            raise ConversionError(
                f"{name}: channels/stride/residual {found}, torchvision has "
                f"{(channels, stride, residual)}"
            )


# ---------------------------------------------------------------------------------------
# Building the ONNX graph


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TF SAME padding for one spatial axis: (before, after), the extra pixel after."""
    out = -(-size // stride)
    effective = (kernel - 1) * dilation + 1
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


class OnnxBuilder:
    """Collects nodes and initializers while the TFLite ops are walked in order."""

    def __init__(self, graph: TfliteGraph):
        self.tfl = graph
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: dict[str, np.ndarray] = {}
        self.value: dict[int, str] = {}  # TFLite tensor index -> ONNX tensor name

    def constant(self, name: str, array: np.ndarray) -> str:
        self.initializers[name] = array
        return name

    def activation(self, name: str, source: str, activation: int) -> str:
        """Apply a fused activation to `source`; the result is called `name`."""
        if activation == _ACT_NONE:
            return source
        if activation == _ACT_RELU:
            self.nodes.append(helper.make_node("Relu", [source], [name], name=f"{name}/relu"))
        elif activation == _ACT_RELU6:
            lo = self.constant("relu6.min", np.array(0.0, np.float32))
            hi = self.constant("relu6.max", np.array(6.0, np.float32))
            self.nodes.append(
                helper.make_node("Clip", [source, lo, hi], [name], name=f"{name}/relu6")
            )
        else:
            raise ConversionError(f"{name}: unsupported fused activation {activation}")
        return name

    def conv(self, op: Op, name: str) -> None:
        tfl = self.tfl
        weight = tfl.dequantized(op.inputs[1])
        depthwise = op.kind == "DEPTHWISE_CONV_2D"
        if depthwise:
            # [1, kh, kw, C * multiplier] -> [C * multiplier, 1, kh, kw], one group per input
            # channel; TFLite's output channel c * multiplier + m lands in group c as ONNX wants.
            kernel = weight.transpose(3, 0, 1, 2)
            groups = tfl.shape(op.inputs[0])[3]
            if kernel.shape[0] != groups * op.options["depth_multiplier"]:
                raise ConversionError(
                    f"{name}: depthwise weight {weight.shape} vs {groups} channels"
                )
        else:
            kernel = weight.transpose(0, 3, 1, 2)  # [O, kh, kw, I] -> [O, I, kh, kw]
            groups = 1
        bias = self._bias(op, name, weight)

        _, height, width, _ = tfl.shape(op.inputs[0])
        kh, kw = kernel.shape[2:]
        (sh, sw), (dh, dw) = op.options["stride"], op.options["dilation"]
        if op.options["padding"] == tflite.Padding.SAME:
            top, bottom = _same_pads(height, kh, sh, dh)
            left, right = _same_pads(width, kw, sw, dw)
        else:
            top = bottom = left = right = 0

        activation = op.options["activation"]
        conv_out = name if activation == _ACT_NONE else f"{name}.conv"
        inputs = [
            self.value[op.inputs[0]],
            self.constant(f"{name}.weight", np.ascontiguousarray(kernel)),
            self.constant(f"{name}.bias", bias),
        ]
        self.nodes.append(
            helper.make_node(
                "Conv",
                inputs,
                [conv_out],
                name=f"{name}/conv",
                kernel_shape=[kh, kw],
                strides=[sh, sw],
                dilations=[dh, dw],
                pads=[top, left, bottom, right],
                group=groups,
            )
        )
        self.value[op.outputs[0]] = self.activation(name, conv_out, activation)

    def _bias(self, op: Op, name: str, weight: np.ndarray) -> np.ndarray:
        channels = self.tfl.shape(op.inputs[1])[0 if op.kind == "CONV_2D" else 3]
        if len(op.inputs) < 3 or op.inputs[2] < 0:
            return np.zeros(channels, np.float32)
        bias = self.tfl.dequantized(op.inputs[2])

        # The int32 bias is stored with scale input_scale * weight_scale; check that reading.
        quant_b = self.tfl.quantization(op.inputs[2])
        quant_x = self.tfl.quantization(op.inputs[0])
        quant_w = self.tfl.quantization(op.inputs[1])
        if quant_b is not None and quant_x is not None and quant_w is not None:
            implied = quant_x[0][0] * quant_w[0]
            if not np.allclose(quant_b[0], implied, rtol=1e-4):
                raise ConversionError(f"{name}: bias scale is not input scale x weight scale")
        return bias

    def add(self, op: Op, name: str) -> None:
        a, b = (self.value[t] for t in op.inputs)
        activation = op.options["activation"]
        out = name if activation == _ACT_NONE else f"{name}.sum"
        self.nodes.append(helper.make_node("Add", [a, b], [out], name=f"{name}/add"))
        self.value[op.outputs[0]] = self.activation(name, out, activation)

    def mean(self, op: Op, name: str) -> None:
        axes = sorted(int(a) % 4 for a in self.tfl.raw(op.inputs[1]).ravel())
        if axes != [1, 2] or not op.options["keep_dims"]:
            raise ConversionError(
                f"{name}: only a spatial mean with keep_dims is handled, got axes {axes}"
            )
        self.nodes.append(
            helper.make_node(
                "GlobalAveragePool", [self.value[op.inputs[0]]], [name], name=f"{name}/pool"
            )
        )
        self.value[op.outputs[0]] = name

    def reshape(self, op: Op, name: str) -> None:
        source_shape = self.tfl.shape(op.inputs[0])
        target = self.tfl.shape(op.outputs[0])
        # NCHW and NHWC flatten to the same order only when the spatial dims are 1.
        if len(source_shape) == 4 and source_shape[1] * source_shape[2] != 1:
            raise ConversionError(f"{name}: reshape of a {source_shape} NHWC map is not handled")
        shape = self.constant(f"{name}.shape", np.array(target, np.int64))
        self.nodes.append(
            helper.make_node(
                "Reshape", [self.value[op.inputs[0]], shape], [name], name=f"{name}/reshape"
            )
        )
        self.value[op.outputs[0]] = name

    def softmax(self, op: Op, name: str) -> None:
        if op.options.get("beta", 1.0) != 1.0:
            raise ConversionError(f"{name}: softmax beta {op.options['beta']} is not handled")
        self.nodes.append(
            helper.make_node(
                "Softmax", [self.value[op.inputs[0]]], [name], name=f"{name}/softmax", axis=-1
            )
        )
        self.value[op.outputs[0]] = name


def _nchw(shape: list[int]) -> list[int]:
    return [shape[0], shape[3], shape[1], shape[2]] if len(shape) == 4 else shape


def _keep_needed(
    nodes: list[onnx.NodeProto], initializers: dict[str, np.ndarray], outputs: list[str]
) -> tuple[list[onnx.NodeProto], dict[str, np.ndarray]]:
    """Drop the nodes and constants that no requested output depends on (e.g. the softmax)."""
    needed = set(outputs)
    kept = []
    for node in reversed(nodes):
        if needed.intersection(node.output):
            kept.append(node)
            needed.update(node.input)
    kept.reverse()
    return kept, {k: v for k, v in initializers.items() if k in needed}


def build_model(tflite_path: str) -> onnx.ModelProto:
    """Read the TFLite file and return the float ONNX model (not yet saved)."""
    with open(tflite_path, "rb") as f:
        data = f.read()
    graph = TfliteGraph(data, tflite_path)
    ops = graph.ops()
    names = _name_ops(graph, ops)

    inputs = list(graph.graph.InputsAsNumpy())
    if len(inputs) != 1 or graph.shape(inputs[0]) != [1, INPUT_SIZE, INPUT_SIZE, 3]:
        raise ConversionError(
            f"{tflite_path}: expected one [1, {INPUT_SIZE}, {INPUT_SIZE}, 3] input, got "
            f"{[graph.shape(i) for i in inputs]}"
        )

    builder = OnnxBuilder(graph)
    builder.value[int(inputs[0])] = INPUT_NAME
    handlers = {
        "CONV_2D": builder.conv,
        "DEPTHWISE_CONV_2D": builder.conv,
        "ADD": builder.add,
        "MEAN": builder.mean,
        "RESHAPE": builder.reshape,
        "SOFTMAX": builder.softmax,
    }
    for op in ops:
        if op.kind in ("QUANTIZE", "DEQUANTIZE"):
            # Float graph: (de)quantizing is the identity on real values.
            builder.value[op.outputs[0]] = builder.value[op.inputs[0]]
            continue
        handler = handlers.get(op.kind)
        if handler is None:
            raise ConversionError(f"op {op.index}: TFLite op {op.kind} is not handled")
        handler(op, names[op.index])

    nodes, initializers = _keep_needed(builder.nodes, builder.initializers, OUTPUTS)

    shapes = {}
    for op in ops:
        if names.get(op.index) in OUTPUTS:
            shapes[names[op.index]] = _nchw(graph.shape(op.outputs[0]))
    for tap, (c, h, w) in TAPS.items():
        if shapes[tap] != [1, c, h, w]:
            raise ConversionError(f"{tap}: shape {shapes[tap]}, expected {[1, c, h, w]}")
    if shapes[LOGITS] != [1, NUM_CLASSES]:
        raise ConversionError(f"logits: shape {shapes[LOGITS]}, expected [1, {NUM_CLASSES}]")

    onnx_graph = helper.make_graph(
        nodes,
        "mobilenet_v2",
        [
            helper.make_tensor_value_info(
                INPUT_NAME, TensorProto.FLOAT, [1, 3, INPUT_SIZE, INPUT_SIZE]
            )
        ],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, shapes[n]) for n in OUTPUTS],
        initializer=[numpy_helper.from_array(v, k) for k, v in initializers.items()],
    )
    model = helper.make_model(
        onnx_graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="patchwire-models/mobilenet_v2.py",
        doc_string=(
            "MobileNetV2 1.0/224 (TF-Hub, ImageNet, 1001 classes, class 0 = background), "
            "dequantized to float32 from tf2_mobilenet_v2_1.0_224_ptq.tflite. Input: RGB NCHW "
            "scaled as (x - 127.5) / 127.5. Outputs: torchvision taps features.3/8/14 and "
            "pre-softmax logits."
        ),
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(
        model, {"source_sha256": hashlib.sha256(data).hexdigest(), "logits": "pre-softmax"}
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def convert(tflite_path: str, out_path: str) -> None:
    """Convert `tflite_path` and write the ONNX model to `out_path`."""
    onnx.save_model(build_model(tflite_path), out_path)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: mobilenet_v2.py MODEL.tflite OUT.onnx")
    convert(sys.argv[1], sys.argv[2])

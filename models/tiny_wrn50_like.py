#!/usr/bin/env python3
"""Writes a small random ONNX model shaped like a torchvision wide_resnet50_2 export.

No WideResNet-50 weights exist on these machines (NOTES.md), so the tests check that a
user's export would be accepted as it is with this stand-in: input `input` 1x3x224x224,
intermediate outputs named `layer1` (stride 4), `layer2` (stride 8) and `layer3` (stride 16)
like the real network's, a classifier output `output`, and torchvision input scaling.
Usage: tiny_wrn50_like.py OUT.onnx
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def conv(name, x, cin, cout, k, stride, rng):
    w = (rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype(np.float32)
    b = np.zeros(cout, np.float32)
    inits = [numpy_helper.from_array(w, name + ".weight"), numpy_helper.from_array(b, name + ".bias")]
    node = helper.make_node("Conv", [x, name + ".weight", name + ".bias"], [name + ".conv"],
                            kernel_shape=[k, k], strides=[stride, stride])
    relu = helper.make_node("Relu", [name + ".conv"], [name])
    return [node, relu], inits


def main(out):
    rng = np.random.default_rng(50)
    nodes, inits = [], []
    for name, x, cin, cout, k, s in [("layer1", "input", 3, 16, 4, 4),
                                     ("layer2", "layer1", 16, 32, 2, 2),
                                     ("layer3", "layer2", 32, 64, 2, 2)]:
        n, i = conv(name, x, cin, cout, k, s, rng)
        nodes += n
        inits += i
    nodes.append(helper.make_node("GlobalAveragePool", ["layer3"], ["pooled"]))
    nodes.append(helper.make_node("Flatten", ["pooled"], ["output"]))
    graph = helper.make_graph(
        nodes, "tiny_wrn50_like",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 224, 224])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 64])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    onnx.save(model, out)


if __name__ == "__main__":
    main(sys.argv[1])

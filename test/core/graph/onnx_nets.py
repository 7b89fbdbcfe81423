"""Small ONNX models built with ``onnx.helper``, in the shape of users' own models.

One stable function per net, each returning a checked ``onnx.ModelProto`` (opset 17, IR 8,
fp32, seeded weights as initialisers):

* :func:`classifier_net` - Conv/BN/Relu stem, two branches joined by Concat, a residual block
  (Add over a skip connection), MaxPool, GlobalAveragePool, Flatten, Gemm, Softmax;
* :func:`detector_net` - a strided backbone and a detector-style head: Resize (nearest, x2,
  scales from a Constant node) of a deep feature, Concat with a shallower one, Conv, Sigmoid,
  Reshape and Transpose to (N, anchors, H*W, values);
* :func:`segmenter_net` - an encoder, ConvTranspose upsampling with an Add skip, a 1x1 class
  Conv and Softmax over channels.

``dynamic_batch=True`` names the batch dimension ``"N"`` instead of 1 (a dynamic model: the
reader needs an input shape). ``NETS`` maps a short id to each builder; ``INPUT_SHAPES`` gives
each one's (static) input shape. The torch path's tests import these builders too.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Tuple

import numpy as np

OPSET = 17
IR_VERSION = 8


class _Net:
    """Collects nodes and initialisers; names tensors after their nodes."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: List = []
        self.inits: List = []

    def init(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op: str, inputs, name: str, outputs: int = 1, **attrs) -> List[str]:
        from onnx import helper

        tops = [name] if outputs == 1 else [f"{name}:{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op, list(inputs), tops, name=name, **attrs))
        return tops

    def conv(self, x: str, name: str, cin: int, cout: int, kernel: int = 3, stride: int = 1,
             group: int = 1) -> str:
        weight = self.rng.normal(0, (2.0 / (cin // group * kernel * kernel)) ** 0.5,
                                 (cout, cin // group, kernel, kernel)).astype(np.float32)
        bias = self.rng.normal(0, 0.05, cout).astype(np.float32)
        pad = kernel // 2
        return self.node("Conv", [x, self.init(f"{name}.weight", weight),
                                  self.init(f"{name}.bias", bias)], name,
                         kernel_shape=[kernel, kernel], strides=[stride, stride],
                         pads=[pad] * 4, group=group)[0]

    def bn(self, x: str, name: str, channels: int) -> str:
        r = self.rng
        params = [r.uniform(0.5, 1.5, channels), r.normal(0, 0.1, channels),
                  r.normal(0, 0.1, channels), r.uniform(0.5, 1.5, channels)]
        names = [self.init(f"{name}.{what}", value.astype(np.float32))
                 for what, value in zip(("scale", "bias", "mean", "var"), params)]
        return self.node("BatchNormalization", [x] + names, name, epsilon=1e-5)[0]

    def relu(self, x: str, name: str) -> str:
        return self.node("Relu", [x], name)[0]

    def model(self, name: str, inputs, outputs):
        import onnx
        from onnx import helper

        graph = helper.make_graph(self.nodes, name, inputs, outputs, initializer=self.inits)
        model = helper.make_model(graph, producer_name="hax_conn-tests",
                                  opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model, full_check=True)
        return model


def _io(name: str, shape, dynamic_batch: bool):
    from onnx import TensorProto, helper

    dims = ["N" if dynamic_batch else shape[0]] + list(shape[1:])
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def _output(name: str, shape, dynamic_batch: bool):
    return _io(name, shape, dynamic_batch)


def classifier_net(seed: int = 0, dynamic_batch: bool = False):
    """1x3x32x32 -> 10 class probabilities; branches, a residual block and a skip."""
    n = _Net(seed)
    x = n.relu(n.bn(n.conv("image", "stem", 3, 8), "stem_bn", 8), "stem_relu")
    x = n.node("MaxPool", [x], "pool1", kernel_shape=[2, 2], strides=[2, 2])[0]  # 16x16
    a = n.relu(n.conv(x, "branch_a", 8, 8, kernel=1), "branch_a_relu")
    b = n.relu(n.conv(x, "branch_b1", 8, 4, kernel=1), "branch_b1_relu")
    b = n.relu(n.conv(b, "branch_b2", 4, 8), "branch_b2_relu")
    x = n.node("Concat", [a, b], "mixed", axis=1)[0]  # 16 channels
    skip = x
    y = n.relu(n.bn(n.conv(x, "res_conv1", 16, 16), "res_bn1", 16), "res_relu1")
    y = n.bn(n.conv(y, "res_conv2", 16, 16), "res_bn2", 16)
    x = n.relu(n.node("Add", [y, skip], "res_add")[0], "res_relu")
    x = n.relu(n.conv(x, "down", 16, 32, stride=2), "down_relu")  # 8x8
    x = n.node("GlobalAveragePool", [x], "gap")[0]
    x = n.node("Flatten", [x], "flatten", axis=1)[0]
    w = n.init("fc.weight", n.rng.normal(0, 0.2, (10, 32)).astype(np.float32))
    bias = n.init("fc.bias", n.rng.normal(0, 0.05, 10).astype(np.float32))
    x = n.node("Gemm", [x, w, bias], "fc", transB=1)[0]
    n.node("Softmax", [x], "prob", axis=1)
    return n.model("classifier", [_io("image", (1, 3, 32, 32), dynamic_batch)],
                   [_output("prob", (1, 10), dynamic_batch)])


def detector_net(seed: int = 0, dynamic_batch: bool = False):
    """1x3x64x64 -> (1, 3, 256, 6) boxes: Resize x2 of a deep feature, Concat with a
    shallower one (a skip over the deep stage), Sigmoid, Reshape, Transpose."""
    from onnx import helper, TensorProto

    n = _Net(seed)
    x = n.relu(n.conv("image", "c1", 3, 8, stride=2), "c1_relu")  # 32x32
    x = n.relu(n.conv(x, "c2", 8, 16, stride=2), "c2_relu")  # 16x16
    shallow = x
    x = n.relu(n.conv(x, "c3", 16, 32, stride=2), "c3_relu")  # 8x8
    x = n.relu(n.conv(x, "c4", 32, 16, kernel=1), "c4_relu")
    scales = n.node("Constant", [], "up_scales",
                    value=helper.make_tensor("up_scales", TensorProto.FLOAT, [4],
                                             [1.0, 1.0, 2.0, 2.0]))[0]
    x = n.node("Resize", [x, "", scales], "up", mode="nearest")[0]  # 16x16
    x = n.node("Concat", [x, shallow], "fuse", axis=1)[0]  # 32 channels
    x = n.relu(n.conv(x, "head", 32, 16), "head_relu")
    x = n.conv(x, "pred", 16, 18, kernel=1)  # 3 anchors x 6 values
    x = n.node("Sigmoid", [x], "pred_sigmoid")[0]
    shape = n.init("boxes.shape", np.array([1, 3, 6, 256], np.int64))
    x = n.node("Reshape", [x, shape], "boxes_reshape")[0]
    n.node("Transpose", [x], "boxes", perm=[0, 1, 3, 2])
    return n.model("detector", [_io("image", (1, 3, 64, 64), dynamic_batch)],
                   [_output("boxes", (1, 3, 256, 6), dynamic_batch)])


def segmenter_net(seed: int = 0, dynamic_batch: bool = False):
    """1x3x32x32 -> (1, 5, 32, 32) class probabilities per pixel; ConvTranspose x2 twice,
    an Add skip from the encoder."""
    n = _Net(seed)
    e1 = n.relu(n.conv("image", "enc1", 3, 8, stride=2), "enc1_relu")  # 16x16
    e2 = n.relu(n.conv(e1, "enc2", 8, 16, stride=2), "enc2_relu")  # 8x8

    def up(x, name, cin, cout):
        weight = n.rng.normal(0, (1.0 / (cin * 4)) ** 0.5, (cin, cout, 2, 2)).astype(
            np.float32)
        bias = n.rng.normal(0, 0.05, cout).astype(np.float32)
        return n.node("ConvTranspose", [x, n.init(f"{name}.weight", weight),
                                        n.init(f"{name}.bias", bias)], name,
                      kernel_shape=[2, 2], strides=[2, 2])[0]

    d1 = n.relu(up(e2, "dec1", 16, 8), "dec1_relu")  # 16x16
    d1 = n.node("Add", [d1, e1], "skip_add")[0]
    d2 = n.relu(up(d1, "dec2", 8, 8), "dec2_relu")  # 32x32
    x = n.conv(d2, "classes", 8, 5, kernel=1)
    n.node("Softmax", [x], "seg", axis=1)
    return n.model("segmenter", [_io("image", (1, 3, 32, 32), dynamic_batch)],
                   [_output("seg", (1, 5, 32, 32), dynamic_batch)])


def exported_flatten_net(seed: int = 0, dynamic_batch: bool = True):
    """1x3x8x8 -> 5, in the shape of a PyTorch export with a dynamic batch axis:
    ``x.view(x.size(0), -1)`` as Shape -> Gather -> Unsqueeze -> Concat -> Reshape, a Dropout
    with its mask output, a graph input that is also an initialiser (IR < 4 style), unnamed
    nodes and MatMul. Not in ``NETS``: it needs an input shape when ``dynamic_batch``."""
    from onnx import TensorProto, helper

    n = _Net(seed)
    weight = n.init("W", n.rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32))
    fc = n.init("fcw", n.rng.normal(0, 0.1, (256, 5)).astype(np.float32))
    axes = n.init("axes", np.array([0], np.int64))
    minus_one = n.init("minus_one", np.array([-1], np.int64))
    nodes = [helper.make_node("Conv", ["x", weight], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Dropout", ["r"], ["d", "mask"], name="drop"),
             helper.make_node("Shape", ["d"], ["s"]),
             helper.make_node("Constant", [], ["zero"], value=helper.make_tensor(
                 "zero", TensorProto.INT64, [], [0])),
             helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", axes], ["nu"]),
             helper.make_node("Concat", ["nu", minus_one], ["shape"], axis=0),
             helper.make_node("Reshape", ["d", "shape"], ["flat"]),
             helper.make_node("MatMul", ["flat", fc], ["y"], name="fc")]
    n.nodes = nodes
    batch = "batch" if dynamic_batch else 1
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8]),
              helper.make_tensor_value_info("W", TensorProto.FLOAT, [4, 3, 3, 3])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 5])]
    return n.model("exported_flatten", inputs, outputs)


NETS: Dict[str, Callable] = {"classifier": classifier_net, "detector": detector_net,
                             "segmenter": segmenter_net}
INPUT_SHAPES: Dict[str, Tuple[int, ...]] = {"classifier": (1, 3, 32, 32),
                                            "detector": (1, 3, 64, 64),
                                            "segmenter": (1, 3, 32, 32)}


def save(model, path) -> str:
    """Write ``model`` to ``path`` (a .onnx file); returns the path as a string."""
    import onnx

    onnx.save(model, str(path))
    return str(path)

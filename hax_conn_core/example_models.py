"""A user-style ONNX model for the demos: a small detector, built with ``onnx.helper``.

``detector_model()`` stands in for what a robotics team exports from PyTorch: a strided
convolutional backbone, a detector-style head that upsamples the deepest feature (Resize,
nearest, x2, scales from a Constant node), joins it with a shallower one (Concat on channels),
predicts per cell (Conv, Sigmoid) and lays the predictions out as (N, anchors, cells, values)
(Reshape, Transpose). Its batch dimension is dynamic (``"N"``) unless ``dynamic_batch=False``,
as exporters write it, so reading it needs an input shape (``INPUT_SHAPE``). Weights are seeded
initialisers (fp32). ``hax-conn demo --own-model`` writes it (docs/own-models.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple, Union

#: What the demo reads the model with (``--input-shape 1x3x64x64``).
INPUT_SHAPE: Tuple[int, int, int, int] = (1, 3, 64, 64)
OPSET = 17
ANCHORS, VALUES = 3, 6  # per cell: box (4), objectness, one class score


def detector_model(seed: int = 0, dynamic_batch: bool = True):
    """The detector as a checked ``onnx.ModelProto`` (opset 17)."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper, TensorProto

    rng = np.random.default_rng(seed)
    nodes: List = []
    inits: List = []

    def conv(x: str, name: str, cin: int, cout: int, stride: int, kernel: int = 3) -> str:
        std = (2.0 / (cin * kernel * kernel)) ** 0.5  # He, so activations keep their scale
        weight = rng.normal(0.0, std, (cout, cin, kernel, kernel)).astype(np.float32)
        inits.append(numpy_helper.from_array(weight, f"{name}.weight"))
        inits.append(numpy_helper.from_array(
            rng.normal(0.0, 0.05, cout).astype(np.float32), f"{name}.bias"))
        nodes.append(helper.make_node("Conv", [x, f"{name}.weight", f"{name}.bias"], [name],
                                      name=name, kernel_shape=[kernel, kernel],
                                      strides=[stride, stride], pads=[kernel // 2] * 4))
        return name

    def op(kind: str, inputs, name: str, **attrs) -> str:
        nodes.append(helper.make_node(kind, list(inputs), [name], name=name, **attrs))
        return name

    n, c, h, w = INPUT_SHAPE
    x = op("Relu", [conv("image", "stem", c, 16, 2)], "stem_relu")        # 32x32
    shallow = op("Relu", [conv(x, "stage1", 16, 32, 2)], "stage1_relu")  # 16x16
    deep = op("Relu", [conv(shallow, "stage2", 32, 64, 2)], "stage2_relu")  # 8x8
    scales = helper.make_tensor("up_scales", TensorProto.FLOAT, [4], [1.0, 1.0, 2.0, 2.0])
    nodes.append(helper.make_node("Constant", [], ["up_scales"], name="up_scales",
                                  value=scales))
    up = op("Resize", [deep, "", "up_scales"], "upsample", mode="nearest")  # 16x16
    joined = op("Concat", [up, shallow], "join", axis=1)
    fused = op("Relu", [conv(joined, "head", 96, 32, 1)], "head_relu")
    pred = op("Sigmoid", [conv(fused, "predict", 32, ANCHORS * VALUES, 1, kernel=1)],
              "predict_sigmoid")
    cells = (h // 4) * (w // 4)
    inits.append(numpy_helper.from_array(
        np.array([-1, ANCHORS, VALUES, cells], np.int64), "layout"))
    grid = op("Reshape", [pred, "layout"], "to_anchors")
    op("Transpose", [grid], "detections", perm=[0, 1, 3, 2])

    batch = "N" if dynamic_batch else n
    graph = helper.make_graph(
        nodes, "own_detector",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, c, h, w])],
        [helper.make_tensor_value_info("detections", TensorProto.FLOAT,
                                       [batch, ANCHORS, cells, VALUES])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="hax_conn example_models")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def write_detector(path: Union[str, Path], seed: int = 0, dynamic_batch: bool = True) -> Path:
    """Write :func:`detector_model` to ``path``; the path."""
    path = Path(path)
    path.write_bytes(detector_model(seed, dynamic_batch).SerializeToString())
    return path

"""The cuda-sm torch path for imported ONNX models, where there is no torch (here, CI):
static shapes, constant folding (checked on onnxruntime: the folded model computes what the
original does), the coverage check and the refusals.

The torch module itself (onnx_torch.build_onnx_module, fp16 under CUDA graphs) is tested on
the GPU machine: test/device/runtime/test_onnx_torch.py.
"""

import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from hax_conn_core.errors import BackendError, ModelError  # noqa: E402
from hax_conn_core.runtime.backends.onnx_prepare import (TORCH_OPS, check_supported,  # noqa
                                                         prepare, refusals, unsupported_ops)
from hax_conn_core.runtime.backends.onnxrt import OnnxRunner  # noqa: E402
from test.core.graph.onnx_nets import INPUT_SHAPES, NETS  # noqa: E402

TOLERANCE = 1e-5  # folding changes no arithmetic on activations


def _input(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _same_on_ort(original, folded, feeds):
    want = OnnxRunner(original, threads=1).run(feeds)
    got = OnnxRunner(folded, threads=1).run(feeds)
    assert set(want) == set(got)
    for name in want:
        assert got[name].shape == want[name].shape
        assert np.abs(got[name] - want[name]).max() <= TOLERANCE, name


def torch_style_net():
    """What torch.onnx exports for ``x.view(x.size(0), -1)`` and ``F.interpolate(x,
    size=y.shape[2:])``: Shape -> Gather/Slice -> Unsqueeze -> Concat feeding Reshape and
    Resize, plus a Constant; everything shape-computing must fold away."""
    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32), "w")
    fc = numpy_helper.from_array(rng.normal(0, 0.3, (4 * 8 * 8, 5)).astype(np.float32), "fc")

    def const(name, values, dtype=np.int64):
        return helper.make_node("Constant", [], [name], name=name,
                                value=numpy_helper.from_array(np.array(values, dtype), name))

    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1],
                         strides=[2, 2]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        # upsample r to the input's spatial size, taken from the input's shape at run time
        helper.make_node("Shape", ["x"], ["xs"], name="shape_x"),
        const("two", [2]), const("four", [4]),
        helper.make_node("Slice", ["xs", "two", "four"], ["hw"], name="hw"),
        helper.make_node("Shape", ["r"], ["rs"], name="shape_r"),
        const("zero", [0]),
        helper.make_node("Slice", ["rs", "zero", "two"], ["nc"], name="nc"),
        helper.make_node("Concat", ["nc", "hw"], ["size"], name="size", axis=0),
        helper.make_node("Resize", ["r", "", "", "size"], ["up"], name="up", mode="linear"),
        helper.make_node("MaxPool", ["up"], ["p"], name="pool", kernel_shape=[2, 2],
                         strides=[2, 2]),
        # flatten as x.view(x.size(0), -1)
        helper.make_node("Shape", ["p"], ["ps"], name="shape_p"),
        const("idx0", 0),
        helper.make_node("Gather", ["ps", "idx0"], ["batch"], name="batch", axis=0),
        const("axes0", [0]),
        helper.make_node("Unsqueeze", ["batch", "axes0"], ["batch1"], name="batch1"),
        const("minus1", [-1]),
        helper.make_node("Concat", ["batch1", "minus1"], ["flat_shape"], name="flat_shape",
                         axis=0),
        helper.make_node("Reshape", ["p", "flat_shape"], ["flat"], name="flat"),
        helper.make_node("MatMul", ["flat", "fc"], ["y"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes, "torch_style",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])], [w, fc])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def with_node(model, node, output_shape):
    """``model`` with ``node`` appended after its output (a new graph output)."""
    work = onnx.ModelProto()
    work.CopyFrom(model)
    work.graph.node.append(node)
    del work.graph.output[:]
    work.graph.output.append(helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT,
                                                           output_shape))
    return work


@pytest.mark.parametrize("net", sorted(NETS))
def test_test_nets_are_covered_and_fold_to_the_same_outputs(net):
    model = NETS[net]()
    prepared = prepare(model)
    assert unsupported_ops(model) == []
    assert "Constant" not in prepared.ops()
    assert prepared.inputs == ("image",)
    for node in prepared.model.graph.node:  # every tensor has its static shape
        for name in node.output:
            assert all(isinstance(d, int) and d > 0 for d in prepared.shapes[name])
    _same_on_ort(model, prepared.model, {"image": _input(INPUT_SHAPES[net])})


def test_shape_computations_fold_into_constants():
    model = torch_style_net()
    prepared = prepare(model, {"x": (2, 3, 16, 16)})
    assert prepared.ops() == ["Conv", "Relu", "Resize", "MaxPool", "Reshape", "MatMul"]
    assert prepared.shapes["flat"] == (2, 256) and prepared.shapes["y"] == (2, 5)
    assert prepared.constants["flat_shape"].tolist() == [2, -1]
    assert prepared.constants["size"].tolist() == [2, 4, 16, 16]
    assert unsupported_ops(model, {"x": (2, 3, 16, 16)}) == []
    _same_on_ort(model, prepared.model, {"x": _input((2, 3, 16, 16))})
    assert len(model.graph.node) == 21  # the caller's model is left as it was


def test_a_dynamic_input_needs_its_shape():
    with pytest.raises(ModelError, match="'x' has dynamic shape.*input-shape"):
        prepare(torch_style_net())
    with pytest.raises(ModelError, match="names \\['y'\\]"):
        prepare(torch_style_net(), {"y": (1, 3, 16, 16)})
    with pytest.raises(ModelError, match="rank 4"):
        prepare(torch_style_net(), {"x": (1, 3, 16)})
    # unfoldable: the shape nodes stay and are reported as what the torch path lacks
    assert ("shape_x", "Shape") in unsupported_ops(torch_style_net())


def test_an_extracted_range_prepares_like_the_whole():
    model = onnx.shape_inference.infer_shapes(NETS["detector"]())
    # the head from the Resize on, as the frontend extracts a range (onnx.utils.Extractor
    # over the shape-inferred model)
    part = onnx.utils.Extractor(model).extract_model(["c4_relu", "c2_relu"], ["boxes"])
    prepared = prepare(part)
    assert prepared.inputs == ("c4_relu", "c2_relu")
    assert prepared.shapes["c4_relu"] == (1, 16, 8, 8)
    assert unsupported_ops(part) == []
    feeds = {"c4_relu": _input((1, 16, 8, 8), 1), "c2_relu": _input((1, 16, 16, 16), 2)}
    _same_on_ort(part, prepared.model, feeds)


def test_a_node_outside_the_torch_path_is_named_with_its_op_type():
    model = NETS["classifier"]()
    topk = helper.make_node("TopK", ["prob", "k"], ["top", "top_idx"], name="best")
    work = with_node(model, topk, (1, 3))
    work.graph.initializer.append(numpy_helper.from_array(np.array([3], np.int64), "k"))
    custom = helper.make_node("Nms", ["prob"], ["kept"], name="nms", domain="vendor.ops")
    work.graph.node.append(custom)
    assert unsupported_ops(work) == [("best", "TopK"), ("nms", "Nms")]
    with pytest.raises(BackendError) as raised:
        check_supported(work, "classifier layers 0-30 on gpu (fp16)")
    message = str(raised.value)
    assert "classifier layers 0-30 on gpu (fp16)" in message
    assert "node 'best' (TopK)" in message and "node 'nms' (Nms)" in message
    assert "vendor.ops" in message and "onnxruntime and TensorRT" in message


@pytest.mark.parametrize("attrs, why", [
    (dict(mode="cubic"), "mode 'cubic'"),
    (dict(mode="linear", coordinate_transformation_mode="tf_crop_and_resize"),
     "tf_crop_and_resize"),
    (dict(mode="nearest", antialias=1), "antialias"),
])
def test_resize_modes_outside_the_torch_path_are_refused(attrs, why):
    model = NETS["detector"]()
    for node in model.graph.node:
        if node.op_type == "Resize":
            del node.attribute[:]
            node.attribute.extend(helper.make_attribute(k, v) for k, v in attrs.items())
    assert unsupported_ops(model) == [("up", "Resize")]
    ((name, op, reason),) = refusals(prepare(model).model)
    assert why in reason


def test_build_refuses_before_needing_torch():
    """The refusal comes from the coverage check, ahead of any torch import: CI (no torch)
    gets the BackendError, not a SetupError."""
    from hax_conn_core.runtime.backends.onnx_torch import build_onnx_module

    model = with_node(NETS["classifier"](), helper.make_node(
        "Einsum", ["prob", "prob"], ["outer"], name="outer", equation="ni,nj->nij"),
        (1, 10, 10))
    with pytest.raises(BackendError, match="node 'outer' \\(Einsum\\)"):
        build_onnx_module(model, dtype="float16")


def test_the_ops_the_issue_names_are_covered():
    named = """Conv ConvTranspose BatchNormalization Relu LeakyRelu Sigmoid Tanh HardSigmoid
        HardSwish Clip Add Sub Mul Div Concat Resize Upsample Split Slice Reshape Flatten
        Transpose Squeeze Unsqueeze Softmax MaxPool AveragePool GlobalAveragePool Gemm MatMul
        LRN Dropout Identity Pad ReduceMean""".split()
    assert sorted(set(named) - set(TORCH_OPS)) == []


def test_importing_the_torch_path_loads_no_torch():
    code = ("import sys, hax_conn_core.runtime.backends.onnx_torch, "
            "hax_conn_core.runtime.backends.onnx_prepare; "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"


def test_an_engine_of_an_onnx_read_graph_with_an_unsupported_node_is_refused(tmp_path):
    """The cuda-sm hook's path (build_range_module over the frontend's extracted range):
    only the range that holds the node is refused, naming the engine, node and op type."""
    from hax_conn_core.graph.frontends.onnx import load_onnx
    from hax_conn_core.runtime.backends.base import EngineSpec
    from hax_conn_core.runtime.backends.onnx_torch import build_range_module, range_model
    from test.core.graph.onnx_nets import save

    model = with_node(NETS["classifier"](), helper.make_node(
        "TopK", ["prob", "k"], ["top", "top_idx"], name="best"), (1, 3))
    model.graph.initializer.append(numpy_helper.from_array(np.array([3], np.int64), "k"))
    graph = load_onnx(save(model, tmp_path / "classifier_topk.onnx"))
    last = len(graph.layers) - 1
    assert graph.layers[last].type == "TopK"

    def spec(first, end):
        return EngineSpec("classifier_topk", graph, {}, "onnx", first, end, "gpu", "fp16")

    with pytest.raises(BackendError) as raised:
        build_range_module(spec(0, last))
    assert str(raised.value).startswith(f"classifier_topk layers 0-{last} on gpu (fp16): ")
    assert "node 'best' (TopK)" in str(raised.value)
    assert unsupported_ops(range_model(spec(0, last - 1))) == []

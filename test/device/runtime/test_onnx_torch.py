"""The torch path for imported ONNX models (onnx_torch.py) against onnxruntime fp32.

Needs torch (skipped without it, counted as skipped). On a machine without CUDA (torch's CPU
build) it checks the module in fp32 against onnxruntime; on the GPU machine it also checks
fp16 on CUDA under a CUDA graph, and the cuda-sm backend building engines of an ONNX-read
graph. Run there with ``PYTHONPATH=. python3 -m pytest test/device/runtime/test_onnx_torch.py``.
What needs no torch is test/core/runtime/backends/test_onnx_prepare.py.

Tolerances: fp32 (TF32 off) max abs diff <= 1e-4 relative to the output's largest magnitude;
fp16 <= 2e-2 of it (the test nets' activations are O(1)).
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from hax_conn_core.errors import BackendError  # noqa: E402
from hax_conn_core.runtime.backends.onnx_prepare import TORCH_OPS  # noqa: E402
from hax_conn_core.runtime.backends.onnx_torch import (build_onnx_module,  # noqa: E402
                                                       builder_ops)
from hax_conn_core.runtime.backends.onnxrt import OnnxRunner  # noqa: E402
from test.core.graph.onnx_nets import INPUT_SHAPES, NETS  # noqa: E402

CUDA = torch.cuda.is_available()
FP32_RTOL = 1e-4
FP16_RTOL = 2e-2


@pytest.fixture(autouse=True, scope="module")
def no_tf32():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def one_node(op, shape, attrs=None, consts=(), opset=17, extra_inputs=(), outputs=1):
    """A model of one ``op`` node over input ``x`` (shape) and constant inputs ``consts``
    (arrays, or None for an omitted optional input)."""
    inits, names = [], ["x"]
    for k, value in enumerate(consts):
        if value is None:
            names.append("")
            continue
        names.append(f"c{k}")
        inits.append(numpy_helper.from_array(np.asarray(value), f"c{k}"))
    names += list(extra_inputs)
    tops = [f"y{k}" for k in range(outputs)]
    node = helper.make_node(op, names, tops, name=f"the_{op.lower()}", **(attrs or {}))
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)]
    inputs += [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
               for name in extra_inputs]
    graph = helper.make_graph([node], op, inputs,
                              [helper.make_empty_tensor_value_info(t) for t in tops], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model)


def check(model, feeds, rtol=FP32_RTOL, dtype="float32", device="cpu"):
    want = OnnxRunner(model, threads=1, optimize=False).run(feeds)
    module = build_onnx_module(model, dtype=dtype, device=device,
                               channels_last=device == "cuda")
    got = module.run(feeds)
    assert list(got) == list(want)
    for name in want:
        assert got[name].shape == want[name].shape, name
        scale = max(1.0, float(np.abs(want[name]).max()))
        error = float(np.abs(got[name] - want[name]).max())
        assert error <= rtol * scale, f"{name}: max abs diff {error:.3g} (scale {scale:.3g})"
    return module


W = rand((6, 4, 3, 3), 1)
CASES = {
    "conv asym pads, stride 2, dilation 2": ("Conv", (1, 4, 11, 9), dict(
        pads=[1, 0, 2, 1], strides=[2, 2], dilations=[2, 2]), [W, rand(6, 2)], 17),
    "conv same_upper, groups 2": ("Conv", (1, 4, 10, 9), dict(
        auto_pad="SAME_UPPER", strides=[2, 2], group=2), [rand((6, 2, 3, 3), 3)], 17),
    "conv1d": ("Conv", (1, 4, 12), dict(pads=[1, 1]), [rand((3, 4, 3), 4)], 17),
    "convtranspose stride 2 pads output_padding": ("ConvTranspose", (1, 4, 5, 6), dict(
        strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]),
        [rand((4, 3, 3, 3), 5), rand(3, 6)], 17),
    "convtranspose asym pads, groups": ("ConvTranspose", (1, 4, 5, 5), dict(
        strides=[2, 2], pads=[0, 1, 1, 0], group=2), [rand((4, 2, 4, 4), 7)], 17),
    "convtranspose output_shape": ("ConvTranspose", (1, 4, 5, 5), dict(
        strides=[3, 3], output_shape=[16, 17]), [rand((4, 2, 3, 3), 8)], 17),
    "maxpool ceil, asym pads": ("MaxPool", (1, 3, 10, 11), dict(
        kernel_shape=[3, 3], strides=[2, 2], pads=[0, 1, 1, 0], ceil_mode=1), [], 17),
    "maxpool dilated": ("MaxPool", (1, 3, 12, 12), dict(
        kernel_shape=[2, 2], dilations=[2, 2]), [], 17),
    "avgpool ceil, pads excluded": ("AveragePool", (1, 3, 10, 11), dict(
        kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1), [], 17),
    "avgpool pads included": ("AveragePool", (1, 3, 9, 9), dict(
        kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1), [],
        17),
    "lrn odd": ("LRN", (1, 7, 4, 4), dict(size=5, alpha=1e-2, beta=0.75, bias=2.0), [], 17),
    "resize nearest x2": ("Resize", (1, 3, 4, 5), dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"), [None, np.array([1, 1, 2, 2], np.float32)], 17),  # noqa: E501
    "resize nearest half_pixel x1.5 sizes": ("Resize", (1, 3, 4, 6), dict(mode="nearest"), [None, None, np.array([1, 3, 6, 9], np.int64)], 17),  # noqa: E501
    "resize nearest align_corners ceil": ("Resize", (1, 2, 5, 5), dict(mode="nearest", coordinate_transformation_mode="align_corners", nearest_mode="ceil"), [None, None, np.array([1, 2, 7, 3], np.int64)], 17),  # noqa: E501
    "resize linear half_pixel x2": ("Resize", (1, 3, 4, 5), dict(mode="linear"), [None, np.array([1, 1, 2, 2], np.float32)], 17),  # noqa: E501
    "resize linear sizes odd": ("Resize", (1, 3, 4, 5), dict(mode="linear", coordinate_transformation_mode="pytorch_half_pixel"), [None, None, np.array([1, 3, 7, 1], np.int64)], 17),  # noqa: E501
    "resize linear align_corners": ("Resize", (1, 3, 4, 5), dict(mode="linear", coordinate_transformation_mode="align_corners"), [None, None, np.array([1, 3, 9, 8], np.int64)], 17),  # noqa: E501
    "resize linear asymmetric": ("Resize", (1, 3, 4, 5), dict(mode="linear", coordinate_transformation_mode="asymmetric"), [None, np.array([1, 1, 2, 1.5], np.float32)], 17),  # noqa: E501
    "upsample nearest opset 9": ("Upsample", (1, 2, 3, 4), dict(mode="nearest"), [np.array([1, 1, 2, 3], np.float32)], 9),  # noqa: E501
    "slice negative step, axes": ("Slice", (2, 5, 6, 7), {}, [np.array([4, -1]), np.array([0, -100]), np.array([1, 3]), np.array([-1, -2])], 17),  # noqa: E501
    "slice ends past the end": ("Slice", (2, 5, 6), {}, [np.array([1]), np.array([2 ** 63 - 1]), np.array([-1])], 17),  # noqa: E501
    "split uneven": ("Split", (1, 7, 3), dict(axis=1), [np.array([2, 5])], 13),
    "pad constant": ("Pad", (1, 2, 3, 4), dict(mode="constant"), [np.array([0, 0, 1, 2, 0, 0, 2, 1]), np.array(0.5, np.float32)], 17),  # noqa: E501
    "pad reflect": ("Pad", (1, 2, 5, 6), dict(mode="reflect"), [np.array([0, 0, 2, 1, 0, 0, 1, 2])], 17),  # noqa: E501
    "pad edge": ("Pad", (1, 2, 5, 6), dict(mode="edge"), [np.array([0, 0, 2, 1, 0, 0, 1, 2])], 17),  # noqa: E501
    "reducemean opset 17": ("ReduceMean", (2, 3, 4, 5), dict(axes=[2, 3], keepdims=0), [], 17),
    "reducemean opset 18": ("ReduceMean", (2, 3, 4, 5), dict(keepdims=1), [np.array([-1])], 18),  # noqa: E501
    "softmax opset 11 coerced": ("Softmax", (2, 3, 4), dict(axis=1), [], 11),
    "softmax channels": ("Softmax", (1, 5, 3, 3), dict(axis=1), [], 17),
    "gemm transA alpha beta": ("Gemm", (6, 3), dict(transA=1, alpha=0.5, beta=2.0), [rand((6, 4), 9), rand(4, 10)], 17),  # noqa: E501
    "matmul batched": ("MatMul", (2, 3, 4), {}, [rand((4, 5), 11)], 17),
    "gather negative": ("Gather", (2, 5, 3), dict(axis=1), [np.array([[-1, 0], [2, 2]])], 17),
    "gather scalar": ("Gather", (2, 5, 3), dict(axis=2), [np.array(1)], 17),
    "hardsigmoid default": ("HardSigmoid", (2, 8), {}, [], 17),
    "hardswish": ("HardSwish", (2, 8), {}, [], 17),
    "clip min only": ("Clip", (2, 8), {}, [np.array(-0.2, np.float32)], 17),
    "clip relu6": ("Clip", (2, 8), {}, [np.array(0.0, np.float32), np.array(6.0, np.float32)], 17),  # noqa: E501
    "leakyrelu": ("LeakyRelu", (2, 8), dict(alpha=0.1), [], 17),
    "prelu": ("PRelu", (1, 3, 2, 2), {}, [rand((3, 1, 1), 12)], 17),
    "batchnorm": ("BatchNormalization", (1, 3, 4, 4), dict(epsilon=1e-3), [rand(3, 13), rand(3, 14), rand(3, 15), np.abs(rand(3, 16)) + 0.5], 17),  # noqa: E501
    "flatten axis 2": ("Flatten", (2, 3, 4, 5), dict(axis=2), [], 17),
    "unsqueeze": ("Unsqueeze", (2, 3), {}, [np.array([0, 3])], 17),
    "squeeze": ("Squeeze", (2, 1, 3, 1), {}, [np.array([1])], 17),
    "transpose": ("Transpose", (2, 3, 4), dict(perm=[2, 0, 1]), [], 17),
    "expand": ("Expand", (3, 1), {}, [np.array([2, 3, 4])], 17),
    "tile": ("Tile", (2, 3), {}, [np.array([2, 1])], 17),
    "layernorm": ("LayerNormalization", (2, 3, 8), dict(axis=-1), [rand(8, 17), rand(8, 18)], 17),  # noqa: E501
    "div by constant": ("Div", (2, 3, 4), {}, [np.abs(rand((3, 1), 19)) + 0.5], 17),
    "sub": ("Sub", (2, 3), {}, [rand(3, 20)], 17),
    "sigmoid": ("Sigmoid", (2, 3), {}, [], 17),
    "tanh": ("Tanh", (2, 3), {}, [], 17),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_matches_onnxruntime_fp32(case):
    op, shape, attrs, consts, opset = CASES[case]
    outputs = 2 if op == "Split" else 1
    model = one_node(op, shape, attrs, consts, opset, outputs=outputs)
    check(model, {"x": rand(shape, 100)})


def test_variadic_and_two_tensor_ops():
    model = one_node("Concat", (1, 2, 3), dict(axis=1), extra_inputs=["z"])
    check(model, {"x": rand((1, 2, 3)), "z": rand((1, 2, 3), 1)})
    model = one_node("Mul", (2, 3), extra_inputs=["z"])
    check(model, {"x": rand((2, 3)), "z": rand((2, 3), 2)})


@pytest.mark.parametrize("net", sorted(NETS))
def test_test_nets_whole(net):
    check(NETS[net](), {"image": rand(INPUT_SHAPES[net])})


def test_builders_and_coverage_agree():
    assert sorted(TORCH_OPS) == list(builder_ops())


def test_unsupported_node_is_refused_at_build():
    model = one_node("TopK", (2, 5), consts=[np.array([2])], outputs=2)
    with pytest.raises(BackendError, match="node 'the_topk' \\(TopK\\)"):
        build_onnx_module(model)


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize("case", sorted(CASES))
def test_op_fp16_on_cuda_channels_last(case):
    op, shape, attrs, consts, opset = CASES[case]
    model = one_node(op, shape, attrs, consts, opset, outputs=2 if op == "Split" else 1)
    check(model, {"x": rand(shape, 100)}, rtol=FP16_RTOL, dtype="float16", device="cuda")


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize("net", sorted(NETS))
def test_fp16_on_cuda_under_a_cuda_graph(net):
    x = rand(INPUT_SHAPES[net])
    model = NETS[net]()
    want = OnnxRunner(model, threads=1).run({"image": x})
    module = build_onnx_module(model, dtype="float16", channels_last=True, device="cuda")
    static = torch.from_numpy(x).to("cuda", torch.float16)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.no_grad(), torch.cuda.stream(stream):
        module(static)  # warm-up off the capturing stream
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=stream):
            outputs = module(static)
    static.copy_(torch.from_numpy(rand(INPUT_SHAPES[net], 7)).to("cuda", torch.float16))
    static.copy_(torch.from_numpy(x).to("cuda", torch.float16))
    graph.replay()
    torch.cuda.synchronize()
    for name, y in zip(module.output_names, outputs):
        error = float(np.abs(y.float().cpu().numpy() - want[name]).max())
        assert error <= FP16_RTOL * max(1.0, float(np.abs(want[name]).max())), name


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_cuda_sm_builds_engines_of_an_onnx_graph(tmp_path):
    """Part A then part B of an ONNX-read detector (a middle valid cut) on the two partitions
    equals the whole, and both equal onnxruntime fp32 (fp16 tolerance)."""
    pytest.importorskip("cuda.bindings")
    frontend = pytest.importorskip("hax_conn_core.graph.frontends.onnx")
    from hax_conn_core.graph.cuts import valid_cuts
    from hax_conn_core.runtime.backends import get_backend
    from hax_conn_core.runtime.backends.base import EngineSpec
    from test.core.graph.onnx_nets import save

    path = save(NETS["detector"](), tmp_path / "detector.onnx")
    graph = frontend.load_onnx(path)
    x = rand(INPUT_SHAPES["detector"])
    want = OnnxRunner(path, threads=1).run({"image": x})["boxes"]
    cuts = [i for i in valid_cuts(graph) if i < len(graph.layers) - 1]
    cut = cuts[len(cuts) // 2] + 1  # part B starts here
    last = len(graph.layers) - 1

    def spec(first, end, acc):
        return EngineSpec("detector", graph, {}, "onnx", first, end, acc, "fp16")

    with get_backend("cuda-sm") as backend:
        whole = backend.build(spec(0, last, "gpu"))
        a = backend.build(spec(0, cut - 1, "gpu"))
        b = backend.build(spec(cut, last, "dla"), inputs_from=a)
        frame = backend.from_host(x, "gpu")
        got_whole = backend.to_host(whole.run({"image": frame}).outputs["boxes"])
        first = a.run({"image": frame})
        got_split = backend.to_host(b.run(first.outputs, wait_for=[first.done])
                                    .outputs["boxes"])
    scale = max(1.0, float(np.abs(want).max()))
    assert np.abs(got_whole - want).max() <= FP16_RTOL * scale
    assert np.abs(got_split - got_whole).max() <= FP16_RTOL * scale


@pytest.mark.parametrize("net", sorted(NETS))
def test_ranges_of_an_onnx_read_graph(net, tmp_path):
    """What the cuda-sm hook builds (onnx_torch.build_range_module over the frontend's
    extracted range): part A then part B at every valid cut equals onnxruntime's whole."""
    frontend = pytest.importorskip("hax_conn_core.graph.frontends.onnx")
    from hax_conn_core.graph.cuts import valid_cuts
    from hax_conn_core.runtime.backends.base import EngineSpec
    from hax_conn_core.runtime.backends.onnx_torch import build_range_module
    from test.core.graph.onnx_nets import save

    path = save(NETS[net](), tmp_path / f"{net}.onnx")
    graph = frontend.load_onnx(path)
    x = rand(INPUT_SHAPES[net])
    (output,) = graph.outputs
    want = OnnxRunner(path, threads=1).run({"image": x})[output]
    last = len(graph.layers) - 1
    cuts = [i for i in valid_cuts(graph) if i < last]
    assert cuts
    for cut in cuts:
        a = build_range_module(EngineSpec(net, graph, {}, "onnx", 0, cut, "gpu"))
        b = build_range_module(EngineSpec(net, graph, {}, "onnx", cut + 1, last, "dla"))
        mid = a.run({"image": x})
        got = b.run(mid)[output]
        assert np.abs(got - want).max() <= FP32_RTOL * max(1.0, float(np.abs(want).max())), cut

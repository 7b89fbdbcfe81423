"""The torch module (CUDA backend) against onnxruntime: same weights, same Caffe semantics.

Meaningful only where torch is installed (the GPU machine); elsewhere the whole module is
skipped (``pytest.importorskip``) and counts as skipped, never as passed. Run there with
``PYTHONPATH=. python3 -m pytest test/device/runtime/test_torch_module.py`` (docs/execution.md).
Uses CUDA when available, else torch's CPU. TF32 is switched off: fp32 means fp32.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hax_conn_core.graph.cuts import cut_tensor  # noqa: E402
from hax_conn_core.graph.grouping import group_layers  # noqa: E402
from hax_conn_core.graph.prototxt import load_prototxt  # noqa: E402
from hax_conn_core.models import get_model  # noqa: E402
from hax_conn_core.runtime.backends.torch_module import build_module  # noqa: E402
from test.core.graph.test_onnx_export import (  # noqa: E402
    POOL_CASES, inception_like, layer, net, rand)
from test.device.runtime.helpers import ort, seeded as seeded_weights  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
PROB_ATOL = 1e-4
LOGIT_RTOL = 1e-4
#: DNNs compared whole and split in fp32 here (scripts/device_check_torch.py does all 12).
DNNS = ["alexnet", "googlenet", "resnet50", "mobilenet_v1"]


@pytest.fixture(autouse=True, scope="module")
def no_tf32():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def compare_small(graph, x, rtol=1e-5, atol=1e-5, **kwargs):
    weights = seeded_weights(graph)
    expected = ort(graph, weights, {"data": x})
    module = build_module(graph, weights, device=DEVICE, **kwargs)
    assert module.placement.device.type == torch.device(DEVICE).type  # weightless too
    got = module.run({"data": x})
    assert set(got) == set(expected)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=rtol, atol=atol)


@pytest.mark.parametrize("round_mode", ["CEIL", "FLOOR"])
@pytest.mark.parametrize("method", ["MAX", "AVE"])
@pytest.mark.parametrize("size,kernel,stride,pad", POOL_CASES)
def test_caffe_pooling(method, size, kernel, stride, pad, round_mode):
    shape = (1, 3) + size
    graph = net(shape, layer("pool", "Pooling", ["data"], ["pool"],
                             f"pooling_param {{ pool: {method} kernel_size: {kernel} "
                             f"stride: {stride} pad: {pad} round_mode: {round_mode} }}"))
    compare_small(graph, rand(shape))


@pytest.mark.parametrize("body", [
    "lrn_param { local_size: 5 alpha: 0.001 beta: 0.75 k: 2 }",
    "lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 norm_region: WITHIN_CHANNEL }",
])
def test_lrn(body):
    graph = net((1, 7, 6, 5), layer("lrn", "LRN", ["data"], ["lrn"], body))
    compare_small(graph, rand((1, 7, 6, 5)) * 3)


def test_mixed_layer_types_and_channels_last():
    graph = net((1, 3, 9, 9),
                layer("conv", "Convolution", ["data"], ["conv"],
                      "convolution_param { num_output: 8 kernel_size: 3 pad: 2 dilation: 2 "
                      "group: 1 }"),
                layer("bn", "BatchNorm", ["conv"], ["conv"]),
                layer("sc", "Scale", ["conv"], ["conv"], "scale_param { bias_term: true }"),
                layer("relu", "ReLU", ["conv"], ["conv"], "relu_param { negative_slope: 0.1 }"),
                layer("dw", "Convolution", ["conv"], ["dw"],
                      "convolution_param { num_output: 8 kernel_size: 3 pad: 1 group: 8 }"),
                layer("sum", "Eltwise", ["conv", "dw"], ["sum"],
                      "eltwise_param { operation: SUM coeff: 1 coeff: 0.3 }"),
                layer("max", "Eltwise", ["conv", "dw"], ["max"],
                      "eltwise_param { operation: MAX }"),
                layer("prod", "Eltwise", ["sum", "max"], ["prod"],
                      "eltwise_param { operation: PROD }"),
                layer("cat", "Concat", ["sum", "prod"], ["cat"]),
                layer("pool", "Pooling", ["cat"], ["pool"],
                      "pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 }"),
                layer("flat", "Flatten", ["pool"], ["flat"]),
                layer("fc", "InnerProduct", ["flat"], ["fc"],
                      "inner_product_param { num_output: 7 }"),
                layer("drop", "Dropout", ["fc"], ["fc"]),
                layer("prob", "Softmax", ["fc"], ["prob"]))
    for channels_last in (False, True):
        compare_small(graph, rand((1, 3, 9, 9)), rtol=1e-4, atol=1e-5,
                      channels_last=channels_last)


def test_range_with_two_tensors_crossing():
    graph = inception_like()
    weights = seeded_weights(graph)
    x = rand((1, 3, 8, 8))
    whole = ort(graph, weights, {"data": x})
    head = build_module(graph, weights, last=1, device=DEVICE)
    mid = build_module(graph, weights, first=2, last=4, device=DEVICE)
    tail = build_module(graph, weights, first=5, device=DEVICE)
    assert mid.input_names == ("stem",) and tail.input_names == ("b1", "b2_relu:0")
    y = tail.run(mid.run(head.run({"data": x})))
    np.testing.assert_allclose(y["prob"], whole["prob"], rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module", params=DNNS)
def dnn(request):
    graph = load_prototxt(get_model(request.param).prototxt)
    weights = seeded_weights(graph)
    (input_name,) = graph.inputs
    (output_name,) = graph.outputs
    logits = graph.producer(output_name).bottoms[0]
    x = np.random.default_rng(1234).standard_normal(graph.shape(input_name), dtype=np.float32)
    reference = ort(graph, weights, {input_name: x}, extra_outputs=(logits,))
    return graph, weights, input_name, output_name, logits, x, reference


def check_close(got, reference, output_name, logits, what):
    prob_diff = float(np.abs(got[output_name] - reference[output_name]).max())
    scale = float(np.abs(reference[logits]).max())
    logit_diff = float(np.abs(got[logits] - reference[logits]).max()) / scale
    assert prob_diff <= PROB_ATOL and logit_diff <= LOGIT_RTOL, \
        f"{what}: prob abs diff {prob_diff:.2e}, logit rel diff {logit_diff:.2e}"


def test_whole_dnn_fp32(dnn):
    graph, weights, input_name, output_name, logits, x, reference = dnn
    for channels_last in (False, True):
        module = build_module(graph, weights, extra_outputs=(logits,), device=DEVICE,
                              channels_last=channels_last)
        check_close(module.run({input_name: x}), reference, output_name, logits,
                    f"{graph.name} channels_last={channels_last}")


def test_split_dnn_fp32_torch_and_cross_backend(dnn):
    """Torch A -> torch B, and onnxruntime A -> torch B (a transition between backends)."""
    graph, weights, input_name, output_name, logits, x, reference = dnn
    boundaries = [group.last for group in group_layers(graph)[:-1]]
    for cut in boundaries[::3]:
        tensor = cut_tensor(graph, cut)
        part_a = build_module(graph, weights, last=cut, device=DEVICE)
        part_b = build_module(graph, weights, first=cut + 1, extra_outputs=(logits,),
                              device=DEVICE)
        assert part_a.output_names == (tensor,) and part_b.input_names == (tensor,)
        check_close(part_b.run(part_a.run({input_name: x})), reference, output_name, logits,
                    f"{graph.name} torch A, torch B at cut {cut}")
        from_ort = ort(graph, weights, {input_name: x}, last=cut)
        check_close(part_b.run(from_ort), reference, output_name, logits,
                    f"{graph.name} onnxruntime A, torch B at cut {cut}")


def test_whole_dnn_fp16_is_finite_and_close(dnn):
    graph, weights, input_name, output_name, logits, x, reference = dnn
    module = build_module(graph, weights, extra_outputs=(logits,), dtype="float16",
                          device=DEVICE)
    got = module.run({input_name: x})
    assert np.all(np.isfinite(got[logits]))
    scale = float(np.abs(reference[logits]).max())
    # fp16 keeps ~3 decimal digits; errors add up over the layers.
    assert float(np.abs(got[logits] - reference[logits]).max()) / scale < 0.05

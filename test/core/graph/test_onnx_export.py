"""ONNX export: each Caffe layer type against a numpy reference of Caffe's semantics.

The references below follow Caffe's layer definitions (pooling_layer.cpp's ceil rounding,
clip rule and AVE divisor; lrn_layer.cpp's two regions; BatchNorm's scale factor) written
independently of the exporter; a few pooling cases are computed by hand.
"""

import dataclasses

import numpy as np
import pytest

from hax_conn_core.errors import BackendError, ModelError, SetupError
from hax_conn_core.graph.model import Graph
from hax_conn_core.graph.onnx_export import IR_VERSION, OPSET, export, layer_range
from hax_conn_core.runtime.backends.onnxrt import OnnxRunner
from hax_conn_core.graph.prototxt import parse_prototxt
from hax_conn_core.graph.subgraph import subgraph
from hax_conn_core.graph.weights import seeded_weights

RTOL, ATOL = 1e-5, 1e-5


def net(shape, *layers):
    dims = " ".join(f"dim: {d}" for d in shape)
    text = (f'layer {{ name: "data" type: "Input" top: "data" '
            f'input_param {{ shape {{ {dims} }} }} }}\n') + "".join(layers)
    return parse_prototxt(text, name="t")


def layer(name, kind, bottoms, tops, body=""):
    b = " ".join(f'bottom: "{x}"' for x in bottoms)
    t = " ".join(f'top: "{x}"' for x in tops)
    return f'layer {{ name: "{name}" type: "{kind}" {b} {t} {body} }}\n'


def run(graph, x, weights=None, **kwargs):
    model = export(graph, weights if weights is not None else seeded_weights(graph), **kwargs)
    return model, OnnxRunner(model).run({"data": x})


def rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# --- numpy references of Caffe's layers -------------------------------------------------------

def caffe_pooled_size(size, kernel, stride, pad, any_pad, ceil=True):
    rounding = np.ceil if ceil else np.floor
    out = int(rounding((size + 2 * pad - kernel) / stride)) + 1
    if any_pad and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def ref_pool(x, method, kernel, stride, pad, ceil=True):
    n, c, h, w = x.shape
    any_pad = pad[0] > 0 or pad[1] > 0
    oh = caffe_pooled_size(h, kernel[0], stride[0], pad[0], any_pad, ceil)
    ow = caffe_pooled_size(w, kernel[1], stride[1], pad[1], any_pad, ceil)
    y = np.zeros((n, c, oh, ow), np.float64)
    for i in range(oh):
        for j in range(ow):
            hs, ws = i * stride[0] - pad[0], j * stride[1] - pad[1]
            if method == "MAX":
                he, we = min(hs + kernel[0], h), min(ws + kernel[1], w)
                hs, ws = max(hs, 0), max(ws, 0)
                y[:, :, i, j] = x[:, :, hs:he, ws:we].max(axis=(2, 3))
            else:
                he, we = min(hs + kernel[0], h + pad[0]), min(ws + kernel[1], w + pad[1])
                size = (he - hs) * (we - ws)
                hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
                y[:, :, i, j] = x[:, :, hs:he, ws:we].sum(axis=(2, 3)) / size
    return y


def ref_conv(x, weight, bias, stride, pad, dilation, group):
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    oh = (h + 2 * pad[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + 2 * pad[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.zeros((n, o, oh, ow))
    per_group = o // group
    for out_c in range(o):
        g = out_c // per_group
        for i in range(oh):
            for j in range(ow):
                patch = xp[:, g * cg:(g + 1) * cg,
                           i * stride[0]:i * stride[0] + dilation[0] * (kh - 1) + 1:dilation[0],
                           j * stride[1]:j * stride[1] + dilation[1] * (kw - 1) + 1:dilation[1]]
                y[:, out_c, i, j] = (patch * weight[out_c]).sum(axis=(1, 2, 3))
    return y + (0 if bias is None else bias.reshape(1, -1, 1, 1))


def ref_lrn_across(x, size, alpha, beta, k):
    c = x.shape[1]
    pre = (size - 1) // 2
    y = np.empty(x.shape)
    for ch in range(c):
        lo, hi = max(0, ch - pre), min(c, ch - pre + size)
        scale = k + alpha / size * (x[:, lo:hi].astype(np.float64) ** 2).sum(axis=1)
        y[:, ch] = x[:, ch] / scale ** beta
    return y


def ref_lrn_within(x, size, alpha, beta):
    pad = (size - 1) // 2
    mean = ref_pool(x.astype(np.float64) ** 2, "AVE", (size, size), (1, 1), (pad, pad))
    return x * (1 + alpha * mean) ** -beta


# --- pooling ---------------------------------------------------------------------------------

POOL_CASES = [  # (input H, W), kernel, stride, pad
    ((3, 3), 2, 2, 1),    # clip rule drops a window that would start in the padding
    ((4, 4), 3, 2, 1),    # ceil overhang beyond in + pad
    ((6, 7), 3, 2, 0),    # ceil without padding: last window clipped
    ((13, 13), 3, 2, 0),  # AlexNet / GoogLeNet shape
    ((112, 112), 3, 2, 1),
    ((5, 9), 2, 3, 1),    # stride > kernel
    ((8, 8), 5, 1, 2),    # stride 1, "same"
    ((7, 7), 7, 1, 0),    # a window over the whole input
]


@pytest.mark.parametrize("method", ["MAX", "AVE"])
@pytest.mark.parametrize("size,kernel,stride,pad", POOL_CASES)
@pytest.mark.parametrize("channels,round_mode,ceil",
                         [(3, "", True), (2, " round_mode: FLOOR", False)], ids=["ceil", "floor"])
def test_pooling_matches_caffe(method, size, kernel, stride, pad, channels, round_mode, ceil):
    # Caffe rounds the output size up by default; round_mode FLOOR rounds it down.
    shape = (1, channels) + size
    graph = net(shape, layer("pool", "Pooling", ["data"], ["pool"],
                             f"pooling_param {{ pool: {method} kernel_size: {kernel} "
                             f"stride: {stride} pad: {pad}{round_mode} }}"))
    x = rand(shape)
    _, y = run(graph, x)
    expected = ref_pool(x, method, (kernel, kernel), (stride, stride), (pad, pad), ceil=ceil)
    assert y["pool"].shape == expected.shape == graph.shape("pool")
    np.testing.assert_allclose(y["pool"], expected, rtol=RTOL, atol=ATOL)


def test_pooling_rectangular_kernel_and_pads():
    graph = net((1, 2, 9, 11), layer("pool", "Pooling", ["data"], ["pool"],
                                     "pooling_param { pool: AVE kernel_h: 3 kernel_w: 2 "
                                     "stride_h: 2 stride_w: 3 pad_h: 1 pad_w: 0 }"))
    x = rand((1, 2, 9, 11))
    _, y = run(graph, x)
    np.testing.assert_allclose(y["pool"], ref_pool(x, "AVE", (3, 2), (2, 3), (1, 0)),
                               rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("method", ["MAX", "AVE"])
def test_pooling_clip_rule_applies_to_an_unpadded_axis_when_the_other_is_padded(method):
    # Caffe's pooling_layer.cpp clips both axes when pad_h || pad_w. Width: 4, kernel 1,
    # stride 2, pad 0 -> ceil(3 / 2) + 1 = 3, and (3 - 1) * 2 = 4 >= 4 + 0: clipped to 2.
    graph = net((1, 2, 9, 4), layer("pool", "Pooling", ["data"], ["pool"],
                                    f"pooling_param {{ pool: {method} kernel_h: 3 kernel_w: 1 "
                                    "stride_h: 2 stride_w: 2 pad_h: 1 pad_w: 0 }"))
    assert graph.shape("pool") == (1, 2, 5, 2)
    x = rand((1, 2, 9, 4))
    _, y = run(graph, x)
    np.testing.assert_allclose(y["pool"], ref_pool(x, method, (3, 1), (2, 2), (1, 0)),
                               rtol=RTOL, atol=ATOL)


def test_ave_pooling_divisor_by_hand():
    """Ones in; Caffe's divisor counts the pad zone, not the ceil overhang (hand-computed)."""
    graph = net((1, 1, 3, 3), layer("pool", "Pooling", ["data"], ["pool"],
                                    "pooling_param { pool: AVE kernel_size: 2 stride: 2 "
                                    "pad: 1 }"))
    _, y = run(graph, np.ones((1, 1, 3, 3), np.float32))
    # out = ceil((3 + 2 - 2) / 2) + 1 = 3, minus the window starting at 4 >= 3 + 1: 2.
    np.testing.assert_allclose(y["pool"][0, 0], [[0.25, 0.5], [0.5, 1.0]], rtol=1e-6)
    graph = net((1, 1, 4, 4), layer("pool", "Pooling", ["data"], ["pool"],
                                    "pooling_param { pool: AVE kernel_size: 3 stride: 2 "
                                    "pad: 1 }"))
    _, y = run(graph, np.ones((1, 1, 4, 4), np.float32))
    # Windows [-1, 2), [1, 4), [3, 6) clipped to in + pad = 5: divisors 3, 3, 2; valid 2, 3, 1.
    row = np.array([2 / 3, 3 / 3, 1 / 2])
    np.testing.assert_allclose(y["pool"][0, 0], np.outer(row, row), rtol=1e-6)


def test_max_pooling_by_hand():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4) - 20  # all negative
    graph = net((1, 1, 4, 4), layer("pool", "Pooling", ["data"], ["pool"],
                                    "pooling_param { pool: MAX kernel_size: 3 stride: 2 }"))
    _, y = run(graph, x)
    # out = ceil((4 - 3) / 2) + 1 = 2: windows rows/cols [0, 3) and [2, 4) (clipped).
    np.testing.assert_array_equal(y["pool"][0, 0], [[-10, -9], [-6, -5]])


@pytest.mark.parametrize("method", ["MAX", "AVE"])
def test_global_pooling(method):
    graph = net((1, 4, 5, 6), layer("pool", "Pooling", ["data"], ["pool"],
                                    f"pooling_param {{ pool: {method} global_pooling: true }}"))
    x = rand((1, 4, 5, 6))
    _, y = run(graph, x)
    reduce = np.max if method == "MAX" else np.mean
    np.testing.assert_allclose(y["pool"], reduce(x, axis=(2, 3), keepdims=True), rtol=RTOL,
                               atol=ATOL)


# --- other layer types ------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    "num_output: 6 kernel_size: 3 stride: 2 pad: 1",
    "num_output: 6 kernel_size: 3 pad: 2 dilation: 2",
    "num_output: 6 kernel_size: 3 pad: 1 group: 2 bias_term: false",
    "num_output: 4 kernel_h: 1 kernel_w: 3 pad_w: 1 group: 4",
])
def test_convolution(body):
    graph = net((1, 4, 7, 8), layer("conv", "Convolution", ["data"], ["conv"],
                                    f"convolution_param {{ {body} }}"))
    x = rand((1, 4, 7, 8))
    weights = seeded_weights(graph, seed=3)
    _, y = run(graph, x, weights)
    p = graph.layer("conv").params
    blobs = weights["conv"]
    expected = ref_conv(x, blobs[0], blobs[1] if len(blobs) > 1 else None, p.stride, p.pad,
                        p.dilation, p.group)
    assert y["conv"].shape == expected.shape == graph.shape("conv")
    np.testing.assert_allclose(y["conv"], expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("size,alpha,beta,k", [(5, 1e-4, 0.75, 1.0), (3, 0.5, 0.9, 2.0)])
def test_lrn_across_channels(size, alpha, beta, k):
    graph = net((1, 7, 4, 4), layer("lrn", "LRN", ["data"], ["lrn"],
                                    f"lrn_param {{ local_size: {size} alpha: {alpha} "
                                    f"beta: {beta} k: {k} }}"))
    x = rand((1, 7, 4, 4)) * 3
    _, y = run(graph, x)
    np.testing.assert_allclose(y["lrn"], ref_lrn_across(x, size, alpha, beta, k), rtol=RTOL,
                               atol=ATOL)


def test_lrn_within_channel():
    graph = net((1, 3, 6, 5), layer("lrn", "LRN", ["data"], ["lrn"],
                                    "lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 k: 5 "
                                    "norm_region: WITHIN_CHANNEL }"))
    x = rand((1, 3, 6, 5)) * 2
    _, y = run(graph, x)
    np.testing.assert_allclose(y["lrn"], ref_lrn_within(x, 3, 0.5, 0.75), rtol=RTOL,
                               atol=ATOL)


def test_lrn_even_size_is_refused():
    """The reader refuses it already; a Graph built directly meets the exporter's check."""
    graph = net((1, 3, 4, 4), layer("lrn", "LRN", ["data"], ["lrn"],
                                    "lrn_param { local_size: 3 }"))
    lrn = graph.layer("lrn")
    even = dataclasses.replace(lrn, params=dataclasses.replace(lrn.params, local_size=4))
    graph = Graph(graph.name, (graph.layers[0], even), graph.tensors, graph.inputs,
                  graph.outputs)
    with pytest.raises(ModelError, match=r"'lrn' \(index 1.*local_size 4.*odd"):
        export(graph)


def test_batchnorm_and_scale_after_inner_product_on_two_axes():
    # Caffe accepts BatchNorm on the (N, C) output of an InnerProduct (channels = axis 1).
    graph = net((2, 3, 2, 2),
                layer("fc", "InnerProduct", ["data"], ["fc"], "inner_product_param { "
                      "num_output: 4 }"),
                layer("bn", "BatchNorm", ["fc"], ["fc"], "batch_norm_param { eps: 0.001 }"),
                layer("sc", "Scale", ["fc"], ["fc"], "scale_param { bias_term: true }"))
    assert graph.shape(graph.outputs[0]) == (2, 4)
    w, b = rand((4, 12), 1), rand(4, 2)
    mean, var, gamma, beta = rand(4, 3), np.abs(rand(4, 4)) + 0.5, rand(4, 5), rand(4, 6)
    weights = {"fc": [w, b], "bn": [mean, var, np.array([1.0], np.float32)], "sc": [gamma, beta]}
    x = rand((2, 3, 2, 2), 7)
    _, y = run(graph, x, weights)
    fc = x.reshape(2, 12).astype(np.float64) @ w.T + b
    expected = (fc - mean) / np.sqrt(var + 0.001) * gamma + beta
    np.testing.assert_allclose(y[graph.outputs[0]], expected, rtol=RTOL, atol=ATOL)


def test_batchnorm_scale_relu_with_caffe_scale_factor():
    graph = net((1, 3, 4, 5),
                layer("bn", "BatchNorm", ["data"], ["data"], "batch_norm_param { eps: 0.001 }"),
                layer("sc", "Scale", ["data"], ["data"], "scale_param { bias_term: true }"),
                layer("relu", "ReLU", ["data"], ["data"], "relu_param { negative_slope: 0.1 }"))
    factor = 7.5
    mean, var = rand(3, 1), np.abs(rand(3, 2)) + 0.5
    gamma, beta = rand(3, 3), rand(3, 4)
    weights = {"bn": [mean * factor, var * factor, np.array([factor], np.float32)],
               "sc": [gamma, beta]}
    x = rand((1, 3, 4, 5), 5)
    _, y = run(graph, x, weights)
    c = (1, 3, 1, 1)
    z = (x - mean.reshape(c)) / np.sqrt(var.reshape(c) + 0.001) * gamma.reshape(c) + \
        beta.reshape(c)
    (out,) = graph.outputs
    np.testing.assert_allclose(y[out], np.where(z > 0, z, 0.1 * z), rtol=RTOL, atol=ATOL)


def test_batchnorm_zero_scale_factor_means_zero_statistics():
    graph = net((1, 2, 3, 3), layer("bn", "BatchNorm", ["data"], ["bn"]))
    weights = {"bn": [np.ones(2, np.float32), np.ones(2, np.float32),
                      np.zeros(1, np.float32)]}
    x = rand((1, 2, 3, 3))
    _, y = run(graph, x, weights)
    np.testing.assert_allclose(y["bn"], x / np.sqrt(1e-5), rtol=RTOL)


def test_eltwise_concat_inner_product_softmax():
    graph = net((1, 2, 3, 3),
                layer("a", "Convolution", ["data"], ["a"],
                      "convolution_param { num_output: 2 kernel_size: 1 }"),
                layer("sum", "Eltwise", ["data", "a"], ["sum"],
                      "eltwise_param { operation: SUM coeff: 0.5 coeff: -2 }"),
                layer("prod", "Eltwise", ["data", "a", "sum"], ["prod"],
                      "eltwise_param { operation: PROD }"),
                layer("max", "Eltwise", ["data", "a"], ["max"],
                      "eltwise_param { operation: MAX }"),
                layer("cat", "Concat", ["sum", "prod", "max"], ["cat"]),
                layer("drop", "Dropout", ["cat"], ["cat"]),
                layer("fc", "InnerProduct", ["cat"], ["fc"],
                      "inner_product_param { num_output: 5 }"),
                layer("prob", "Softmax", ["fc"], ["prob"]))
    weights = seeded_weights(graph, seed=1)
    x = rand((1, 2, 3, 3))
    _, y = run(graph, x, weights, extra_outputs=("fc",))
    a = np.einsum("oc,nchw->nohw", weights["a"][0][:, :, 0, 0], x) + \
        weights["a"][1].reshape(1, -1, 1, 1)
    total = 0.5 * x - 2 * a
    cat = np.concatenate([total, x * a * total, np.maximum(x, a)], axis=1)
    fc = cat.reshape(1, -1) @ weights["fc"][0].T + weights["fc"][1]
    np.testing.assert_allclose(y["fc"], fc, rtol=1e-4, atol=1e-4)
    prob = np.exp(fc - fc.max()) / np.exp(fc - fc.max()).sum()
    np.testing.assert_allclose(y["prob"], prob, rtol=1e-4, atol=1e-6)


def test_flatten_and_inner_product_axis():
    graph = net((2, 3, 4, 5),
                layer("flat", "Flatten", ["data"], ["flat"], "flatten_param { axis: 2 }"),
                layer("fc", "InnerProduct", ["flat"], ["fc"],
                      "inner_product_param { num_output: 6 axis: 2 }"))
    weights = seeded_weights(graph)
    x = rand((2, 3, 4, 5))
    _, y = run(graph, x, weights)
    assert graph.shape("fc") == (2, 3, 6)
    expected = x.reshape(2, 3, 20) @ weights["fc"][0].T + weights["fc"][1]
    np.testing.assert_allclose(y["fc"], expected, rtol=1e-4, atol=1e-4)


# --- the model, ranges and checks -------------------------------------------------------------

def inception_like():
    return net((1, 3, 8, 8),
               layer("stem", "Convolution", ["data"], ["stem"],
                     "convolution_param { num_output: 4 kernel_size: 3 pad: 1 }"),
               layer("b1", "Convolution", ["stem"], ["b1"],
                     "convolution_param { num_output: 2 kernel_size: 1 }"),
               layer("b2", "Convolution", ["stem"], ["b2"],
                     "convolution_param { num_output: 3 kernel_size: 3 pad: 1 }"),
               layer("b2_relu", "ReLU", ["b2"], ["b2"]),
               layer("cat", "Concat", ["b1", "b2"], ["cat"]),
               layer("pool", "Pooling", ["cat"], ["pool"],
                     "pooling_param { pool: AVE global_pooling: true }"),
               layer("fc", "InnerProduct", ["pool"], ["fc"],
                     "inner_product_param { num_output: 3 }"),
               layer("prob", "Softmax", ["fc"], ["prob"]))


def test_model_is_opset_17_and_passes_the_checker():
    model = export(inception_like())
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [OPSET]
    assert OPSET >= 17 and model.ir_version == IR_VERSION
    assert [i.name for i in model.graph.input] == ["data"]
    assert [o.name for o in model.graph.output] == ["prob"]
    names = {init.name for init in model.graph.initializer}
    assert {"stem.weight", "stem.bias", "fc.weight", "fc.bias"} <= names


def test_range_with_two_tensors_crossing_each_way():
    graph = inception_like()
    x = rand((1, 3, 8, 8))
    weights = seeded_weights(graph)
    _, whole = run(graph, x, weights)
    branches = layer_range(graph, 2, 4)  # b1, b2 and its ReLU: inside the module
    assert branches.inputs == ("stem",)
    assert branches.outputs == ("b1", "b2_relu:0")
    head = export(graph, weights, last=1)
    mid = export(graph, weights, first=2, last=4)
    tail = export(graph, weights, first=5)
    assert [i.name for i in tail.graph.input] == ["b1", "b2_relu:0"]
    stem = OnnxRunner(head).run({"data": x})
    y = OnnxRunner(tail).run(OnnxRunner(mid).run(stem))
    np.testing.assert_array_equal(y["prob"], whole["prob"])


def wide_net():
    return net((1, 3, 8, 8), layer("conv", "Convolution", ["data"], ["conv"],
                                   "convolution_param { num_output: 32 kernel_size: 3 }"),
               layer("fc", "InnerProduct", ["conv"], ["fc"],
                     "inner_product_param { num_output: 10 }"),
               layer("prob", "Softmax", ["fc"], ["prob"]))


def test_external_weights_give_the_same_output():
    graph = wide_net()
    x = rand((1, 3, 8, 8))
    weights = seeded_weights(graph)
    _, embedded = run(graph, x, weights)
    external = {}
    model = export(graph, weights, external=external)
    assert {"conv.weight", "fc.weight"} <= set(external)
    assert model.ByteSize() < sum(a.nbytes for a in external.values())
    y = OnnxRunner(model, external=external).run({"data": x})
    np.testing.assert_array_equal(y["prob"], embedded["prob"])


@pytest.mark.parametrize("first,last,message", [
    (5, 2, r"range 5\.\.2 is not within 0\.\.8"),
    (0, 9, r"range 0\.\.9"),
    (0, 0, r"only Input layers"),
])
def test_bad_ranges(first, last, message):
    with pytest.raises(ModelError, match=message):
        export(inception_like(), first=first, last=last)


def test_extra_output_must_be_produced_in_the_range():
    with pytest.raises(ModelError, match=r"tensor 'fc' is not produced by layers 1\.\.3"):
        export(inception_like(), first=1, last=3, extra_outputs=("fc",))


def test_missing_or_misshapen_weights_are_reported_with_the_layer():
    graph = inception_like()
    weights = seeded_weights(graph)
    del weights["b2"]
    with pytest.raises(ModelError, match=r"no weights for layer 'b2' \(index 3"):
        export(graph, weights)
    weights = seeded_weights(graph)
    weights["fc"][0] = np.zeros((5, 3), np.float32)  # transposed: same count, wrong shape
    with pytest.raises(ModelError, match=r"'fc' \(index 7.*blob 0 has shape \(5, 3\); "
                                         r"expected \(3, 5\)"):
        export(graph, weights)
    weights["fc"][0] = np.zeros((1, 1, 3, 5), np.float32)  # legacy 4-D caffemodel form
    export(graph, weights)


def test_subgraph_with_the_whole_weights_is_the_same_part():
    graph = inception_like()
    weights = seeded_weights(graph)
    x = rand((1, 3, 8, 8))
    stem = OnnxRunner(export(graph, weights, last=1)).run({"data": x})
    as_range = OnnxRunner(export(graph, weights, first=5)).run(
        OnnxRunner(export(graph, weights, first=2, last=4)).run(stem))
    part = subgraph(graph, 2, len(graph.layers) - 1)
    assert part.inputs == ("stem",)
    as_subgraph = OnnxRunner(export(part, weights)).run(stem)
    np.testing.assert_array_equal(as_subgraph["prob"], as_range["prob"])


def test_runner_checks_inputs_and_reports_failures(monkeypatch):
    graph = inception_like()
    runner = OnnxRunner(export(graph), threads=1)
    assert runner.inputs == {"data": (1, 3, 8, 8)} and runner.outputs == ("prob",)
    with pytest.raises(BackendError, match=r"inputs are \['data'\]; missing \['data'\], "
                                           r"unknown \['x'\]"):
        runner.run({"x": rand((1, 3, 8, 8))})
    with pytest.raises(BackendError, match=r"input 'data' has shape \(1, 3, 4, 4\); "
                                           r"expected \(1, 3, 8, 8\)"):
        runner.run({"data": rand((1, 3, 4, 4))})
    with pytest.raises(BackendError, match="onnxruntime could not load the model"):
        OnnxRunner(b"not a model")
    external = {}
    model = export(wide_net(), external=external)
    assert external
    with pytest.raises(BackendError, match="could not load"):
        OnnxRunner(model)  # the external weights are not given
    monkeypatch.setenv("HAX_CONN_ORT_THREADS", "zero")
    with pytest.raises(SetupError, match=r"HAX_CONN_ORT_THREADS='zero': expected a positive"):
        OnnxRunner(export(graph))

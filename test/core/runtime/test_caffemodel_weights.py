"""Real Caffe weights through the runtime: a small network written as a .caffemodel by our own
writer, loaded back and run split over both accelerators on onnxruntime, equals an
independent numpy computation of that network; every result names the weights it ran with."""

import numpy as np
import pytest

from hax_conn_core.errors import ModelError
from hax_conn_core.graph.caffemodel import write_caffemodel
from hax_conn_core.graph.prototxt import parse_prototxt
from hax_conn_core.runtime.backends.onnxrt import OnnxRuntimeBackend
from hax_conn_core.runtime.models import model_with_weights
from hax_conn_core.runtime.session import Runtime
from hax_conn_core.schedule import Schedule
from test.core.graph import nets
from test.core.runtime.helpers import profile_for

#: data (1,3,8,8) -> conv 3x3 pad 1 (5) -> relu -> max pool 2/2 -> conv 1x1 (6, no bias)
#: -> relu -> average pool 2/2 -> inner product (7) -> softmax
NET = (nets.input_layer() +
       nets.conv("conv1", "data", num_output=5) + nets.relu("relu1", "conv1") +
       nets.layer("pool1", "Pooling", ["conv1"], ["pool1"],
                  "pooling_param { pool: MAX kernel_size: 2 stride: 2 }") +
       nets.conv("conv2", "pool1", num_output=6, kernel=1, pad=0, extra="bias_term: false ") +
       nets.relu("relu2", "conv2") +
       nets.layer("pool2", "Pooling", ["conv2"], ["pool2"],
                  "pooling_param { pool: AVE kernel_size: 2 stride: 2 }") +
       nets.layer("fc", "InnerProduct", ["pool2"], ["fc"],
                  "inner_product_param { num_output: 7 }") +
       nets.layer("prob", "Softmax", ["fc"], ["prob"]))


def _weights(seed=0):
    rng = np.random.default_rng(seed)

    def normal(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    return {"conv1": [normal(5, 3, 3, 3) * 0.5, normal(5) * 0.1],
            "conv2": [normal(6, 5, 1, 1) * 0.5],
            "fc": [normal(7, 6 * 2 * 2), normal(7) * 0.1]}


# --- the independent reference: plain numpy, straight from Caffe's definitions -------------
def _conv(x, w, b, pad):
    n, c, h, width = x.shape
    o, _, kh, kw = w.shape
    padded = np.zeros((n, c, h + 2 * pad, width + 2 * pad), np.float64)
    padded[:, :, pad:pad + h, pad:pad + width] = x
    out_h, out_w = h + 2 * pad - kh + 1, width + 2 * pad - kw + 1
    out = np.zeros((n, o, out_h, out_w), np.float64)
    for i in range(out_h):
        for j in range(out_w):
            window = padded[:, :, i:i + kh, j:j + kw]  # n, c, kh, kw
            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3]))
    return out + (0 if b is None else b.reshape(1, o, 1, 1))


def _pool(x, reduce):
    n, c, h, w = x.shape  # 2x2, stride 2, even sizes: no partial windows
    return reduce(x.reshape(n, c, h // 2, 2, w // 2, 2), axis=(3, 5))


def reference(x, weights):
    y = np.maximum(_conv(x, *weights["conv1"], pad=1), 0)
    y = _pool(y, np.max)
    y = np.maximum(_conv(y, weights["conv2"][0], None, pad=0), 0)
    y = _pool(y, np.mean)
    fc_w, fc_b = weights["fc"]
    logits = y.reshape(1, -1) @ fc_w.T.astype(np.float64) + fc_b
    e = np.exp(logits - logits.max())
    return e / e.sum()


def _run(model, frames):
    profile = profile_for({model.name: model}, target_groups=3)
    groups = len(profile.dnns[model.name].groups)
    assert groups >= 2, "the net should split into several groups"
    accs = tuple("gpu" if g % 2 == 0 else "dla" for g in range(groups))
    schedule = Schedule(objective="latency", assignments={model.name: accs})
    with OnnxRuntimeBackend() as backend, Runtime(backend, profile, schedule,
                                                  {model.name: model}) as runtime:
        return runtime.run([{model.name: frame} for frame in frames])


def test_a_written_caffemodel_runs_equal_to_numpy_and_results_name_it(tmp_path):
    graph = parse_prototxt(NET, name="tiny")
    weights = _weights()
    path = tmp_path / "tiny.caffemodel"
    write_caffemodel(path, weights, graph)
    model = model_with_weights("tiny", graph, weights=path)
    assert model.weights_id.startswith("file:tiny.caffemodel:")
    rng = np.random.default_rng(7)
    frames = [rng.standard_normal((1, 3, 8, 8)).astype(np.float32) for _ in range(3)]
    results = _run(model, frames)
    for frame, result in zip(frames, results):
        got = result.results["tiny"]
        assert got.ok, got.error
        assert got.weights == model.weights_id
        expected = reference(frame.astype(np.float64), weights)
        np.testing.assert_allclose(got.outputs["prob"].reshape(1, -1), expected, atol=1e-5,
                                   rtol=1e-4)
    # The network is not trivial: the frames give different distributions.
    assert np.abs(results[0].results["tiny"].outputs["prob"]
                  - results[1].results["tiny"].outputs["prob"]).max() > 1e-3


def test_seeded_weights_only_where_no_file_is_given(tmp_path):
    graph = parse_prototxt(NET, name="tiny")
    seeded = model_with_weights("tiny", graph, seed=3)
    assert seeded.weights_id == "seeded:3"
    path = tmp_path / "tiny.caffemodel"
    write_caffemodel(path, _weights(), graph)
    loaded = model_with_weights("tiny", graph, seed=3, weights=path)
    np.testing.assert_array_equal(loaded.weights["conv1"][0], _weights()["conv1"][0])
    result = _run(seeded, [np.zeros((1, 3, 8, 8), np.float32)])[0].results["tiny"]
    assert result.ok and result.weights == "seeded:3"


def test_a_caffemodel_missing_a_layer_is_refused(tmp_path):
    graph = parse_prototxt(NET, name="tiny")
    weights = _weights()
    del weights["conv2"]
    path = tmp_path / "partial.caffemodel"
    write_caffemodel(path, weights, graph)
    with pytest.raises(ModelError, match=r"no weights for .*conv2"):
        model_with_weights("tiny", graph, weights=path)

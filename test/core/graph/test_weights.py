"""Seeded weights (determinism, He scale, BatchNorm calibration) and loading weights back."""

import numpy as np
import pytest

from hax_conn_core.errors import ModelError
from hax_conn_core.graph.caffe_schema import message_class
from hax_conn_core.graph.onnx_export import export
from hax_conn_core.runtime.backends.onnxrt import OnnxRunner, run_onnx
from hax_conn_core.graph.prototxt import parse_prototxt
from hax_conn_core.graph.weights import (
    CAFFE_BN_SCALE_FACTOR, batchnorm_statistics, calibration_inputs, load_weights,
    seeded_weights)


def layer(name, kind, bottoms, tops, body=""):
    b = " ".join(f'bottom: "{x}"' for x in bottoms)
    t = " ".join(f'top: "{x}"' for x in tops)
    return f'layer {{ name: "{name}" type: "{kind}" {b} {t} {body} }}\n'


def bn_net(channels=64, extra_conv=""):
    text = ('layer { name: "data" type: "Input" top: "data" '
            'input_param { shape { dim: 1 dim: 3 dim: 16 dim: 16 } } }\n' + extra_conv +
            layer("conv1", "Convolution", ["data"], ["conv1"],
                  f"convolution_param {{ num_output: {channels} kernel_size: 3 pad: 1 }}") +
            layer("bn1", "BatchNorm", ["conv1"], ["conv1"]) +
            layer("sc1", "Scale", ["conv1"], ["conv1"], "scale_param { bias_term: true }") +
            layer("relu1", "ReLU", ["conv1"], ["conv1"]) +
            layer("pool", "Pooling", ["conv1"], ["pool"],
                  "pooling_param { pool: AVE global_pooling: true }") +
            layer("pool_bn", "BatchNorm", ["pool"], ["pool_bn"]) +
            layer("fc", "InnerProduct", ["pool_bn"], ["fc"],
                  "inner_product_param { num_output: 10 }") +
            layer("prob", "Softmax", ["fc"], ["prob"]))
    return parse_prototxt(text, name="bn_net")


def test_same_seed_same_weights_other_seed_other_weights():
    graph = bn_net()
    first, again = seeded_weights(graph, run=run_onnx), seeded_weights(graph, run=run_onnx)
    other = seeded_weights(graph, 1, run=run_onnx)
    for name, blobs in first.items():
        for a, b in zip(blobs, again[name]):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first["conv1"][0], other["conv1"][0])


def test_weights_are_keyed_by_layer_name_not_position():
    """A layer keeps its weights when other layers come before it (a part vs the whole)."""
    alone = bn_net()
    shifted = bn_net(extra_conv=layer("other", "Convolution", ["data"], ["other"],
                                      "convolution_param { num_output: 2 kernel_size: 1 }"))
    a, b = seeded_weights(alone), seeded_weights(shifted)
    np.testing.assert_array_equal(a["conv1"][0], b["conv1"][0])
    np.testing.assert_array_equal(a["sc1"][1], b["sc1"][1])


def test_he_initialisation_scale():
    graph = bn_net(channels=512)
    weight = seeded_weights(graph)["conv1"][0]
    fan_in = 3 * 3 * 3
    assert weight.shape == (512, 3, 3, 3) and weight.dtype == np.float32
    assert abs(weight.std() / np.sqrt(2.0 / fan_in) - 1) < 0.03
    assert abs(weight.mean()) < 0.01


def test_batchnorm_calibration_normalises_the_calibration_input():
    graph = bn_net()
    weights = seeded_weights(graph, run=run_onnx)
    blobs = weights["bn1"]
    assert blobs[2][0] == np.float32(CAFFE_BN_SCALE_FACTOR)
    mean, var = batchnorm_statistics(blobs)
    assert np.all(var > 0)
    # Run up to bn1 on the calibration input: per channel mean 0, variance 1.
    model = export(graph, weights, last=2)
    (out,) = [o.name for o in model.graph.output]
    y = OnnxRunner(model).run(calibration_inputs(graph, 0))[out]
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-3)
    # pool_bn sees one value per channel: per-tensor statistics, not a zero variance.
    fc_mean, fc_var = batchnorm_statistics(weights["pool_bn"])
    assert np.all(fc_var > 0) and np.ptp(fc_var) == 0 and np.ptp(fc_mean) == 0


def test_uncalibrated_batchnorm_is_identity_statistics():
    mean, var = batchnorm_statistics(seeded_weights(bn_net())["bn1"])
    np.testing.assert_array_equal(mean, 0)
    np.testing.assert_array_equal(var, 1)


def test_onnx_round_trip(tmp_path):
    import onnx

    graph = bn_net()
    weights = seeded_weights(graph, seed=5, run=run_onnx)
    path = tmp_path / "bn_net.onnx"
    onnx.save(export(graph, weights), str(path))
    loaded = load_weights(path, graph)
    assert set(loaded) == set(weights)
    for name in ("conv1", "sc1", "fc"):
        for a, b in zip(loaded[name], weights[name]):
            np.testing.assert_array_equal(a, b)
    for name in ("bn1", "pool_bn"):
        for a, b in zip(batchnorm_statistics(loaded[name]), batchnorm_statistics(weights[name])):
            np.testing.assert_allclose(a, b, rtol=1e-6)
    x = calibration_inputs(graph, 3)
    np.testing.assert_array_equal(OnnxRunner(export(graph, loaded)).run(x)["prob"],
                                  OnnxRunner(export(graph, weights)).run(x)["prob"])


def test_caffemodel_weights(tmp_path):
    graph = bn_net(channels=4)
    weights = seeded_weights(graph, seed=2)
    net = message_class("NetParameter")()
    for name, blobs in weights.items():
        entry = net.layer.add()
        entry.name = name
        entry.type = graph.layer(name).type
        for blob in blobs:
            proto = entry.blobs.add()
            proto.shape.dim.extend(blob.shape)
            proto.data.extend(blob.reshape(-1).tolist())
    path = tmp_path / "bn_net.caffemodel"
    path.write_bytes(net.SerializeToString())
    loaded = load_weights(path, graph)
    for name, blobs in weights.items():
        for a, b in zip(loaded[name], blobs):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name,message", [
    ("missing.onnx", r"missing\.onnx: no such weights file"),
    ("weights.npz", r"weights\.npz: unknown weights file type '\.npz'"),
    ("broken.onnx", r"broken\.onnx: not a readable ONNX file"),
])
def test_bad_weight_files(tmp_path, name, message):
    if name != "missing.onnx":
        (tmp_path / name).write_bytes(b"\x00not a model")
    with pytest.raises(ModelError, match=message):
        load_weights(tmp_path / name, bn_net())


def test_onnx_file_of_another_model_is_refused(tmp_path):
    import onnx

    other = parse_prototxt(
        'layer { name: "data" type: "Input" top: "data" '
        'input_param { shape { dim: 1 dim: 3 dim: 16 dim: 16 } } }\n' +
        layer("convX", "Convolution", ["data"], ["convX"],
              "convolution_param { num_output: 2 kernel_size: 1 }"), name="other")
    path = tmp_path / "other.onnx"
    onnx.save(export(other), str(path))
    with pytest.raises(ModelError, match=r"no initializer 'conv1.weight' for layer 'conv1' "
                                         r"\(index 1"):
        load_weights(path, bn_net())

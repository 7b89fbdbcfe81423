"""Blobs from a binary caffemodel, written here with our own schema."""

import numpy as np
import pytest

from hax_conn_core.errors import ModelError
from hax_conn_core.graph.caffe_schema import message_class
from hax_conn_core.graph.caffemodel import load_caffemodel_weights, write_caffemodel
from hax_conn_core.graph.prototxt import parse_prototxt
from hax_conn_core.graph.weights import load_weights, seeded_weights

from . import nets


def _blob(net_layer, array, legacy=False):
    blob = net_layer.blobs.add()
    if legacy:
        shape = (1,) * (4 - array.ndim) + array.shape
        blob.num, blob.channels, blob.height, blob.width = shape
    else:
        blob.shape.dim.extend(array.shape)
    blob.data.extend(array.ravel().tolist())


def test_weights_round_trip_and_legacy_shapes_fit_the_graph(tmp_path):
    graph = parse_prototxt(nets.CHAIN)
    rng = np.random.default_rng(0)
    conv_w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    conv_b = rng.standard_normal(4).astype(np.float32)
    fc_w = rng.standard_normal((10, 64)).astype(np.float32)
    fc_b = rng.standard_normal(10).astype(np.float32)
    net = message_class("NetParameter")()
    layer = net.layer.add(name="conv1", type="Convolution")
    _blob(layer, conv_w)
    _blob(layer, conv_b)
    layer = net.layer.add(name="fc", type="InnerProduct")
    _blob(layer, fc_w, legacy=True)   # stored as 1x1x10x64, as old Caffe did
    _blob(layer, fc_b, legacy=True)
    path = tmp_path / "w.caffemodel"
    path.write_bytes(net.SerializeToString())

    raw = load_caffemodel_weights(path)
    assert raw["fc"][0].shape == (1, 1, 10, 64)
    fitted = load_caffemodel_weights(path, graph)
    np.testing.assert_array_equal(fitted["conv1"][0], conv_w)
    np.testing.assert_array_equal(fitted["conv1"][1], conv_b)
    assert fitted["fc"][0].shape == (10, 64) and fitted["fc"][1].shape == (10,)
    np.testing.assert_array_equal(fitted["fc"][0], fc_w)


def test_wrong_blob_count_and_unknown_layer_are_model_errors(tmp_path):
    graph = parse_prototxt(nets.CHAIN)
    net = message_class("NetParameter")()
    layer = net.layer.add(name="conv1")
    _blob(layer, np.zeros((4, 3, 3, 3), np.float32))
    path = tmp_path / "w.caffemodel"
    path.write_bytes(net.SerializeToString())
    with pytest.raises(ModelError, match=r"1 blobs; Convolution layer 'conv1' expects 2"):
        load_caffemodel_weights(path, graph)
    net.layer[0].name = "other"
    path.write_bytes(net.SerializeToString())
    with pytest.raises(ModelError, match=r"has no layer of that name"):
        load_caffemodel_weights(path, graph)


def test_not_a_caffemodel(tmp_path):
    path = tmp_path / "x.caffemodel"
    path.write_bytes(b"\xff\xff\xff\xff")
    with pytest.raises(ModelError, match="not a binary caffemodel"):
        load_caffemodel_weights(path)


@pytest.mark.parametrize("layer_name, stored, expected", [
    ("conv1", (4, 3, 5, 5), (4, 3, 3, 3)),   # another kernel size: other value count
    ("fc", (64, 10), (10, 64)),              # transposed: same count, still a mismatch
])
def test_blob_shapes_unlike_the_prototxt_name_the_layer_and_both_shapes(
        tmp_path, layer_name, stored, expected):
    graph = parse_prototxt(nets.CHAIN)
    weights = {"conv1": [np.zeros((4, 3, 3, 3), np.float32), np.zeros(4, np.float32)],
               "conv2": [np.zeros((4, 4, 3, 3), np.float32), np.zeros(4, np.float32)],
               "fc": [np.zeros((10, 64), np.float32), np.zeros(10, np.float32)]}
    weights[layer_name][0] = np.zeros(stored, np.float32)
    path = tmp_path / "w.caffemodel"
    write_caffemodel(path, weights, graph)
    with pytest.raises(ModelError) as error:
        load_weights(path, graph)
    message = str(error.value)
    assert f"layer {layer_name!r}" in message and "\n" not in message
    assert str(stored) in message and str(expected) in message


def test_the_writer_round_trips_through_the_reader(tmp_path):
    graph = parse_prototxt(nets.CHAIN)
    weights = seeded_weights(graph, 5)
    path = tmp_path / "w.caffemodel"
    write_caffemodel(path, weights, graph)
    loaded = load_weights(path, graph)
    assert set(loaded) == set(weights)
    for name, blobs in weights.items():
        for got, want in zip(loaded[name], blobs):
            np.testing.assert_array_equal(got, want)


def test_a_truncated_caffemodel_is_one_model_error(tmp_path):
    graph = parse_prototxt(nets.CHAIN)
    path = tmp_path / "w.caffemodel"
    write_caffemodel(path, seeded_weights(graph, 0), graph)
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(ModelError, match=r"not a binary caffemodel"):
        load_weights(path, graph)

"""One resolver for model names: built-in ids, .prototxt and .onnx paths (graph.resolve), and
`hax-conn graph` on a user's ONNX file."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hax_conn_core.errors import ConfigError, ModelError
from hax_conn_core.graph.resolve import register_model, resolve_model

from . import nets

REPO = Path(__file__).resolve().parents[3]


def test_builtin_id_resolves_to_the_shipped_prototxt():
    source = resolve_model("alexnet")
    assert source.builtin and source.frontend == "caffe" and source.id == "alexnet"
    assert source.path.name == "alexnet.prototxt"


def test_paths_are_named_by_their_normalised_stem(tmp_path):
    prototxt = tmp_path / "My-Tiny.Net.prototxt"
    prototxt.write_text(nets.CHAIN)
    source = resolve_model(str(prototxt))
    assert (source.id, source.frontend, source.builtin) == ("my_tiny_net", "caffe", False)
    graph = source.load_graph()
    assert graph.name == "my_tiny_net" and graph.frontend == "caffe"
    assert [layer.name for layer in graph.layers if layer.fused] == ["relu1"]


def test_onnx_path_with_an_input_shape(tmp_path):
    onnx_nets = pytest.importorskip("test.core.graph.onnx_nets")
    pytest.importorskip("onnx")
    path = onnx_nets.save(onnx_nets.segmenter_net(dynamic_batch=True), tmp_path / "Seg 2.onnx")
    source = resolve_model(path, input_shape="1x3x32x32")
    assert (source.id, source.frontend, source.input_shape) == ("seg_2", "onnx", (1, 3, 32, 32))
    assert source.load_graph().shape("seg") == (1, 5, 32, 32)
    with pytest.raises(ModelError, match="--input-shape"):
        resolve_model(path).load_graph()


@pytest.mark.parametrize("make,pattern", [
    (lambda d: "no_such_dnn", "unknown DNN 'no_such_dnn': neither a prototxt file nor a known "
                              "DNN; expected a path or one of"),
    (lambda d: str(d / "missing.onnx"), "missing.onnx: no such ONNX file"),
    (lambda d: str(d / "missing.prototxt"), "missing.prototxt: no such prototxt file"),
    (lambda d: (d / "x.onnx").mkdir() or str(d / "x.onnx"), "x.onnx: is a directory"),
])
def test_unknown_names_and_missing_files(tmp_path, make, pattern):
    with pytest.raises(ConfigError, match=pattern):
        resolve_model(make(tmp_path))


def test_a_caffemodel_alone_or_weights_for_an_onnx_model_are_refused(tmp_path):
    weights = tmp_path / "net.caffemodel"
    weights.write_bytes(b"\x00")
    with pytest.raises(ConfigError, match="holds weights only; give the .prototxt"):
        resolve_model(str(weights))
    model = tmp_path / "net.onnx"
    model.write_bytes(b"\x00")
    with pytest.raises(ConfigError, match="carries its own weights"):
        resolve_model(str(model), weights=weights)


def test_registered_paths_are_found_by_id_and_names_do_not_collide(tmp_path):
    first = tmp_path / "a" / "Collide.prototxt"
    second = tmp_path / "b" / "collide.prototxt"
    for path in (first, second):
        path.parent.mkdir()
        path.write_text(nets.CHAIN)
    assert register_model(str(first)).id == "collide"
    assert resolve_model("collide").path == first.resolve()
    assert register_model(str(first)).path == first.resolve()  # the same file again is fine
    with pytest.raises(ConfigError, match="already taken by"):
        register_model(str(second))
    builtin_named = tmp_path / "alexnet.prototxt"
    builtin_named.write_text(nets.CHAIN)
    with pytest.raises(ConfigError, match="built-in DNN's; rename the file"):
        register_model(str(builtin_named))


def _graph_cli(*args):
    return subprocess.run([sys.executable, "-m", "hax_conn_core.cli.main", "graph", *args],
                          capture_output=True, text=True, timeout=120, cwd=REPO)


def test_hax_conn_graph_on_an_onnx_file(tmp_path):
    onnx_nets = pytest.importorskip("test.core.graph.onnx_nets")
    pytest.importorskip("onnx")
    path = onnx_nets.save(onnx_nets.classifier_net(dynamic_batch=True), tmp_path / "Cls.onnx")
    out = _graph_cli("--model", path, "--input-shape", "1x3x32x32", "--groups", "4", "--json",
                     "--device", "orin-agx")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert (doc["model"], doc["frontend"]) == ("cls", "onnx")
    assert doc["layers"][0]["type"] == "Conv" and doc["layers"][1]["fused"] is True
    assert doc["inputs"] == {"image": [1, 3, 32, 32]}
    assert len(doc["groups"]) == 4
    flatten = next(layer for layer in doc["layers"] if layer["name"] == "flatten")
    assert flatten["dla_unsupported"] == "dla does not run ONNX Flatten nodes"
    missing = _graph_cli(path)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "dynamic dimensions (Nx3x32x32)" in missing.stderr
    assert len(missing.stderr.strip().splitlines()[-1:]) == 1
    assert "error:" in missing.stderr.strip().splitlines()[-1]

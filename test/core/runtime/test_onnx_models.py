"""Users' ONNX models on the runtime: load_model by path, every group boundary crossed between
the two onnxruntime sessions, results equal to the whole model (docs/graph.md, "Frontends")."""

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from hax_conn_core.errors import ModelError  # noqa: E402
from hax_conn_core.graph.onnx_export import export  # noqa: E402
from hax_conn_core.graph.resolve import register_model  # noqa: E402
from hax_conn_core.runtime.backends.base import EngineSpec  # noqa: E402
from hax_conn_core.runtime.backends.onnxrt import OnnxRunner  # noqa: E402
from hax_conn_core.runtime.models import load_model  # noqa: E402
from hax_conn_core.schedule import Schedule  # noqa: E402
from test.core.graph import onnx_nets  # noqa: E402
from test.core.runtime.helpers import profile_for  # noqa: E402
from test.core.runtime.test_session import alternating, run  # noqa: E402


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user-models")
    return {net: onnx_nets.save(build(), folder / f"User-{net}.onnx")
            for net, build in onnx_nets.NETS.items()}


def test_load_model_reads_an_onnx_path_with_its_own_weights(paths):
    model = load_model(paths["classifier"])
    assert model.name == "user_classifier"
    assert model.weights_id.startswith("file:User-classifier.onnx:")
    assert model.input_shape == (1, 3, 32, 32) and model.output_names == ("prob",)
    stem = model.graph.layer("stem")
    np.testing.assert_array_equal(model.weights["stem"][0], stem.params.constants["stem.weight"])
    assert load_model(paths["classifier"]) is model  # kept for the process
    with pytest.raises(ModelError, match="carries its own weights"):
        load_model(paths["classifier"], weights=paths["detector"])


def test_engine_spec_io_of_an_onnx_range(paths):
    model = load_model(paths["detector"])
    spec = EngineSpec(dnn=model.name, graph=model.graph, weights=model.weights,
                      weights_id=model.weights_id, first_layer=4, last_layer=10,
                      accelerator="gpu")
    assert spec.io() == (("c2_relu",), ("fuse",))


def test_every_group_boundary_between_the_two_sessions_equals_the_whole(paths):
    ids = [register_model(paths[net]).id for net in ("classifier", "detector", "segmenter")]
    models = {name: load_model(name) for name in ids}
    profile = profile_for(models, target_groups=4)
    assignments = {name: alternating(len(profile.dnns[name].groups), start)
                   for name, start in zip(ids, ("gpu", "dla", "gpu"))}
    frames, results, _ = run(models, profile, Schedule("latency", assignments), 2)
    for name, model in models.items():
        runner = OnnxRunner(export(model.graph), optimize=False)
        for frame_set, result in zip(frames, results):
            got = result.results[name]
            assert got.ok, got.error
            want = runner.run({model.input_name: frame_set[name]})
            for key, value in want.items():
                assert float(np.abs(got.outputs[key] - value).max()) <= 1e-4, (name, key)

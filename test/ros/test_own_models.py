"""Users' own models in the nodes, with real rclpy and DDS (isolated domain, conftest.py).

An ONNX model of onnx_nets (the detector head, dynamic batch), written to tmp and listed by path
in the config's ``models`` with its input shape and ``raw`` outputs, runs beside alexnet and
publishes its tensors. Bad models in the same config (a truncated file, a file that is no ONNX,
opset 9, a dynamic model without an input shape, a prototxt whose caffemodel's blob shapes do
not fit) are each one /diagnostics entry in the executors, and a schedule naming one runs the
other DNNs. The planner refuses an unknown name and a missing file with a /diagnostics status
and keeps the current schedule. Profiles are estimated (the planner needs the DNNs in one;
nothing here is timed).
"""

import numpy as np
import pytest

pytestmark = pytest.mark.ros

EXECUTORS = ("gpu_executor", "dla_executor")
TINY = """name: "tiny"
input: "data"
input_shape { dim: 1 dim: 3 dim: 16 dim: 16 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "fc" type: "InnerProduct" bottom: "conv1" top: "fc"
        inner_product_param { num_output: 10 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def _opset9(path):
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "old",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                             [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                             [1, 3, 8, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    model.ir_version = 4
    path.write_bytes(model.SerializeToString())


def _models(tmp_path):
    """The good detector and the bad files: (detector path, {name: path} of bad ones, tiny)."""
    from hax_conn_core.graph.caffemodel import write_caffemodel
    from test.core.graph.onnx_nets import detector_net, save

    detector = tmp_path / "Own-Detector.onnx"  # named own_detector
    save(detector_net(dynamic_batch=True), detector)
    bad = {"own_truncated": tmp_path / "own_truncated.onnx",
           "own_not_onnx": tmp_path / "own_not_onnx.onnx",
           "own_opset9": tmp_path / "own_opset9.onnx",
           "own_no_shape": tmp_path / "own_no_shape.onnx"}
    bad["own_truncated"].write_bytes(detector.read_bytes()[:300])
    bad["own_not_onnx"].write_text("name: 'a prototxt, not ONNX'\n")
    _opset9(bad["own_opset9"])
    save(detector_net(dynamic_batch=True), bad["own_no_shape"])
    tiny = tmp_path / "own_tiny.prototxt"
    tiny.write_text(TINY)
    write_caffemodel(tmp_path / "own_tiny.caffemodel",  # conv1 as 5x5: does not fit 3x3
                     {"conv1": [np.zeros((4, 3, 5, 5)), np.zeros(4)],
                      "fc": [np.zeros((10, 784)), np.zeros(10)]})
    return detector, bad, tiny


def _profile(tmp_path, detector, tiny):
    """An estimated CPU profile of alexnet, own_detector and own_tiny."""
    from hax_conn_core.graph.resolve import resolve_model
    from hax_conn_core.profiler.document import write_document
    from hax_conn_core.profiler.estimate import estimate_profile

    graphs = {"own_detector": resolve_model(detector, input_shape="1x3x64x64").load_graph(),
              "own_tiny": resolve_model(tiny).load_graph()}
    path = tmp_path / "own_profile.json"
    write_document(estimate_profile(["alexnet", "own_detector", "own_tiny"], "cpu",
                                    graphs=graphs), path)
    return path


def _config(tmp_path, profile, models, dnns, executor_params):
    import yaml

    from test.ros.conftest import write_config

    path = write_config(tmp_path, planner={"dnns": dnns, "profile": str(profile)},
                        **{node: dict(executor_params) for node in EXECUTORS})
    document = yaml.safe_load(path.read_text())
    document["/**"] = {"ros__parameters": {"models": [str(m) for m in models]}}
    path.write_text(yaml.safe_dump(document))
    return path


def _statuses(probe_diagnostics, name):
    """The latest /diagnostics status of each hax_conn node whose name contains ``name``."""
    latest = {}
    for array in probe_diagnostics:
        for status in array.status:
            if name in status.name:
                latest[status.name] = status
    return latest


def test_an_onnx_model_by_path_runs_beside_a_paper_dnn_and_bad_models_are_reported(
        ros_context, tmp_path):
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from hax_conn_ros.msg import InferenceResult, Schedule
    from hax_conn_ros.planner_node import SCHEDULE_QOS
    from test.ros.conftest import Bringup
    from test.ros.test_nodes import _set

    detector, bad, tiny = _models(tmp_path)
    profile = _profile(tmp_path, detector, tiny)
    # dnns name the detector by path; own_tiny is in the profile but its caffemodel is bad
    config = _config(tmp_path, profile, [detector, *bad.values(), tiny],
                     ["alexnet", str(detector), "own_tiny"],
                     {"own_detector.input_shape": "1x3x64x64",
                      "own_detector.outputs.kind": "raw",
                      "own_tiny.weights": str(tmp_path / "own_tiny.caffemodel")})
    graph = Bringup(ros_context, config)
    try:
        probe = graph.probe
        results, schedules, diagnostics = [], [], []
        for dnn in ("alexnet", "own_detector", "own_tiny"):
            probe.create_subscription(InferenceResult, f"/hax_conn/{dnn}/result",
                                      results.append, 50)
        probe.create_subscription(Schedule, "/planner/schedule", schedules.append,
                                  SCHEDULE_QOS)
        probe.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 50)
        images = probe.create_publisher(Image, "/camera/image_raw", qos_profile_sensor_data)
        image = Image(height=64, width=64, encoding="rgb8", step=64 * 3,
                      data=np.full(64 * 64 * 3, 90, np.uint8).tobytes())

        def dnns_with_results():
            return {r.dnn for r in results}

        graph.wait(lambda: dnns_with_results() >= {"alexnet", "own_detector"},
                   "results of alexnet and own_detector", step=lambda: images.publish(image))
        assert schedules and [d.dnn for d in schedules[-1].dnns] == [
            "alexnet", "own_detector", "own_tiny"]
        assert "own_tiny" not in dnns_with_results()
        mine = next(r for r in results if r.dnn == "own_detector")
        assert mine.postprocess == "raw" and mine.weights.startswith(
            "file:Own-Detector.onnx:")
        # the detector head's one output, batch fixed to 1 by the input shape
        (tensor,) = mine.outputs
        assert tensor.shape[0] == 1 and len(tensor.data) == int(np.prod(tensor.shape))
        assert next(r for r in results if r.dnn == "alexnet").weights == "seeded:0"

        # every bad model is an entry on the executors' /diagnostics, with its reason
        wanted = {f"{name}.errors" for name in [*bad, "own_tiny"]}
        graph.wait(lambda: all(wanted <= {kv.key for kv in s.values}
                               for s in _statuses(diagnostics, "executor").values())
                   and len(_statuses(diagnostics, "executor")) == 2,
                   "both executors' statuses naming every bad model")
        reasons = {"own_truncated": "not an ONNX model", "own_not_onnx": "not an ONNX model",
                   "own_opset9": "opset", "own_no_shape": "--input-shape",
                   "own_tiny": "does not match"}
        for node in EXECUTORS:
            executor = graph.node(node)
            assert set(executor._models.bad) == set(reasons), node
            for name, words in reasons.items():
                assert words in executor._models.bad[name], (name, executor._models.bad[name])
        (status,) = [s for s in _statuses(diagnostics, "executor").values()
                     if s.hardware_id == "gpu"]
        assert status.level == status.WARN
        values = {kv.key: kv.value for kv in status.values}
        assert all(int(values[key]) >= 1 for key in wanted)

        # the planner: an unknown name and a missing file are refused, the schedule stays
        sequence = schedules[-1].sequence
        for dnns, words in ((["alexnet", "own_nosuch"], "unknown DNN 'own_nosuch'"),
                            (["alexnet", str(tmp_path / "gone.onnx")], "no such ONNX file")):
            (outcome,) = _set(graph, dnns=dnns)
            assert not outcome.successful and words in outcome.reason, outcome.reason
            graph.wait(lambda: any(words in s.message
                                   for s in _statuses(diagnostics, "planner").values()),
                       f"the planner's /diagnostics saying {words!r}")
        assert graph.node("planner").get_parameter("dnns").value == [
            "alexnet", str(detector), "own_tiny"]
        before = len(results)
        graph.wait(lambda: {r.dnn for r in results[before:]} >= {"alexnet", "own_detector"},
                   "results go on after the refusals", step=lambda: images.publish(image))
        assert schedules[-1].sequence == sequence
        # the name the detector was registered under is accepted, too
        (outcome,) = _set(graph, dnns=["own_detector", "alexnet"])
        assert outcome.successful, outcome.reason
        graph.wait(lambda: schedules[-1].sequence == sequence + 1, "the next schedule")
        assert [d.dnn for d in schedules[-1].dnns] == ["own_detector", "alexnet"]
    finally:
        graph.close()

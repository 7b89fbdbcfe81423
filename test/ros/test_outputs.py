"""Per-model outputs in the results, with real rclpy and DDS (isolated domain, conftest.py):
a `raw` model's InferenceResult carries its tensors exactly as the runtime computed them, a
`classify` model its top-k classes named from a labels file; both say which weights ran."""

import numpy as np
import pytest

pytestmark = pytest.mark.ros

EXECUTORS = ("gpu_executor", "dla_executor")


def _both(**params):
    return {node: dict(params) for node in EXECUTORS}


def test_raw_results_carry_the_runtime_outputs_and_classify_names_classes(bringup, tmp_path):
    """mobilenet_v1 raw with weights from a caffemodel, alexnet classify (top-3, labels)."""
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from hax_conn_core import feeder as feeding
    from hax_conn_core.graph.caffemodel import write_caffemodel
    from hax_conn_core.graph.onnx_export import export
    from hax_conn_core.preprocess import to_input
    from hax_conn_core.runtime.backends.onnxrt import OnnxRunner
    from hax_conn_core.runtime.models import load_model
    from hax_conn_ros.conversions import image_from_msg
    from hax_conn_ros.msg import InferenceResult

    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"class-{i}\n" for i in range(1000)))
    trained = load_model("mobilenet_v1", seed=5)  # stands in for trained weights
    weights = tmp_path / "mobilenet_v1.caffemodel"
    write_caffemodel(weights, trained.weights, trained.graph)
    graph = bringup(planner={"dnns": ["alexnet", "mobilenet_v1"]},
                    **_both(**{"mobilenet_v1.outputs.kind": "raw",
                               "mobilenet_v1.weights": str(weights),
                               "alexnet.outputs.top_k": 3,
                               "alexnet.outputs.labels": str(labels)}))
    computed = {}  # (dnn, frame_set) -> the runtime's outputs, as the feeder hands them on
    (feeder,) = feeding.shared()
    feeder.add_listener(lambda out: computed.setdefault((out.dnn, out.frame_set), out))
    results = {"alexnet": [], "mobilenet_v1": []}
    for dnn, got in results.items():
        graph.probe.create_subscription(InferenceResult, f"/hax_conn/{dnn}/result", got.append,
                                        50)
    publisher = graph.probe.create_publisher(Image, "/camera/image_raw",
                                             qos_profile_sensor_data)
    image = Image(height=224, width=224, encoding="rgb8", step=224 * 3,
                  data=np.arange(224 * 224 * 3, dtype=np.uint32).astype(np.uint8).tobytes())

    def matched(dnn):
        return [(r, computed[(dnn, r.frame_set)]) for r in list(results[dnn])
                if (dnn, r.frame_set) in computed]

    graph.wait(lambda: matched("alexnet") and matched("mobilenet_v1"),
               "results of both DNNs matched with the runtime's outputs",
               step=lambda: publisher.publish(image))
    # The file's weights ran: the whole model with them, on the same input, agrees.
    whole = OnnxRunner(export(trained.graph, trained.weights), optimize=False).run(
        {trained.input_name: to_input(image_from_msg(image), trained.input_shape)})
    for msg, output in matched("mobilenet_v1"):
        assert msg.postprocess == "raw" and msg.weights == output.weights
        assert msg.weights.startswith("file:mobilenet_v1.caffemodel:")
        assert list(msg.class_ids) == [] and list(msg.scores) == []
        assert [t.name for t in msg.outputs] == list(output.outputs) == list(whole)
        for tensor in msg.outputs:
            value = np.asarray(output.outputs[tensor.name])
            shape = tuple(trained.graph.shape(tensor.name))  # (1, 1000, 1, 1): kept as is
            assert tuple(tensor.shape) == value.shape == whole[tensor.name].shape == shape
            data = np.asarray(tensor.data, np.float32)
            np.testing.assert_array_equal(data, value.astype(np.float32).reshape(-1))
            assert float(np.abs(data - whole[tensor.name].reshape(-1)).max()) <= 1e-4
    for msg, output in matched("alexnet"):
        assert msg.postprocess == "classify" and msg.weights == "seeded:0" and not msg.outputs
        scores = np.asarray(output.outputs["prob"], np.float32).reshape(-1)
        best = sorted(range(scores.size), key=lambda i: -scores[i])[:3]
        assert list(msg.class_ids) == best
        assert list(msg.class_names) == [f"class-{i}" for i in best]
        np.testing.assert_array_equal(np.asarray(msg.scores, np.float32), scores[best])


@pytest.mark.parametrize("params, message", [
    ({"alexnet.outputs.kind": "boxes"}, "gpu_executor: alexnet.outputs: kind 'boxes' is "
                                        "unknown; expected one of classify, raw"),
    ({"alexnet.outputs.labels": "/no/such/labels.txt"}, "cannot read labels file"),
])
def test_a_bad_outputs_setting_stops_the_nodes_with_one_line(bringup, params, message):
    from hax_conn_core.errors import ConfigError

    with pytest.raises(ConfigError) as error:
        bringup(**_both(**params))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_setting_unfit_for_the_outputs_is_one_log_line_and_on_diagnostics(bringup):
    """top_k above alexnet's 1000 classes: its results are not published, /diagnostics says
    why; resnet18's results come as usual."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from hax_conn_ros.msg import InferenceResult

    graph = bringup(**_both(**{"alexnet.outputs.top_k": 2000}))
    results, statuses = [], []
    for dnn in ("alexnet", "resnet18"):
        graph.probe.create_subscription(InferenceResult, f"/hax_conn/{dnn}/result",
                                        results.append, 50)
    graph.probe.create_subscription(
        DiagnosticArray, "/diagnostics",
        lambda array: statuses.extend({kv.key: kv.value for kv in s.values}
                                      for s in array.status), 50)
    publisher = graph.probe.create_publisher(Image, "/camera/image_raw",
                                             qos_profile_sensor_data)
    image = Image(height=224, width=224, encoding="rgb8", step=224 * 3,
                  data=bytes(224 * 224 * 3))
    expected = "alexnet: outputs: top_k 2000 exceeds the 1000 classes of output 'prob'"

    def refused():
        return [s for s in list(statuses)
                if int(s.get("alexnet.errors", 0)) > 0 and expected in s["last_error"]]

    graph.wait(lambda: refused() and any(r.dnn == "resnet18" for r in results),
               "alexnet's refusal on /diagnostics and resnet18's results",
               step=lambda: publisher.publish(image))
    assert not [r for r in results if r.dnn == "alexnet"]

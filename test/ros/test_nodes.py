"""The nodes with real rclpy and DDS: images in, results out; parameters; bad images.

Each test starts the planner, both executors and the profiler in-process (the same nodes and
parameters as `hax-conn bringup`) on onnxruntime with the shipped CPU profile, and a probe node
that publishes images and listens. Deadlines are generous; nothing is timed.
"""

import numpy as np
import pytest

pytestmark = pytest.mark.ros

PAIR = ["alexnet", "resnet18"]


def _image(encoding="rgb8", height=224, width=224, frame_id="camera", data=None):
    from sensor_msgs.msg import Image

    channels = {"rgb8": 3, "bgr8": 3, "mono8": 1}.get(encoding, 4)
    msg = Image(height=height, width=width, encoding=encoding, step=width * channels)
    msg.data = data if data is not None else np.full(
        height * width * channels, 120, np.uint8).tobytes()
    msg.header.frame_id = frame_id
    return msg


class _Probe:
    """Publishers of images and listeners of schedules, results and /diagnostics."""

    def __init__(self, graph, dnns, topics=("/camera/image_raw",)):
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image

        from hax_conn_ros.msg import InferenceResult, Schedule
        from hax_conn_ros.planner_node import SCHEDULE_QOS

        node = graph.probe
        self.results, self.schedules, self.diagnostics, self.sent = [], [], [], 0
        for dnn in dnns:
            node.create_subscription(InferenceResult, f"/hax_conn/{dnn}/result",
                                     self.results.append, 50)
        node.create_subscription(Schedule, "/planner/schedule", self.schedules.append,
                                 SCHEDULE_QOS)
        node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 50)
        self.publishers = {t: node.create_publisher(Image, t, qos_profile_sensor_data)
                           for t in topics}

    def publish(self, topic="/camera/image_raw", msg=None):
        self.sent += 1
        msg = msg or _image(frame_id=f"frame{self.sent}")
        msg.header.stamp.sec, msg.header.stamp.nanosec = 1000 + self.sent, 7 * self.sent
        self.publishers[topic].publish(msg)

    def dnns_with_results(self, sequence=None):
        return {r.dnn for r in self.results
                if sequence is None or r.schedule_sequence == sequence}

    def diagnostic(self, key):
        """Largest value of ``key`` over the executors' latest statuses."""
        latest = {}
        for array in self.diagnostics:
            for status in array.status:
                latest[status.name] = {kv.key: kv.value for kv in status.values}
        values = [int(v[key]) for v in latest.values() if key in v]
        return max(values, default=0)


def _set(graph, **values):
    """SetParameters on the planner: what `ros2 param set /planner NAME VALUE` calls."""
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    client = graph.probe.create_client(SetParameters, "/planner/set_parameters")
    assert client.wait_for_service(timeout_sec=30), "no /planner/set_parameters service"
    request = SetParameters.Request(parameters=[
        (Parameter(k, Parameter.Type.STRING_ARRAY, v) if v == [] else Parameter(k, value=v)
         ).to_parameter_msg() for k, v in values.items()])
    future = client.call_async(request)
    graph.wait(future.done, "the SetParameters response", timeout_s=60)
    graph.probe.destroy_client(client)
    return future.result().results


def test_images_in_results_out_for_every_dnn_with_headers(bringup):
    graph = bringup()
    probe = _Probe(graph, PAIR)
    graph.wait(lambda: probe.dnns_with_results() == set(PAIR), "results of alexnet and resnet18",
               step=probe.publish)
    sent_ids = {f"frame{i}" for i in range(1, probe.sent + 1)}
    for result in probe.results:
        assert result.header.frame_id in sent_ids
        number = int(result.header.frame_id[len("frame"):])
        assert (result.header.stamp.sec, result.header.stamp.nanosec) == (1000 + number,
                                                                          7 * number)
        assert result.schedule_sequence == 1 and result.accelerator in ("gpu", "dla")
        assert len(result.class_ids) == 5 and result.scores[0] >= result.scores[-1]
        assert result.latency_ms > 0
    assert probe.schedules and [d.dnn for d in probe.schedules[-1].dnns] == PAIR


def test_a_parameter_change_publishes_a_new_schedule_and_frames_follow(bringup):
    graph = bringup()
    probe = _Probe(graph, PAIR + ["mobilenet_v1"])
    graph.wait(lambda: probe.dnns_with_results() == set(PAIR), "first results",
               step=probe.publish)
    (outcome,) = _set(graph, dnns=["mobilenet_v1", "alexnet"])
    assert outcome.successful, outcome.reason
    graph.wait(lambda: probe.schedules and probe.schedules[-1].sequence == 2,
               "schedule 2 on /planner/schedule")
    assert [d.dnn for d in probe.schedules[-1].dnns] == ["mobilenet_v1", "alexnet"]
    graph.wait(lambda: probe.dnns_with_results(2) == {"mobilenet_v1", "alexnet"},
               "results under schedule 2", step=probe.publish)
    assert "resnet18" not in probe.dnns_with_results(2)
    first_new = min(r.frame_set for r in probe.results if r.schedule_sequence == 2)
    assert all(r.frame_set < first_new for r in probe.results if r.dnn == "resnet18")
    # switching back comes from the planner's cache
    (outcome,) = _set(graph, dnns=PAIR)
    assert outcome.successful, outcome.reason
    graph.wait(lambda: probe.schedules[-1].sequence == 3, "schedule 3")
    assert probe.schedules[-1].cached


@pytest.mark.parametrize("values, reason", [
    (dict(dnns=["alexnet", "yolo"]), "unknown DNN 'yolo'; expected one of alexnet"),
    (dict(dnns=[]), "the list is empty"),
    (dict(dnns=["alexnet", "vgg16"]), "vgg16 not in the profile"),
    (dict(objective="fast"), "'fast' is not one of latency, throughput"),
    (dict(max_transitions=99), ""),  # rclpy's own range check
])
def test_a_refused_parameter_leaves_everything_running(bringup, values, reason):
    graph = bringup()
    probe = _Probe(graph, PAIR)
    graph.wait(lambda: probe.dnns_with_results() == set(PAIR), "first results",
               step=probe.publish)
    (outcome,) = _set(graph, **values)
    assert not outcome.successful and reason in outcome.reason
    name = next(iter(values))
    assert graph.node("planner").get_parameter(name).value != values[name]
    before = len(probe.results)
    graph.wait(lambda: len(probe.results) >= before + 4, "results after the refusal",
               step=probe.publish)
    assert {r.schedule_sequence for r in probe.results} == {1}
    assert [s.sequence for s in probe.schedules] == [1]


def test_malformed_images_are_counted_while_the_other_dnn_keeps_going(bringup):
    topic = {"alexnet.image_topic": "/camera/bad"}
    graph = bringup(gpu_executor=topic, dla_executor=topic)
    probe = _Probe(graph, PAIR, topics=("/camera/image_raw", "/camera/bad"))
    bad = [_image("rgba8"), _image(height=0, width=0, data=b""),
           _image(data=bytes(1000))]

    def step():
        probe.publish()
        probe.publish("/camera/bad", bad[probe.sent % len(bad)])

    graph.wait(lambda: probe.diagnostic("frame_errors") >= 3
               and sum(r.dnn == "resnet18" for r in probe.results) >= 3,
               "frame errors on /diagnostics and resnet18 results", step=step)
    assert "alexnet" not in probe.dnns_with_results()
    errors = [s for a in probe.diagnostics for s in a.status if s.message != "running"]
    assert errors and "alexnet" in errors[-1].message
    # One subscription per topic in the process, all held by the first executor (dla): each
    # image is taken once, for the DNNs of both nodes, each DNN on the topic its nodes name.
    inputs = {node: {topic: list(names) for topic, (_, names) in
                     graph.node(f"{node}_executor")._inputs.items()} for node in ("dla", "gpu")}
    assert inputs == {"dla": {"/camera/bad": ["alexnet"], "/camera/image_raw": ["resnet18"]},
                      "gpu": {}}
    for topic in ("/camera/bad", "/camera/image_raw"):
        graph.wait(lambda: graph.probe.count_subscribers(topic) == 1,
                   f"one subscription of {topic}")

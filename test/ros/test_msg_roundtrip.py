"""Our custom messages travel through real rclpy publishers and subscribers (Fast DDS)."""

import time

import pytest

pytestmark = pytest.mark.ros


def _spin_until(executor, condition, timeout_s):
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    return condition()


def _roundtrip(context, msg_type, topic, message, timeout_s=20.0):
    """Publish `message` from one node until another node receives it; return what arrived."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    talker = Node("roundtrip_talker", context=context)
    listener = Node("roundtrip_listener", context=context)
    received = []
    listener.create_subscription(msg_type, topic, received.append, 10)
    publisher = talker.create_publisher(msg_type, topic, 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(talker)
    executor.add_node(listener)
    try:
        deadline = time.monotonic() + timeout_s
        # Discovery takes a moment: publish until the first message arrives or time runs out.
        while not received and time.monotonic() < deadline:
            publisher.publish(message)
            _spin_until(executor, lambda: bool(received), 0.2)
    finally:
        executor.shutdown()
        talker.destroy_node()
        listener.destroy_node()
    assert received, f"no message arrived on {topic} within {timeout_s} s"
    return received[0]


def test_schedule_with_nested_assignments_roundtrips(ros_context):
    from hax_conn_ros.msg import DnnAssignment, Schedule

    sent = Schedule()
    sent.header.frame_id = "camera"
    sent.header.stamp.sec = 1764072000
    sent.format = "hax-conn-schedule/1"
    sent.objective = "latency"
    sent.dnns = [
        DnnAssignment(dnn="googlenet", assignment=["gpu"] * 4 + ["dla"] * 6,
                      group_last_layer=[9, 24, 38, 52, 66, 81, 94, 110, 124, 141]),
        DnnAssignment(dnn="alexnet", assignment=["dla"] + ["gpu"] * 7,
                      group_last_layer=[2, 6, 10, 14, 16, 19, 22, 23]),
    ]
    sent.predicted_ms = 1.93
    sent.max_transitions = 1
    sent.frames_in_flight = 2
    sent.profile_sha256 = "ab" * 32
    sent.summary = "googlenet starts on GPU, transitions to DLA after layer 52"

    got = _roundtrip(ros_context, Schedule, "hax_conn_test/schedule", sent)

    assert got == sent
    assert [d.dnn for d in got.dnns] == ["googlenet", "alexnet"]  # priority order is list order
    assert list(got.dnns[0].assignment) == ["gpu"] * 4 + ["dla"] * 6


def test_inference_result_arrays_roundtrip(ros_context):
    from hax_conn_ros.msg import InferenceResult

    sent = InferenceResult(dnn="resnet101", frame_set=7, class_ids=[281, 285, 282],
                           scores=[0.5, 0.25, 0.125], latency_ms=2.5, gpu_ms=1.5, dla_ms=0.75)
    got = _roundtrip(ros_context, InferenceResult, "hax_conn_test/result", sent)
    assert got == sent


def test_a_result_message_filled_again_equals_a_new_one(tmp_path):
    """The executor node fills its last published InferenceResult again (conversions)."""
    import numpy as np
    from std_msgs.msg import Header

    from hax_conn_core.feeder import Output
    from hax_conn_core.postprocess import make_postprocessor
    from hax_conn_ros.conversions import result_to_msg

    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"c{i}\n" for i in range(10)))
    posts = [make_postprocessor({"top_k": 3, "labels": str(labels)}, "net"),
             make_postprocessor({"kind": "raw"}, "net"), make_postprocessor(None, "net")]
    rng = np.random.default_rng(0)
    previous = None
    for step in range(6):
        header = Header(frame_id=f"f{step}")
        header.stamp.sec = step
        output = Output("net", step, 0, None, {"prob": rng.random((1, 10), np.float32)},
                        1.5 + step, {"gpu": 0.5, "dla": float(step)}, ("gpu", "dla")[step % 2],
                        label=step, weights=f"seeded:{step}")
        post = posts[step % 3]
        fresh = result_to_msg(output, header, post)
        previous = result_to_msg(output, header, post, previous)
        assert previous == fresh, step
        assert (len(fresh.class_ids), len(fresh.outputs)) == ((0, 1) if step % 3 == 1 else
                                                              (3 if step % 3 == 0 else 5, 0))

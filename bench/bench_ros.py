"""The ROS layer's cost: per-frame overhead over the bare runtime, parameter change -> schedule,
planner time. Results: docs/bench-ros.md.

    .venv/bin/python bench/bench_ros.py [--frames 150] [--changes 20] [--json out.json]

1. Overhead: one 224x224 rgb8 image at a time (the next after both results arrived), image
   published -> every DNN's InferenceResult received, through the nodes of `hax-conn bringup`
   (onnxruntime, the shipped CPU profile, alexnet + resnet18), against the bare runtime on the
   same schedule (preprocessed frames: submit -> frame-set result), rounds interleaved. The
   difference of the medians is the ROS layer (DDS both ways, conversion, preprocessing, the
   feeder's hand-over); its parts are also timed alone: preprocessing, and the DDS round trip
   of the image and of a result message between two nodes of the process.
2. Parameter change -> new schedule received (SetParameters on the planner, alternating two
   DNN sets: after the first two, both come from the planner's cache), and -> first result
   under it (engines cached in the runtime's pool after the first swap to a set).
3. Planner time of the shipped pair (profiles/xavier_googlenet_alexnet.json), after one warm-up
   run (Z3 imported), and the replan cache look-up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import threading
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PAIR = ["alexnet", "resnet18"]
OTHER = ["alexnet", "mobilenet_v1"]


def _stats(values_ms):
    values = sorted(values_ms)
    return {"median": float(np.median(values)), "p99": float(np.percentile(values, 99)),
            "count": len(values)}


def _wait(predicate, timeout_s=60.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("bench: waited too long")
        time.sleep(0.0002)


def bench(frames: int, changes: int, threads=None):
    import rclpy
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image

    from hax_conn_core import feeder as feeding
    from hax_conn_core.preprocess import to_input
    from hax_conn_ros import conversions
    from hax_conn_ros.bringup import make_nodes, spin
    from hax_conn_ros.msg import InferenceResult, Schedule
    from hax_conn_ros.planner_node import SCHEDULE_QOS

    os.environ["ROS_DOMAIN_ID"] = str(random.Random().randint(150, 200))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    rclpy.init()
    nodes = make_nodes(ROOT / "config" / "perception.yaml", log_level="warn")
    probe = Node("bench_probe")
    got, schedules, echo = {}, [], []
    for dnn in PAIR + OTHER:
        probe.create_subscription(InferenceResult, f"/hax_conn/{dnn}/result",
                                  lambda m: got.setdefault(m.header.frame_id, {}).__setitem__(
                                      m.dnn, (time.perf_counter(), m)), 50)
    probe.create_subscription(Schedule, "/planner/schedule",
                              lambda m: schedules.append((time.perf_counter(), m)), SCHEDULE_QOS)
    images = probe.create_publisher(Image, "/camera/image_raw", qos_profile_sensor_data)
    echo_pub = probe.create_publisher(Image, "/bench/echo", qos_profile_sensor_data)
    result_pub = probe.create_publisher(InferenceResult, "/bench/result_echo", 10)
    listener = Node("bench_listener")
    listener.create_subscription(Image, "/bench/echo", lambda m: echo.append(
        ("image", time.perf_counter())), qos_profile_sensor_data)
    listener.create_subscription(InferenceResult, "/bench/result_echo", lambda m: echo.append(
        ("result", time.perf_counter())), 10)
    spinner = threading.Thread(target=spin, args=(nodes + [probe, listener], None, threads),
                               daemon=True)
    spinner.start()
    pixels = np.random.default_rng(0).integers(0, 256, 224 * 224 * 3, dtype=np.uint8)
    image = Image(height=224, width=224, encoding="rgb8", step=672, data=pixels.tobytes())
    feeder = feeding.shared()[0]
    out = {}
    try:
        _wait(lambda: feeder.runtime is not None, 120)
        runtime = feeder.runtime
        shapes = {n: m.input_shape for n, m in feeder._models.items()}
        frame = {n: to_input(conversions.image_from_msg(image), s) for n, s in shapes.items()}
        ros_ms, bare_ms, count = [], [], 0

        def ros_frame():
            nonlocal count
            count += 1
            image.header.frame_id = f"b{count}"
            start = time.perf_counter()
            images.publish(image)
            _wait(lambda: len(got.get(image.header.frame_id, {})) == len(PAIR))
            return (max(t for t, _ in got[image.header.frame_id].values()) - start) * 1e3

        def bare_frame():
            # The runtime the nodes run, fed directly (the feeder is idle between frames; its
            # result callback counts the frame-set back down and publishes nothing: no tags).
            start = time.perf_counter()
            with feeder._cond:
                feeder._in_flight += 1
            runtime.submit(frame)
            runtime.flush()
            _wait(lambda: feeder.depth()[0] == 0)
            return (time.perf_counter() - start) * 1e3

        for _ in range(10):  # warm-up
            ros_frame()
            bare_frame()
        for _ in range(0, frames, 10):
            for _ in range(10):
                ros_ms.append(ros_frame())
            for _ in range(10):
                bare_ms.append(bare_frame())
        out["ros_ms"], out["bare_ms"] = _stats(ros_ms), _stats(bare_ms)
        out["overhead_ms"] = {"median": out["ros_ms"]["median"] - out["bare_ms"]["median"],
                              "p99": out["ros_ms"]["p99"] - out["bare_ms"]["p99"]}
        prep = []
        for _ in range(200):
            start = time.perf_counter()
            for shape in shapes.values():
                to_input(conversions.image_from_msg(image), shape)
            prep.append((time.perf_counter() - start) * 1e3)
        out["preprocess_ms_both_dnns"] = _stats(prep)
        for kind, publisher, msg in (("image", echo_pub, image),
                                     ("result", result_pub, InferenceResult(dnn="x"))):
            samples = []
            for _ in range(200):
                echo.clear()
                start = time.perf_counter()
                publisher.publish(msg)
                _wait(lambda: any(k == kind for k, _ in echo), 10)
                samples.append((echo[0][1] - start) * 1e3)
            out[f"dds_{kind}_ms"] = _stats(samples[20:])

        client = probe.create_client(SetParameters, "/planner/set_parameters")
        client.wait_for_service(timeout_sec=30)
        to_schedule, to_result, cached = [], [], []
        for i in range(changes):
            dnns = OTHER if i % 2 == 0 else PAIR
            seen = len(schedules)
            start = time.perf_counter()
            client.call_async(SetParameters.Request(parameters=[
                Parameter("dnns", value=dnns).to_parameter_msg()]))
            _wait(lambda: len(schedules) > seen)
            at, msg = schedules[-1]
            to_schedule.append((at - start) * 1e3)
            cached.append(msg.cached)
            # first result under it: keep publishing until one carries the new sequence
            while True:
                count += 1
                image.header.frame_id = f"c{count}"
                images.publish(image)
                _wait(lambda: len(got.get(image.header.frame_id, {})) >= 1, 60)
                results = got[image.header.frame_id].values()
                if any(m.schedule_sequence == msg.sequence for _, m in results):
                    break
            to_result.append((max(t for t, _ in results) - start) * 1e3)
        out["change_to_schedule_ms_cached"] = _stats([v for v, c in zip(to_schedule, cached)
                                                      if c])
        out["change_to_schedule_ms_planned"] = [v for v, c in zip(to_schedule, cached) if not c]
        out["change_to_first_result_ms_cached"] = _stats(
            [v for v, c in zip(to_result, cached) if c])
        out["change_to_first_result_ms_planned"] = [v for v, c in zip(to_result, cached)
                                                    if not c]
    finally:
        rclpy.try_shutdown()
        spinner.join(timeout=30)
    return out


def bench_planner(runs: int = 10):
    from hax_conn_core.planner import plan
    from hax_conn_core.profile import load_profile
    from hax_conn_core.replan import PlanRequest, Replanner

    profile = load_profile(ROOT / "profiles" / "xavier_googlenet_alexnet.json")
    start = time.perf_counter()
    plan(profile)
    first = (time.perf_counter() - start) * 1e3
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        plan(profile)
        times.append((time.perf_counter() - start) * 1e3)
    replanner = Replanner()
    request = PlanRequest(dnns=("googlenet", "alexnet"), profile="xavier_googlenet_alexnet.json")
    replanner.plan(request)
    looks = [replanner.plan(request).time_s * 1e3 for _ in range(runs)]
    return {"first_ms_with_z3_import": first, "plan_ms": _stats(times),
            "cached_ms": _stats(looks)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None,
                        help="MultiThreadedExecutor threads (default: rclpy's, the CPU count)")
    parser.add_argument("--json", metavar="OUT.json")
    args = parser.parse_args()
    report = {"date": date.today().isoformat(), "machine": f"{platform.machine()}, "
              f"{os.cpu_count()} cores, Python {platform.python_version()}",
              "executor_threads": args.threads or os.cpu_count(),
              "planner": bench_planner(), **bench(args.frames, args.changes, args.threads)}
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

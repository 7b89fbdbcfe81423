"""`hax-conn ros-demo`: the nodes on onnxruntime, camera images in, a DNN-set change live.

Starts the planner, both executors and the profiler in-process with config/perception.yaml
(onnxruntime, the shipped CPU profile), and a demo node that publishes 224x224 images on
/camera/image_raw. Then: results of the first set, a change of ``dnns`` through the planner's
SetParameters service (what `ros2 param set` calls), a refused change, and the switch back
(from the planner's cache); the schedules and per-DNN result latencies are printed. About a
minute on two cores.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Dict, List

import numpy as np

PHASE_S = 6.0
IMAGE_PERIOD_S = 0.1


class _Demo:
    def __init__(self, context):
        from rclpy.node import Node
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image

        from hax_conn_ros.msg import InferenceResult, Schedule
        from hax_conn_ros.planner_node import SCHEDULE_QOS

        self.node = Node("hax_conn_demo", context=context)
        self.results: List = []
        self.schedules: List = []
        self.lock = threading.Lock()
        for dnn in ("alexnet", "googlenet", "resnet18", "mobilenet_v1"):
            self.node.create_subscription(InferenceResult, f"/hax_conn/{dnn}/result",
                                          self._on_result, 50)
        self.node.create_subscription(Schedule, "/planner/schedule", self._on_schedule,
                                      SCHEDULE_QOS)
        self.images = self.node.create_publisher(Image, "/camera/image_raw",
                                                 qos_profile_sensor_data)
        pixels = np.random.default_rng(0).integers(0, 256, 224 * 224 * 3, dtype=np.uint8)
        self.image = Image(height=224, width=224, encoding="rgb8", step=224 * 3,
                           data=pixels.tobytes())
        self.image.header.frame_id = "camera"
        self.node.create_timer(IMAGE_PERIOD_S, self._publish)

    def _publish(self) -> None:
        self.image.header.stamp = self.node.get_clock().now().to_msg()
        self.images.publish(self.image)

    def _on_result(self, msg) -> None:
        with self.lock:
            self.results.append(msg)

    def _on_schedule(self, msg) -> None:
        self.schedules.append(msg)
        how = "from the planner's cache" if msg.cached else f"planned, {msg.status}"
        print(f"\nschedule {msg.sequence} ({how}, {msg.planning_ms:.1f} ms; predicted "
              f"{msg.predicted_ms:.1f} ms per frame-set):")
        for line in msg.summary.split("; "):
            print(f"  {line}")

    def set_dnns(self, dnns) -> None:
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        client = self.node.create_client(SetParameters, "/planner/set_parameters")
        if not client.wait_for_service(timeout_sec=30):
            raise RuntimeError("no /planner/set_parameters service after 30 s")
        request = SetParameters.Request(
            parameters=[Parameter("dnns", value=list(dnns)).to_parameter_msg()])
        future = client.call_async(request)
        deadline = time.monotonic() + 60
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.node.destroy_client(client)
        outcome = future.result().results[0] if future.done() else None
        print(f"\nros2 param set /planner dnns \"[{', '.join(dnns)}]\": "
              + ("accepted" if outcome and outcome.successful
                 else f"refused: {outcome.reason if outcome else 'no response'}"))

    def report(self, sequence: int, seconds: float) -> None:
        """Wait ``seconds`` (at least until a result of ``sequence``), then print latencies."""
        deadline = time.monotonic() + 120
        start = time.monotonic()
        while time.monotonic() < deadline and (time.monotonic() - start < seconds or not any(
                r.schedule_sequence == sequence for r in self.results)):
            time.sleep(0.1)
        with self.lock:
            mine = [r for r in self.results if r.schedule_sequence == sequence]
        per: Dict[str, List[float]] = {}
        for r in mine:
            per.setdefault(r.dnn, []).append(r.latency_ms)
        print(f"  results under schedule {sequence} (image received -> result, ms):")
        for dnn, values in per.items():
            print(f"    {dnn:13s} {len(values):3d} results, median {np.median(values):7.1f}, "
                  f"p95 {np.percentile(values, 95):7.1f}")


def run_demo() -> int:
    import rclpy

    from hax_conn_core.resources import data_dir
    from hax_conn_ros.bringup import make_nodes, spin

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    started = time.monotonic()
    rclpy.init(args=["hax-conn-demo"])
    spinner = None
    try:
        config = data_dir("config") / "perception.yaml"
        print(f"Starting planner, gpu_executor, dla_executor, profiler ({config}; onnxruntime, "
              "the shipped CPU profile), and 224x224 rgb8 images at 10 Hz on /camera/image_raw")
        demo = _Demo(None)
        nodes = make_nodes(config, log_level="warn") + [demo.node]
        spinner = threading.Thread(target=spin, args=(nodes,), daemon=True)
        spinner.start()
        demo.report(1, PHASE_S)
        demo.set_dnns(["alexnet", "mobilenet_v1"])
        demo.report(2, PHASE_S)
        demo.set_dnns(["alexnet", "yolo"])
        demo.set_dnns(["alexnet", "resnet18"])
        demo.report(3, PHASE_S / 2)
    finally:
        rclpy.try_shutdown()  # ends spin(), which destroys the nodes
        if spinner is not None:
            spinner.join(timeout=30)
    print(f"\nShut down cleanly after {time.monotonic() - started:.1f} s.")
    return 0

"""The profiler node: per-group timings of the executors, and DRAM (EMC) utilisation.

    ros2 run hax_conn_ros profiler --ros-args -p rate_hz:=2.0 -p emc_source:=nvml

Publishes ``hax_conn/layer_timings`` (LayerTimings: the median measured time of each group over
the recent frame-sets of the executors in this process) and ``hax_conn/emc`` (EmcUtilization:
jetson-stats on a Jetson, NVML on a discrete GPU, source ``unavailable`` with NaN otherwise) at
``rate_hz``. The executors' own figures go to /diagnostics from the executor nodes.
"""

from __future__ import annotations

from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor
from rclpy.node import Node

from hax_conn_core import feeder as feeding
from hax_conn_core.emc import EmcSampler, SOURCES
from hax_conn_core.runtime.results import group_medians
from hax_conn_ros.conversions import emc_to_msg, layer_timings_to_msg
from hax_conn_ros.msg import EmcUtilization, LayerTimings


class ProfilerNode(Node):
    """Samples at ``rate_hz`` and publishes (see the module docstring)."""

    def __init__(self, **kwargs):
        super().__init__("profiler", **kwargs)
        rate = ParameterDescriptor(description="samples per second", read_only=True,
                                   floating_point_range=[FloatingPointRange(
                                       from_value=0.01, to_value=100.0)])
        self.declare_parameter("rate_hz", 1.0, rate)
        self.declare_parameter("emc_source", "auto", ParameterDescriptor(
            description=f"EMC utilisation source: {', '.join(SOURCES)}", read_only=True))
        self._emc = EmcSampler(self.get_parameter("emc_source").value)
        self.get_logger().info(f"EMC utilisation from: {self._emc.source}")
        self._timings = self.create_publisher(LayerTimings, "hax_conn/layer_timings", 10)
        self._emc_publisher = self.create_publisher(EmcUtilization, "hax_conn/emc", 10)
        # One timer in the node's default group: sampling is short and never overlaps itself.
        self.create_timer(1.0 / self.get_parameter("rate_hz").value, self._sample)

    def _sample(self) -> None:
        stamp = self.get_clock().now().to_msg()
        peak = None
        for feeder in feeding.shared():
            profile = feeder.profile
            if profile is not None:
                peak = profile.device.peak_bandwidth_gbps
                medians = group_medians(list(_recent(feeder)))
                self._timings.publish(layer_timings_to_msg(medians, profile, stamp))
        self._emc_publisher.publish(emc_to_msg(self._emc.sample(peak), stamp))

    def destroy_node(self):
        self._emc.close()
        return super().destroy_node()


def _recent(feeder):
    """The feeder's recent group timings as results group_medians reads (one per frame-set)."""
    from hax_conn_core.runtime.results import FrameSetResult

    by_set = {}
    for timing in list(feeder.timings):
        by_set.setdefault(timing.frame_set, []).append(timing)
    for index, timings in by_set.items():
        yield FrameSetResult(index=index, schedule_id=0, results={}, released_s=0.0,
                             finished_s=0.0, timings=timings)


def main(args=None):
    from hax_conn_ros.bringup import run_nodes

    run_nodes(lambda: [ProfilerNode()], args)


if __name__ == "__main__":
    main()

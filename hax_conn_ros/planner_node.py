"""The planner node: plans the DNN set of its parameters and publishes it latched on ~/schedule.

    ros2 run hax_conn_ros planner --ros-args -p dnns:="[alexnet, resnet18]"
    ros2 param set /planner dnns "[alexnet, mobilenet_v1]"   # re-plans; a bad value is refused
    ros2 param set /planner objective throughput

Every change is checked in the on-set callback (hax_conn_core.replan: unknown DNN, empty list,
DNN not in the profile, bad objective, out-of-range numbers), refused with a reason while the
current schedule stays; an accepted one is planned in the post-set callback (plans are cached
per DNN set, so switching back is instant).
"""

from __future__ import annotations

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                ParameterType, SetParametersResult)
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from hax_conn_core.errors import HaxConnError
from hax_conn_core.replan import (FRAMES_IN_FLIGHT_RANGE, MAX_TRANSITIONS_RANGE, PlanRequest,
                                  Replanner, SOLVER_TIMEOUT_RANGE_S)
from hax_conn_ros.conversions import schedule_to_msg
from hax_conn_ros.msg import Schedule

#: Latched: late joiners (executors started later) get the current schedule at once.
SCHEDULE_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)
_D = PlanRequest()
PARAMETERS = {  # name: (default, type, description, range)
    "dnns": (list(_D.dnns), ParameterType.PARAMETER_STRING_ARRAY,
             "DNN ids to run together, in priority order (docs/conventions.md)", None),
    "objective": (_D.objective, ParameterType.PARAMETER_STRING,
                  "what the plan minimises: latency or throughput", None),
    "max_transitions": (_D.max_transitions, ParameterType.PARAMETER_INTEGER,
                        "most accelerator changes per DNN (the paper: 1)",
                        MAX_TRANSITIONS_RANGE),
    "profile": (_D.profile, ParameterType.PARAMETER_STRING,
                "profile file (hax-conn-profile/1): a path, or a shipped profile's name", None),
    "frames_in_flight": (_D.frames_in_flight, ParameterType.PARAMETER_INTEGER,
                         "frame-sets in flight for the throughput objective",
                         FRAMES_IN_FLIGHT_RANGE),
    "solver_timeout_s": (_D.solver_timeout_s, ParameterType.PARAMETER_DOUBLE,
                         "wall-clock limit of one planning, seconds", SOLVER_TIMEOUT_RANGE_S),
}


def descriptor(name: str, kind: int, text: str, bounds) -> ParameterDescriptor:
    """A descriptor with its description and, for numbers, its inclusive range."""
    desc = ParameterDescriptor(name=name, type=kind, description=text)
    if bounds and kind == ParameterType.PARAMETER_INTEGER:
        desc.integer_range = [IntegerRange(from_value=bounds[0], to_value=bounds[1], step=1)]
    elif bounds:
        desc.floating_point_range = [FloatingPointRange(from_value=float(bounds[0]),
                                                        to_value=float(bounds[1]))]
    if name == "objective":
        desc.additional_constraints = "latency or throughput"
    return desc


class PlannerNode(Node):
    """Plans on parameter changes and publishes the schedule (hax_conn_ros/Schedule)."""

    def __init__(self, **kwargs):
        super().__init__("planner", **kwargs)
        # Only the node's default (mutually exclusive) callback group: the parameter services
        # and the re-plan run one at a time, so the cache and the published schedule agree.
        for name, (default, kind, text, bounds) in PARAMETERS.items():
            self.declare_parameter(name, default, descriptor(name, kind, text, bounds))
        self._replanner = Replanner()
        self._sequence = 0
        self._publisher = self.create_publisher(Schedule, "~/schedule", SCHEDULE_QOS)
        self.add_on_set_parameters_callback(self._check)
        if hasattr(self, "add_post_set_parameters_callback"):  # Iron and newer
            self.add_post_set_parameters_callback(lambda _: self._replan())
        else:  # Humble: re-plan from a timer once the accepted values are set
            self._dirty = False
            self.create_timer(0.05, self._replan_if_dirty)
        self._replan()

    def _request(self, changed=()) -> PlanRequest:
        values = {name: self.get_parameter(name).value for name in PARAMETERS}
        values.update({p.name: p.value for p in changed if p.name in PARAMETERS})
        return PlanRequest(dnns=tuple(values["dnns"] or ()), objective=values["objective"],
                           max_transitions=values["max_transitions"],
                           profile=values["profile"],
                           frames_in_flight=values["frames_in_flight"],
                           solver_timeout_s=float(values["solver_timeout_s"]))

    def _check(self, parameters) -> SetParametersResult:
        try:
            self._replanner.check(self._request(parameters))
        except HaxConnError as error:
            self.get_logger().warning(f"refused: {error}; the current schedule stays")
            return SetParametersResult(successful=False, reason=str(error))
        self._dirty = True
        return SetParametersResult(successful=True)

    def _replan_if_dirty(self) -> None:
        if self._dirty:
            self._dirty = False
            self._replan()

    def _replan(self) -> None:
        try:
            replan = self._replanner.plan(self._request())
        except HaxConnError as error:
            self.get_logger().error(f"no schedule: {error}")
            return
        self._sequence += 1
        msg = schedule_to_msg(replan, self._sequence, self.get_clock().now().to_msg())
        self._publisher.publish(msg)
        how = "from the cache" if replan.cached else f"{replan.status}"
        self.get_logger().info(f"schedule {self._sequence} ({how}, "
                               f"{replan.time_s * 1e3:.1f} ms): {msg.summary}")


def main(args=None):
    from hax_conn_ros.bringup import run_nodes

    run_nodes(lambda: [PlannerNode()], args)


if __name__ == "__main__":
    main()

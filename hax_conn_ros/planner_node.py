"""The planner node: plans the DNN set of its parameters and publishes it latched on ~/schedule.

    ros2 run hax_conn_ros planner --ros-args -p dnns:="[alexnet, resnet18]"
    ros2 param set /planner dnns "[alexnet, mobilenet_v1]"   # re-plans; a bad value is refused
    ros2 param set /planner objective throughput

Every change is checked in the on-set callback (hax_conn_core.replan: unknown DNN, empty list,
DNN not in the profile, bad objective, out-of-range numbers), refused with a reason while the
current schedule stays; an accepted one is planned in the post-set callback (plans are cached
per DNN set, so switching back is instant). Users' models (read-only ``models``: .onnx or
.prototxt paths, hax_conn_core.graph.resolve) are named in ``dnns`` by path or by the name they
were registered under (the file's normalised stem); the executors read their files. Each
refusal is one log line and a /diagnostics status (``hax_conn: planner``).
"""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                ParameterType, SetParametersResult)
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from hax_conn_core.errors import HaxConnError
from hax_conn_core.graph.resolve import (is_model_path, register_model, registered_models,
                                         resolve_model)
from hax_conn_core.replan import (FRAMES_IN_FLIGHT_RANGE, MAX_TRANSITIONS_RANGE, PlanRequest,
                                  Replanner, SOLVER_TIMEOUT_RANGE_S)
from hax_conn_ros.conversions import schedule_to_msg
from hax_conn_ros.msg import Schedule

#: Latched: late joiners (executors started later) get the current schedule at once.
SCHEDULE_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)
_D = PlanRequest()
MODELS_TEXT = ("users' models: .onnx or .prototxt paths, named by their file's stem "
               "(docs/own-models.md)")
PARAMETERS = {  # name: (default, type, description, range)
    "dnns": (list(_D.dnns), ParameterType.PARAMETER_STRING_ARRAY,
             "DNNs to run together, in priority order: ids (docs/conventions.md), names of "
             "models, or model paths", None),
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
        # No default value: rclpy types an empty list as a byte array.
        self.declare_parameter("models", Parameter.Type.STRING_ARRAY, ParameterDescriptor(
            description=MODELS_TEXT, read_only=True))
        self._replanner = Replanner()
        self._sequence = 0
        self._refused = 0
        self._publisher = self.create_publisher(Schedule, "~/schedule", SCHEDULE_QOS)
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        for path in model_paths(self):
            try:
                self._name(path)
            except HaxConnError as error:
                self._report(f"models: {error}")
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
        return PlanRequest(dnns=tuple(self._name(n) for n in values["dnns"] or ()),
                           objective=values["objective"],
                           max_transitions=values["max_transitions"],
                           profile=values["profile"],
                           frames_in_flight=values["frames_in_flight"],
                           solver_timeout_s=float(values["solver_timeout_s"]))

    def _check(self, parameters) -> SetParametersResult:
        try:
            self._replanner.check(self._request(parameters))
        except HaxConnError as error:
            self._report(f"refused: {error}; the current schedule stays")
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
            self._report(f"no schedule: {error}")
            return
        self._sequence += 1
        msg = schedule_to_msg(replan, self._sequence, self.get_clock().now().to_msg())
        self._publisher.publish(msg)
        how = "from the cache" if replan.cached else f"{replan.status}"
        self.get_logger().info(f"schedule {self._sequence} ({how}, "
                               f"{replan.time_s * 1e3:.1f} ms): {msg.summary}")
        self._status(DiagnosticStatus.OK, f"schedule {self._sequence}: {msg.summary}")

    def _name(self, entry: str) -> str:
        """A ``dnns`` entry's DNN name: a path is registered (graph.resolve) and named by its
        file's stem; an id stays as it is (Replanner.check refuses unknown ones)."""
        if not is_model_path(entry):
            return entry
        source = resolve_model(entry)
        # Registered already (an executor of this process, with its input shape): keep that.
        if {m.id: m.path for m in registered_models()}.get(source.id) != source.path:
            register_model(entry)  # refuses a name a built-in or another file has
        return source.id

    def _report(self, line: str) -> None:
        """A refusal or failure: one log line and a WARN status on /diagnostics."""
        self._refused += 1
        self.get_logger().warning(line)
        self._status(DiagnosticStatus.WARN, line)

    def _status(self, level, message: str) -> None:
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        values = {"refused": self._refused, "schedule": self._sequence}
        msg.status = [DiagnosticStatus(level=level, name="hax_conn: planner",
                                       hardware_id="planner", message=message,
                                       values=[KeyValue(key=k, value=str(v))
                                               for k, v in values.items()])]
        self._diagnostics.publish(msg)


def model_paths(node) -> list:
    """The node's ``models`` parameter (users' model paths), [] when not set."""
    from rclpy.exceptions import ParameterUninitializedException

    try:
        return [p for p in node.get_parameter("models").value if p]
    except ParameterUninitializedException:
        return []


def main(args=None):
    from hax_conn_ros.bringup import run_nodes

    run_nodes(lambda: [PlannerNode()], args)


if __name__ == "__main__":
    main()

"""The GPU and DLA executor nodes: one class, parameterised by accelerator (two executables).

    ros2 run hax_conn_ros gpu_executor --ros-args -p alexnet.image_topic:=/cam0/image_raw

Both nodes of one process share one runtime (hax_conn_core.feeder.acquire), so that their
engines share device memory. The DNNs whose first group runs on a node's accelerator read
their images from the topics its parameters name; one node of the process (the first by
accelerator name) holds the subscriptions of all of them, one per topic, so that an image two
nodes' DNNs read is taken and converted once. Each node publishes the results of the DNNs whose
last group runs on its accelerator (on ``hax_conn/<dnn>/result``), and reports its figures on
/diagnostics. A lone executor in its process does all of it. A new schedule
(``planner/schedule``) takes effect between frame-sets. Users' models (read-only ``models``,
paths; per model ``<name>.input_shape`` beside the built-ins' keys) are registered and read at
start through hax_conn_core.graph.resolve and runtime.models.load_model; one that cannot be read
is one log line and a /diagnostics entry, and schedules run without it (the other DNNs keep
running).
"""

from __future__ import annotations

import threading
import time
from collections import deque

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from hax_conn_core import feeder as feeding
from hax_conn_core.errors import ConfigError, HaxConnError
from hax_conn_core.model_set import ModelSet
from hax_conn_core.models import known_ids
from hax_conn_core.postprocess import make_postprocessor
from hax_conn_core.replan import Replanner
from hax_conn_ros import conversions
from hax_conn_ros.msg import InferenceResult, Schedule
from hax_conn_ros.planner_node import MODELS_TEXT, SCHEDULE_QOS, model_paths

DEFAULT_IMAGE_TOPIC = "/camera/image_raw"
OUTPUTS = {  # <dnn>.outputs.<key>: (default, description); docs/outputs.md
    "kind": ("classify", "classify (top-k classes) or raw (every output tensor)"),
    "top_k": (5, "classes per result, for classify"),
    "labels": ("", "labels file, one class name per line ('' = indices only)"),
}
PARAMETERS = {  # name: (default, description)
    "backend": ("onnxruntime", "accelerator runtime: onnxruntime, cuda-sm or tensorrt"),
    "device": ("", "device description id or .yaml path ('' = the backend's own)"),
    "schedule_topic": ("planner/schedule", "the planner's latched schedule topic"),
    "diagnostics_period_s": (1.0, "seconds between /diagnostics updates"),
    **{f"{dnn}.image_topic": (DEFAULT_IMAGE_TOPIC, f"sensor_msgs/Image input of {dnn}")
       for dnn in known_ids()},
    **{f"{dnn}.outputs.{key}": (default, f"{dnn}'s results: {text}")
       for dnn in known_ids() for key, (default, text) in OUTPUTS.items()},
    **{f"{dnn}.weights": ("", f"{dnn}'s weights file (.caffemodel, .onnx); '' = seeded")
       for dnn in known_ids()},
}


#: The executor nodes of each process's feeder, by accelerator: the first of them holds the
#: image subscriptions of all (ExecutorNode._subscribe).
_NODES: dict = {}
_NODES_LOCK = threading.Lock()


def model_parameters(name: str) -> dict:
    """The per-model parameters of a user's model ``name`` (declared from ``models``)."""
    return {f"{name}.image_topic": (DEFAULT_IMAGE_TOPIC, f"sensor_msgs/Image input of {name}"),
            **{f"{name}.outputs.{key}": (default, f"{name}'s results: {text}")
               for key, (default, text) in OUTPUTS.items()},
            f"{name}.weights": ("", f"{name}'s weights: a prototxt's .caffemodel ('' = seeded; "
                                    "an ONNX model has its own)"),
            f"{name}.input_shape": ("", f"{name}'s input shape NxCxHxW, for a dynamic ONNX "
                                        "input ('' = the model's own)")}


class ExecutorNode(Node):
    """Runs its accelerator's share of the current schedule (see the module docstring)."""

    def __init__(self, accelerator: str, **kwargs):
        super().__init__(f"{accelerator}_executor", **kwargs)
        for name, (default, text) in PARAMETERS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=text,
                                                                      read_only=True))
        self.accelerator = accelerator
        value = self.get_parameter
        self._models = ModelSet(log=self.get_logger().error)  # users' models, and bad ones
        names = list(known_ids()) + self._register_models()
        try:  # a bad outputs setting stops the node here, before it holds a runtime
            self._post = {dnn: make_postprocessor(
                {key: value(f"{dnn}.outputs.{key}").value for key in OUTPUTS}, dnn,
                where=f"{self.get_name()}: {dnn}.outputs") for dnn in names}
        except ConfigError:
            Node.destroy_node(self)
            raise
        self._unfit = feeding.Unpublished()  # results an outputs setting did not fit
        weights = {dnn: value(f"{dnn}.weights").value for dnn in names
                   if value(f"{dnn}.weights").value}
        self._feeder = feeding.acquire(value("backend").value, value("device").value or None,
                                       log=self.get_logger(), weights=weights,
                                       freeze_gc=True)  # the process is ours (gc_pause.py)
        if self._feeder.weights != weights:  # the process's other executor came first
            self.get_logger().warning(f"weights {weights} differ from the other executor's "
                                      f"{self._feeder.weights}, which the shared runtime uses")
        self._models.load(names[len(known_ids()):], self._feeder.seed, self._feeder.weights)
        self._feeder.hosts.add(accelerator)
        self._feeder.add_listener(self._publish_result)
        self._profiles = Replanner()
        self._results = {}
        # dnn -> the InferenceResult last published for it, filled again for the next result
        # (taken out while in use: two frame-sets may complete in two runtime threads at once).
        self._spare = {}
        self._inputs = {}  # topic -> (subscription, [dnn, ...])
        self._firsts = []  # (dnn, accelerator of its first group) of the current schedule
        self._subscribing = threading.Lock()  # a leaving sibling may call _subscribe too
        #: (dnn, frame_set, {hop: perf_counter()}) of recent published results: the feeder's
        #: hops plus ``received`` (image callback entered), ``built``, ``published`` (bench).
        self.hops = deque(maxlen=feeding.HISTORY)
        # Images in their own mutually exclusive group: their callbacks only hand the newest
        # image on (inference runs on the runtime's threads), so under a MultiThreadedExecutor
        # (bringup --executor multi) a schedule change or a diagnostics update never waits
        # behind a burst of images, nor they behind it. The default single-threaded executor
        # runs every callback in turn; each is short, so none waits long.
        self._image_group = MutuallyExclusiveCallbackGroup()
        # Schedule changes and diagnostics in another: both create or read the node's state.
        self._control_group = MutuallyExclusiveCallbackGroup()
        self.create_subscription(Schedule, value("schedule_topic").value, self._on_schedule,
                                 SCHEDULE_QOS, callback_group=self._control_group)
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(value("diagnostics_period_s").value, self._publish_diagnostics,
                          callback_group=self._control_group)
        with _NODES_LOCK:
            _NODES.setdefault(self._feeder, {})[accelerator] = self

    def _register_models(self) -> list:
        """Declare the parameters of the users' models (``models``) and register each with its
        input shape and weights; the names registered (the others are in ``_models.bad``)."""
        self.declare_parameter("models", Parameter.Type.STRING_ARRAY, ParameterDescriptor(
            description=MODELS_TEXT, read_only=True))
        names = []
        for path in model_paths(self):
            name = self._models.name_of(path)
            if name is None:
                continue
            for key, (default, text) in model_parameters(name).items():
                if not self.has_parameter(key):
                    self.declare_parameter(key, default, ParameterDescriptor(
                        description=text, read_only=True))
            if self._models.register(path, self.get_parameter(f"{name}.weights").value,
                                     self.get_parameter(f"{name}.input_shape").value):
                names.append(name)
        return names

    def _on_schedule(self, msg) -> None:
        try:
            profile = self._profiles.load_profile(msg.profile).subset([d.dnn for d in msg.dnns])
        except HaxConnError as error:
            self.get_logger().error(f"schedule {msg.sequence} refused: {error}")
            return
        if msg.profile_sha256 and profile.sha256 != msg.profile_sha256:
            self.get_logger().error(f"schedule {msg.sequence} refused: profile {msg.profile} "
                                    "is not the one it was planned on (sha256 differs)")
            return
        schedule, profile, dropped = self._models.trim(conversions.schedule_from_msg(msg),
                                                       profile)
        if dropped:  # the other DNNs keep running; the reasons are on /diagnostics
            self.get_logger().warning(f"schedule {msg.sequence}: runs without "
                                      f"{', '.join(dropped)} (not loaded)")
        if schedule is None:
            return
        for d in msg.dnns:
            if d.dnn in dropped:
                continue
            if d.dnn not in self._results:
                self._results[d.dnn] = self.create_publisher(
                    InferenceResult, f"hax_conn/{d.dnn}/result", 10)
        self._firsts = [(d.dnn, d.assignment[0]) for d in msg.dnns if d.dnn not in dropped]
        self._subscribe()
        self._feeder.set_schedule(schedule, profile, msg.sequence)

    def _mine(self, accelerator: str) -> bool:
        return self._feeder.owner(accelerator) == self.accelerator

    def _subscribe(self) -> None:
        """Subscribe to the image topics of the current schedule's DNNs, when this node is the
        first of its process's executor nodes; else to none.

        Two subscriptions of one topic in one process (a DNN starting on each accelerator
        reading the same camera) would each take and convert every image, the frame-set would
        wait for the second callback (0.2 ms), and two image objects would each be
        preprocessed where one input serves DNNs of one input shape (the feeder shares it):
        together about 0.5 of the 1.7 ms per-frame overhead (docs/bench-ros.md). Each DNN's
        topic is still the one its node's parameters name (the node of its first group's
        accelerator), resolved by that node."""
        with _NODES_LOCK:
            nodes = dict(_NODES.get(self._feeder, {}))
        with self._subscribing:
            self._subscribe_to(nodes)

    def _subscribe_to(self, nodes) -> None:
        wanted = {}
        if min(nodes, default=self.accelerator) == self.accelerator:
            for dnn, first in self._firsts:
                node = nodes.get(self._feeder.owner(first), self)
                key = f"{dnn}.image_topic"
                if not node.has_parameter(key):  # a model only this node knows of
                    node = self
                topic = node.resolve_topic_name(node.get_parameter(key).value)
                wanted.setdefault(topic, []).append(dnn)
        for topic in [t for t in self._inputs if t not in wanted]:
            self.destroy_subscription(self._inputs.pop(topic)[0])
        for topic, names in wanted.items():
            if topic in self._inputs:
                self._inputs[topic][1][:] = names
                continue
            self._inputs[topic] = (self.create_subscription(
                Image, topic, lambda msg, names=names: self._on_image(msg, names),
                qos_profile_sensor_data, callback_group=self._image_group), names)

    def _on_image(self, msg, names) -> None:
        received = time.perf_counter()
        # All of this topic's DNNs at once: a frame-set this completes is submitted right here
        # when the runtime has a slot free (no hand-over to the feeder thread).
        self._feeder.offer_many(names, conversions.image_from_msg(msg), (msg.header, received))

    def _publish_result(self, output) -> None:
        publisher = self._results.get(output.dnn)
        if publisher is None or not self._mine(output.last_accelerator):
            return
        try:
            header, received = output.tag
            msg = conversions.result_to_msg(output, header, self._post.get(output.dnn),
                                            self._spare.pop(output.dnn, None))
        except ConfigError as error:  # e.g. top_k above the class count
            if self._unfit.add(output.dnn, str(error)):  # one log line; /diagnostics counts
                self.get_logger().error(f"results of {output.dnn} not published: {error}")
            return
        built = time.perf_counter()
        try:
            publisher.publish(msg)  # converted and written before it returns: msg is free again
        except Exception:  # noqa: BLE001 - re-raised unless the context is shut down
            # A frame-set still in flight at shutdown. Asked only here, not before each result:
            # Context.ok() costs 0.05 ms with cold caches, 0.002 ms warm (docs/bench-ros.md).
            if self.context.ok():
                raise
            return
        self._spare[output.dnn] = msg
        self.hops.append((output.dnn, output.frame_set, {
            **output.hops, "received": received, "built": built,
            "published": time.perf_counter()}))

    def _publish_diagnostics(self) -> None:
        schedule = self._feeder.schedule
        mine = [n for n, accs in schedule.assignments.items() if self._mine(accs[0])] \
            if schedule is not None else []
        stats = feeding.with_errors({n: s for n, s in self._feeder.stats().items() if n in mine},
                                    self._unfit, self._models.bad)
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [conversions.diagnostic_status(
            f"hax_conn: {self.get_name()}", self.accelerator, stats, self._feeder.depth(),
            ", ".join(schedule.assignments) if schedule is not None else None)]
        self._diagnostics.publish(msg)

    def destroy_node(self):
        # The runtime holds the engines (device memory): the last node of the process frees it.
        self._feeder.remove_listener(self._publish_result)
        self._feeder.hosts.discard(self.accelerator)
        with _NODES_LOCK:
            nodes = _NODES.get(self._feeder, {})
            if nodes.get(self.accelerator) is self:
                del nodes[self.accelerator]
            if not nodes:
                _NODES.pop(self._feeder, None)
            successor = nodes[min(nodes)] if nodes else None
        feeding.release(self._feeder)
        for topic in list(self._inputs):  # before the successor subscribes to them
            self.destroy_subscription(self._inputs.pop(topic)[0])
        if successor is not None and successor._firsts and self.context.ok():
            try:  # it takes the images over (a node leaving a process that keeps running)
                successor._subscribe()
            except Exception as error:  # noqa: BLE001 - the process is shutting down
                self.get_logger().warning(f"images not handed to {successor.get_name()}: "
                                          f"{error}")
        return super().destroy_node()


def main_gpu(args=None):
    from hax_conn_ros.bringup import run_nodes

    run_nodes(lambda: [ExecutorNode("gpu")], args)


def main_dla(args=None):
    from hax_conn_ros.bringup import run_nodes

    run_nodes(lambda: [ExecutorNode("dla")], args)


if __name__ == "__main__":
    main_gpu()

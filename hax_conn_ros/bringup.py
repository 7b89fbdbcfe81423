"""The nodes of launch/perception.launch.py in one process, without `ros2 launch`.

``make_nodes(config_path, namespace, backend, context)`` builds the planner, the GPU and DLA
executors and the profiler with the parameters of a ROS parameters file (the launch file's
``config/perception.yaml``), then the overrides (``backend``), as launch_ros would: later
entries win. ``spin(nodes, context)`` runs them in one executor (``make_executor``: rclpy's
SingleThreadedExecutor unless told otherwise, the fastest here: docs/bench-ros.md).
``main_executors`` is the ``executors`` executable: both executors and the profiler in one
process (what the launch file starts, so that the executors share one runtime), parameters
from ``--ros-args``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

from hax_conn_core.errors import ConfigError

NODE_NAMES = ("planner", "gpu_executor", "dla_executor", "profiler")


def read_parameters(path, node: str, namespace: str = "") -> Dict[str, Any]:
    """The parameters ``path`` (a ROS 2 parameters YAML) gives node ``node``: entries for
    ``/**`` first, then the node's own (``node``, ``/node`` or ``/namespace/node``); nested
    keys flattened with dots (``alexnet: {image_topic: ...}`` -> ``alexnet.image_topic``)."""
    import yaml

    try:
        document = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"config {path}: cannot read it: {error}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"config {path}: expected a mapping of node names to "
                          "{ros__parameters: ...}")
    full = "/" + "/".join(p for p in (namespace.strip("/"), node) if p)
    values: Dict[str, Any] = {}
    for key in dict.fromkeys(("/**", node, "/" + node, full)):
        entry = document.get(key)
        if entry is None:
            continue
        params = entry.get("ros__parameters") if isinstance(entry, dict) else None
        if not isinstance(params, dict):
            raise ConfigError(f"config {path}: {key}: expected a 'ros__parameters' mapping")
        values.update(_flatten(params))
    return values


def _flatten(params: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def make_nodes(config_path, namespace: str = "", backend: Optional[str] = None,
               context=None, log_level: Optional[str] = None) -> List[Any]:
    """The four nodes with their parameters from ``config_path`` (see the module docstring)."""
    import rclpy
    from rclpy.parameter import Parameter

    from hax_conn_ros.executor_node import ExecutorNode
    from hax_conn_ros.planner_node import PlannerNode
    from hax_conn_ros.profiler_node import ProfilerNode

    def options(node: str) -> Dict[str, Any]:
        values = read_parameters(config_path, node, namespace)
        if backend and node.endswith("_executor"):
            values["backend"] = backend
        return dict(context=context, namespace=namespace or None,
                    parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])

    if log_level:  # before the nodes exist, so that their first lines obey it too
        level = getattr(rclpy.logging.LoggingSeverity, log_level.upper())
        for name in NODE_NAMES:
            rclpy.logging.set_logger_level(".".join(p for p in (namespace.strip("/"), name)
                                                    if p), level)
    nodes: List[Any] = []
    try:
        nodes.append(PlannerNode(**options("planner")))
        for acc in ("gpu", "dla"):
            nodes.append(ExecutorNode(acc, **options(f"{acc}_executor")))
        nodes.append(ProfilerNode(**options("profiler")))
    except BaseException:
        for node in nodes:
            node.destroy_node()
        raise
    return nodes


#: The executors ``make_executor`` offers. rclpy.experimental.EventsExecutor (Kilted) is not
#: one: its spin starves every other Python thread here (the feeder's, the runtime's), so no
#: frame-set is ever submitted; Humble has none.
EXECUTORS = ("single", "multi")


def make_executor(kind: str = "single", context=None, threads: Optional[int] = None):
    """An rclpy executor: ``single`` (SingleThreadedExecutor, the default) or ``multi``
    (MultiThreadedExecutor, ``threads`` defaulting to rclpy's, the CPU count).

    Single-threaded is enough and the fastest: the nodes' callbacks only hand an image on or
    swap state (inference runs on the runtime's threads, results are published from there),
    and rclpy's MultiThreadedExecutor delivers a 224x224 Image 10-50x slower here."""
    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor

    if kind == "single":
        return SingleThreadedExecutor(context=context)
    if kind == "multi":
        return MultiThreadedExecutor(num_threads=threads, context=context)
    raise ConfigError(f"executor {kind!r}: expected one of {', '.join(EXECUTORS)}")


def spin(nodes, context=None, threads: Optional[int] = None, executor: str = "single") -> None:
    """Spin ``nodes`` in one executor (:func:`make_executor`) until shutdown (Ctrl-C, SIGTERM);
    then destroy them. A signal is a normal end."""
    from rclpy.executors import ExternalShutdownException

    from hax_conn_core.runtime.gc_pause import freeze_startup_objects

    executor = make_executor(executor, context, threads)
    try:
        for node in nodes:
            executor.add_node(node)
        # Everything made at start-up (the nodes, rclpy's types) leaves the collector's
        # generations: a full collection in the frame loop walks only what the loop made.
        freeze_startup_objects()
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown(timeout_sec=5)
        for node in nodes:
            node.destroy_node()


def run_nodes(make, args=None) -> None:
    """A node file's main(): rclpy.init, the nodes ``make()`` returns, spin, Ctrl-C and an
    external shutdown as a normal end, shut down in ``finally`` (Humble's form)."""
    import rclpy
    from rclpy.executors import ExternalShutdownException

    rclpy.init(args=args)
    try:
        spin(make())
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        rclpy.try_shutdown()


def main_executors(args=None) -> None:
    """The ``executors`` executable: GPU + DLA executors and the profiler, one process."""
    from hax_conn_ros.executor_node import ExecutorNode
    from hax_conn_ros.profiler_node import ProfilerNode

    run_nodes(lambda: [ExecutorNode("gpu"), ExecutorNode("dla"), ProfilerNode()], args)


if __name__ == "__main__":
    main_executors()

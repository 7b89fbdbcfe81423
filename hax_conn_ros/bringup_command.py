"""`hax-conn bringup`, registered from the ROS package so that hax_conn_core never imports ROS.

setup.py lists it in the ``hax_conn.commands`` entry-point group, which the core's CLI reads.
"""

from __future__ import annotations

import argparse
import signal

from hax_conn_core.cli.base import Command

LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")


class BringupCommand(Command):
    """Start the planner, executor and profiler nodes in one process, without `ros2 launch`.

    The same nodes and parameters as launch/perception.launch.py (a ROS parameters file, then
    --backend), spun in one multi-threaded executor until Ctrl-C or SIGTERM. For pip-based
    setups, where launch and launch_ros are not installed (docs/ros.md).

    Examples:
      hax-conn bringup --config config/perception.yaml
      hax-conn bringup --config config/perception.yaml --namespace robot1 --log-level debug
      hax-conn bringup --config config/perception.yaml --ros-args -r /camera/image_raw:=/cam0
    """

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from hax_conn_core.runtime.backends import known_backends

        parser.add_argument("--config", default=None, metavar="PARAMS.yaml",
                            help="ROS 2 parameters file (default: the shipped "
                                 "config/perception.yaml)")
        parser.add_argument("--namespace", default="", metavar="NS",
                            help="namespace of every node (default: none)")
        parser.add_argument("--backend", default=None, choices=known_backends(),
                            help="override the executors' backend parameter")
        parser.add_argument("--log-level", default="info", choices=LOG_LEVELS,
                            help="logging level of the nodes (default: info)")
        parser.add_argument("--executor", default="single", choices=("single", "multi"),
                            help="rclpy executor: single (SingleThreadedExecutor, the fastest "
                                 "here) or multi (MultiThreadedExecutor); docs/ros.md")
        parser.add_argument("--ros-args", nargs=argparse.REMAINDER, default=None,
                            dest="ros_args", help="the rest goes to rclpy (remappings, ...)")

    def run(self, args: argparse.Namespace) -> int:
        import rclpy

        from hax_conn_core.resources import data_dir
        from hax_conn_ros.bringup import make_nodes, read_parameters, spin

        config = args.config or str(data_dir("config") / "perception.yaml")
        read_parameters(config, "planner")  # a bad file: one line, exit status 2
        ros_args = ["--ros-args", *args.ros_args] if args.ros_args else []
        rclpy.init(args=["hax-conn", *ros_args])
        # SIGTERM ends the process like Ctrl-C (rclpy on Humble handles SIGINT only).
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            nodes = make_nodes(config, args.namespace, args.backend, log_level=args.log_level)
            print(f"hax-conn bringup: {', '.join(n.get_fully_qualified_name() for n in nodes)} "
                  f"running ({config}); Ctrl-C to stop", flush=True)
            spin(nodes, executor=args.executor)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            rclpy.try_shutdown()
        print("hax-conn bringup: stopped", flush=True)
        return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt

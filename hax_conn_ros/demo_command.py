"""`hax-conn ros-demo`, registered from the ROS package (setup.py's ``hax_conn.commands``
entry point) so that hax_conn_core never imports ROS."""

from hax_conn_core.cli.base import Command


class RosDemoCommand(Command):
    """Bring the ROS 2 nodes up on the CPU, feed them images, swap the DNN set live.

    Starts the planner, GPU and DLA executors and profiler in one process on onnxruntime with
    the shipped CPU profile, publishes camera images, changes the DNN set through the planner's
    parameter service (once refused, once back from the plan cache), prints the schedules and
    per-DNN result latencies, and shuts down (docs/ros.md).
    """

    def run(self, args) -> int:
        from hax_conn_ros.demo import run_demo

        return run_demo()

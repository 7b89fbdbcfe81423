"""`hax-conn bringup`, registered from the ROS package so that hax_conn_core never imports ROS.

setup.py lists it in the ``hax_conn.commands`` entry-point group, which the core's CLI reads.
"""

from hax_conn_core.cli.base import PendingCommand


class BringupCommand(PendingCommand):
    """Start the planner, executor and profiler nodes without `ros2 launch` (pip-based setups).

    Not available in this version yet: it arrives with the ROS nodes issue.
    """

    arrives_with = "the ROS nodes issue"

"""Start hax_conn_ros: the planner, and the GPU + DLA executors with the profiler in one process.

    ros2 launch hax_conn_ros perception.launch.py
    ros2 launch hax_conn_ros perception.launch.py namespace:=robot1 backend:=tensorrt \\
        config:=/path/to/my_perception.yaml log_level:=debug

Parameters come from the config file (default: the package's config/perception.yaml), then the
overrides below (later entries win, launch_ros's Node rule). The executors and the profiler run
in one process (the ``executors`` executable) so that both executors share one runtime and its
device memory. Without ``ros2 launch`` (pip-based setups): ``hax-conn bringup --config ...``
starts the same nodes with the same parameters (docs/ros.md).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    share = get_package_share_directory("hax_conn_ros")
    config = LaunchConfiguration("config")
    namespace = LaunchConfiguration("namespace")
    backend = LaunchConfiguration("backend")
    log_level = LaunchConfiguration("log_level")
    ros_arguments = ["--log-level", log_level]
    return LaunchDescription([
        DeclareLaunchArgument(
            "config", default_value=os.path.join(share, "config", "perception.yaml"),
            description="ROS 2 parameters file of the planner, executors and profiler"),
        DeclareLaunchArgument(
            "namespace", default_value="",
            description="namespace of every node (results on <namespace>/hax_conn/<dnn>/result)"),
        DeclareLaunchArgument(
            "backend", default_value="onnxruntime",
            description="executors' accelerator runtime: onnxruntime, cuda-sm or tensorrt"),
        DeclareLaunchArgument(
            "log_level", default_value="info",
            description="logging level of the nodes: debug, info, warn, error or fatal"),
        Node(
            package="hax_conn_ros", executable="planner", name="planner",
            namespace=namespace, parameters=[config], ros_arguments=ros_arguments,
            output="screen"),
        Node(
            package="hax_conn_ros", executable="executors",
            namespace=namespace, parameters=[config, {"backend": backend}],
            ros_arguments=ros_arguments, output="screen"),
    ])

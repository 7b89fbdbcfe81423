"""pip install of hax_conn (development setup and plain Python use).

On a ROS 2 install, colcon builds this package with CMakeLists.txt (ament_cmake), which also
generates the messages in msg/; it ignores this file. ``make setup`` uses it for an editable
install into .venv that provides the ``hax-conn`` command and the node executables.
"""

from glob import glob

from setuptools import find_packages, setup

NODE_EXECUTABLES = [
    # name = module:function; CMakeLists.txt installs the same names (scripts/nodes/) into
    # lib/hax_conn_ros for `ros2 run` and launch files.
    "planner = hax_conn_ros.planner_node:main",
    "gpu_executor = hax_conn_ros.executor_node:main_gpu",
    "dla_executor = hax_conn_ros.executor_node:main_dla",
    "executors = hax_conn_ros.bringup:main_executors",
    "profiler = hax_conn_ros.profiler_node:main",
]

setup(
    name="hax_conn",
    version="0.1.0",
    description="Shared memory-contention-aware concurrent DNN execution on GPU + DLA SoCs",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["hax_conn_core", "hax_conn_core.*",
                                    "hax_conn_ros", "hax_conn_ros.*"]),
    # Shipped data goes where an ament install puts it, <prefix>/share/hax_conn_ros/, which is
    # where hax_conn_core.resources looks outside a source tree.
    data_files=[
        ("share/hax_conn_ros/prototxts", sorted(glob("prototxts/*.prototxt"))),
        ("share/hax_conn_ros/profiles", sorted(glob("profiles/*.json"))),
        ("share/hax_conn_ros/config/devices", sorted(glob("config/devices/*.yaml"))),
        ("share/hax_conn_ros/config", ["config/perception.yaml"]),
        ("share/hax_conn_ros/launch", sorted(glob("launch/*.launch.py"))),
    ],
    install_requires=["numpy", "rich", "protobuf", "PyYAML"],
    extras_require={
        "plan": ["z3-solver"],
        "onnx": ["onnx", "onnxruntime"],
        "plot": ["matplotlib"],
    },
    entry_points={
        "console_scripts": ["hax-conn = hax_conn_core.cli.main:main"] + NODE_EXECUTABLES,
        # Subcommands contributed by packages other than the core (which never imports ROS).
        "hax_conn.commands": ["bringup = hax_conn_ros.bringup_command:BringupCommand",
                              "ros-demo = hax_conn_ros.demo_command:RosDemoCommand"],
    },
)

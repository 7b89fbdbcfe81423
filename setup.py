"""pip install of hax_conn (development setup and plain Python use).

On a ROS 2 install, colcon builds this package with CMakeLists.txt (ament_cmake), which also
generates the messages in msg/; it ignores this file. ``make setup`` uses it for an editable
install into .venv that provides the ``hax-conn`` command and the node executables.
"""

from setuptools import find_packages, setup

NODE_EXECUTABLES = [
    # name = module:function; CMakeLists.txt installs the same names into lib/hax_conn_ros.
]

setup(
    name="hax_conn",
    version="0.1.0",
    description="Shared memory-contention-aware concurrent DNN execution on GPU + DLA SoCs",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["hax_conn_core", "hax_conn_core.*",
                                    "hax_conn_ros", "hax_conn_ros.*"]),
    package_data={"hax_conn_core": ["**/*.proto", "**/*.json"]},
    install_requires=["numpy", "rich", "protobuf"],
    extras_require={
        "plan": ["z3-solver"],
        "onnx": ["onnx", "onnxruntime"],
        "plot": ["matplotlib"],
    },
    entry_points={
        "console_scripts": ["hax-conn = hax_conn_core.cli.main:main"] + NODE_EXECUTABLES,
        # Subcommands contributed by packages other than the core (which never imports ROS).
        "hax_conn.commands": ["bringup = hax_conn_ros.bringup_command:BringupCommand"],
    },
)

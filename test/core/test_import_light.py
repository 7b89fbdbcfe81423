"""`import hax_conn_core` (every module of it) works on a bare machine and never loads ROS.

Heavy frameworks are imported where they are used (conventions.md, "Where things run"), so the
CLI starts fast and the core runs where only numpy is installed.
"""

import json
import subprocess
import sys

HEAVY = ("rclpy", "rosidl_runtime_py", "hax_conn_ros", "launch", "launch_ros", "z3", "torch",
         "tensorrt", "pycuda", "onnx", "onnxruntime", "matplotlib")

PROBE = """
import importlib, json, pkgutil, sys
import hax_conn_core
names = [m.name for m in pkgutil.walk_packages(hax_conn_core.__path__, "hax_conn_core.")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "loaded": sorted(
    n for n in sys.modules if n.split(".")[0] in %r)}))
"""


def test_importing_every_core_module_loads_no_ros_and_no_heavy_framework():
    out = subprocess.run([sys.executable, "-c", PROBE % (HEAVY,)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert "hax_conn_core.cli.main" in report["modules"]
    assert report["loaded"] == [], f"imported at module level: {report['loaded']}"

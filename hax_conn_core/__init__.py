"""hax_conn core: model graphs, profiles, contention, planning and runtimes for concurrent DNNs.

Plain Python: nothing here imports ROS, and heavy frameworks (z3, torch, tensorrt, onnxruntime)
are imported where they are used, so `import hax_conn_core` works on a bare machine.
"""

__version__ = "0.1.0"

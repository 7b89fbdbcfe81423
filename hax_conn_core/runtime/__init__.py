"""Running schedules: backends behind one interface, the engine cache, lockstep executors.

Modules: :mod:`.backends` (the interface and one module per backend), :mod:`.device` (runtime
device descriptions), :mod:`.cache` (engines on disk), :mod:`.models` (graphs and weights of
the DNNs to run), :mod:`.segments` (a profile's groups as ranges of a graph), :mod:`.executor`
(one executor per accelerator, in lockstep), :mod:`.session` (a schedule running over a
stream of frame-sets, swappable). docs/runtime.md describes them. Nothing here imports ROS,
and frameworks (onnxruntime, torch, tensorrt) are imported where they are used.
"""

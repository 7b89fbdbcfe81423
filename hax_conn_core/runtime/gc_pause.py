"""Keeping Python's full garbage collections short in a process that runs DNNs.

A full (generation 2) collection walks every object the collector tracks. Once models are
loaded and engines built that is a great many (torch's modules, onnx protobufs, rclpy's types),
and the collection stops every thread of the process while it runs: on the emulated H200 one
such pause took 117-257 ms, about once every 600 frame-sets of googlenet + resnet101, which
alone added 0.4 ms to the mean time per frame-set (docs/bench/throughput-probe-gc-h200.json).
:func:`freeze_startup_objects` collects once, then moves every object left into the
collector's permanent generation (``gc.freeze``), so that later collections walk only what was
made since: 18-22 ms in the same run. Objects frozen are still freed when their reference
count drops; only reference cycles among them are no longer collected.

hax_conn calls it in the processes it owns, once start-up is done: the measuring commands
(``hax-conn run``, ``validate``, ``bench runtime``) and ``hax-conn bringup`` / the ROS
executables. A program that embeds the runtime calls it itself, when it is ready
(docs/runtime.md, "Garbage collection").
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Collect what is garbage now, then freeze everything left (module docstring)."""
    gc.collect()
    gc.freeze()

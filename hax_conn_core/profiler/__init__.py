"""The profiler: per-group times, transitions, demands and contention curves (docs/profiler.md).

One module per concept:

* :mod:`.measure`: a DNN run through the :class:`~hax_conn_core.runtime.session.Runtime`
  under one assignment, frame by frame (in-context group times and latencies);
* :mod:`.groups`: the layer groups to profile and merging those too small to time;
* :mod:`.transitions`: the split runs and the transition figure;
* :mod:`.stressor`: the peak bandwidth, through the backend's memory streams
  (``Backend.memory_stream``: a copy loop on the CPU, paced copies on a cuda-sm partition);
* :mod:`.contention`: the PCCS-style slowdown calibration and its piecewise-linear fit;
* :mod:`.dram_counters`: demand from Nsight Compute's DRAM byte counters (the GPU path);
* :mod:`.estimate`: a roofline profile from the graph and the device description alone;
* :mod:`.cache`: measurements kept on disk, so that an interrupted run resumes;
* :mod:`.document`: the profile document with the profiler's optional keys, written atomically;
* :mod:`.progress`: the progress bar (stderr);
* :mod:`.profiler`: :func:`profile_dnns`, which ties them together.

Nothing here imports ROS; onnxruntime and numpy are imported by the runtime where used.
"""

from hax_conn_core.profiler.estimate import estimate_profile
from hax_conn_core.profiler.profiler import profile_dnns, ProfileRun

__all__ = ["estimate_profile", "profile_dnns", "ProfileRun"]

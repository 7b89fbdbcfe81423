"""Memory streams on the host (CPU): copy loops of tunable bandwidth in their own thread.

The onnxruntime backend's ``memory_stream`` (base.py, ``Backend.memory_stream``): the profiler's
contention stressor and probes, and its peak-bandwidth measurement (docs/profiler.md). A
:class:`HostCopyStream` copies one buffer into another in blocks (``numpy.copyto``, which
releases the GIL, so streams in different threads run on different cores) and, when given a
target, sleeps between blocks to keep its average at ``target_gbps``. Bytes count read plus
written (a copy of ``n`` bytes moves ``2 n``), as DRAM bandwidth figures do. Buffers are larger
than a core's caches, so the traffic reaches memory (the host's last-level cache may still hold
part of it: docs/profiler.md says what that does to the figures).
"""

from __future__ import annotations

import threading
import time
from typing import Optional

from hax_conn_core.runtime.backends.base import MemoryStream

#: Bytes of each buffer of a stream (two per stream).
BUFFER_BYTES = 128 << 20
#: Bytes copied per block (a pacing step).
BLOCK_BYTES = 4 << 20


def make_buffers(buffer_bytes: int = BUFFER_BYTES):
    """(source, destination) float64 arrays of ``buffer_bytes`` each, already touched (the
    page faults of a first pass stay out of anything timed)."""
    import numpy as np

    count = max(1, buffer_bytes // 8)
    src = np.ones(count, dtype=np.float64)
    dst = np.zeros(count, dtype=np.float64)
    np.copyto(dst, src)
    return src, dst


def copy_paced(buffers, target_gbps: Optional[float], total_bytes: Optional[int],
               stop: Optional[threading.Event] = None):
    """Copy through ``buffers`` until ``total_bytes`` (read + written) have moved or ``stop``
    is set, at most at ``target_gbps``; returns (bytes moved, seconds)."""
    import numpy as np

    src, dst = buffers
    count = len(src)
    block = max(1, min(count, BLOCK_BYTES // 8))
    position, moved = 0, 0
    start = time.perf_counter()
    while (total_bytes is None or moved < total_bytes) and not (stop and stop.is_set()):
        end = min(count, position + block)
        np.copyto(dst[position:end], src[position:end])
        moved += (end - position) * 16
        position = 0 if end >= count else end
        if target_gbps:
            ahead = moved / (target_gbps * 1e9) - (time.perf_counter() - start)
            if ahead > 0:
                time.sleep(ahead)
    return moved, time.perf_counter() - start


class HostCopyStream(MemoryStream):
    """A copy loop in its own thread (module docstring); ``start`` / ``stop`` -> GB/s,
    ``transfer(n)`` in the calling thread -> seconds."""

    def __init__(self, accelerator: str = "cpu", target_gbps: Optional[float] = None,
                 buffer_bytes: int = BUFFER_BYTES, name: str = "stream", buffers=None):
        super().__init__(accelerator, target_gbps)
        self._buffers = buffers or make_buffers(buffer_bytes)
        self.name = name
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.bytes_moved = 0
        self.elapsed_s = 0.0

    def describe(self) -> str:
        return (f"numpy copy stream ({len(self._buffers[0]) * 8 >> 20} MiB buffers, "
                "read + written bytes)")

    def _loop(self) -> None:
        self.bytes_moved, self.elapsed_s = copy_paced(self._buffers, self.target_gbps, None,
                                                      self._stop)

    def start(self) -> "HostCopyStream":
        self._stop.clear()
        self.bytes_moved, self.elapsed_s = 0, 0.0
        self._thread = threading.Thread(target=self._loop, name=f"hax-conn-{self.name}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> float:
        """Stop the loop; its average GB/s over the time it ran."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        return self.achieved_gbps

    def transfer(self, total_bytes: int) -> float:
        return copy_paced(self._buffers, self.target_gbps, int(total_bytes))[1]

    @property
    def achieved_gbps(self) -> float:
        return self.bytes_moved / self.elapsed_s / 1e9 if self.elapsed_s > 0 else 0.0

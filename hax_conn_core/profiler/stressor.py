"""Memory streams of tunable bandwidth on the CPU: the contention stressor, the probes, and the
measured peak bandwidth.

A :class:`CopyStream` copies one buffer into another in blocks (``numpy.copyto``, which
releases the GIL, so streams in different threads run on different cores) and, when given a
target, sleeps between blocks to keep its average at ``target_gbps``. Bytes count read plus
written (a copy of ``n`` bytes moves ``2 n``), as DRAM bandwidth figures do. Buffers are
larger than a core's caches, so the traffic reaches memory (the host's last-level cache may
still hold part of it: docs/profiler.md says what that does to the figures).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import List, Optional

from hax_conn_core.errors import ConfigError

#: Bytes of each buffer of a stream (two per stream).
BUFFER_BYTES = 128 << 20
#: Bytes copied per block (a pacing step).
BLOCK_BYTES = 4 << 20


class StressorError(ConfigError):
    """The stressor cannot reach the bandwidth asked of it."""


class CopyStream:
    """A copy loop in its own thread (module docstring); ``start`` / ``stop`` -> GB/s."""

    def __init__(self, target_gbps: Optional[float] = None, buffer_bytes: int = BUFFER_BYTES,
                 name: str = "stream", buffers=None):
        self._src, self._dst = buffers or make_buffers(buffer_bytes)
        count = len(self._src)
        self._block = max(1, min(count, BLOCK_BYTES // 8))
        self.target_gbps = target_gbps
        self.name = name
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.bytes_moved = 0
        self.elapsed_s = 0.0

    def _loop(self) -> None:
        import numpy as np

        src, dst, block = self._src, self._dst, self._block
        count = len(src)
        position, moved = 0, 0
        start = time.perf_counter()
        while not self._stop.is_set():
            end = min(count, position + block)
            np.copyto(dst[position:end], src[position:end])
            moved += (end - position) * 16
            position = 0 if end >= count else end
            if self.target_gbps:
                ahead = moved / (self.target_gbps * 1e9) - (time.perf_counter() - start)
                if ahead > 0:
                    time.sleep(ahead)
        self.elapsed_s = time.perf_counter() - start
        self.bytes_moved = moved

    def start(self) -> "CopyStream":
        self._thread = threading.Thread(target=self._loop, name=f"hax-conn-{self.name}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> float:
        """Stop the loop; its average GB/s over the time it ran."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.achieved_gbps

    @property
    def achieved_gbps(self) -> float:
        return self.bytes_moved / self.elapsed_s / 1e9 if self.elapsed_s > 0 else 0.0


def make_buffers(buffer_bytes: int = BUFFER_BYTES):
    """(source, destination) float64 arrays of ``buffer_bytes`` each, already touched (the
    page faults of a first pass stay out of anything timed)."""
    import numpy as np

    count = max(1, buffer_bytes // 8)
    src = np.ones(count, dtype=np.float64)
    dst = np.zeros(count, dtype=np.float64)
    np.copyto(dst, src)
    return src, dst


def probe(target_gbps: Optional[float], total_bytes: int, buffers=None) -> float:
    """Copy ``total_bytes`` (read + written) at most at ``target_gbps`` in the calling
    thread, through ``buffers`` (default: new ones); the seconds it took."""
    import numpy as np

    src, dst = buffers or make_buffers()
    count = len(src)
    block = max(1, min(count, BLOCK_BYTES // 8))
    position, moved = 0, 0
    start = time.perf_counter()
    while moved < total_bytes:
        end = min(count, position + block)
        np.copyto(dst[position:end], src[position:end])
        moved += (end - position) * 16
        position = 0 if end >= count else end
        if target_gbps:
            ahead = moved / (target_gbps * 1e9) - (time.perf_counter() - start)
            if ahead > 0:
                time.sleep(ahead)
    return time.perf_counter() - start


@dataclass(frozen=True)
class PeakBandwidth:
    """Measured copy bandwidth: one stream alone, and ``streams`` at once (the peak)."""

    single_gbps: float
    peak_gbps: float
    streams: int
    duration_s: float

    def source(self) -> str:
        return (f"measured: {self.streams} numpy copy streams at once ({BUFFER_BYTES >> 20} MiB "
                f"buffers, read + written bytes) for {self.duration_s:g} s: "
                f"{self.peak_gbps:.2f} GB/s (one stream alone: {self.single_gbps:.2f} GB/s)")


def measure_peak(streams: int = 2, duration_s: float = 0.5) -> PeakBandwidth:
    """Copy bandwidth of one stream alone, then of ``streams`` streams at once."""
    one = CopyStream(name="peak").start()
    time.sleep(duration_s)
    single = one.stop()
    many: List[CopyStream] = [CopyStream(name=f"peak{i}").start() for i in range(streams)]
    time.sleep(duration_s)
    peak = sum(stream.stop() for stream in many)
    return PeakBandwidth(single_gbps=single, peak_gbps=max(peak, single), streams=streams,
                         duration_s=duration_s)

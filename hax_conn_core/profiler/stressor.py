"""Memory streams for the profiler: the contention stressor and probes, and the peak bandwidth.

The streams themselves are a backend facility (``Backend.memory_stream(accelerator,
target_gbps)``, base.py): on the CPU a numpy copy loop in a thread
(runtime/backends/host_memory.py), on cuda-sm paced device-to-device copies on the
accelerator's green-context partition (runtime/backends/cuda_memory.py). The profiler never
asks which backend it has: it takes a *stream factory* (``backend.memory_stream``; default
:func:`host_streams`, the CPU copy loop without a backend). Bytes count read plus written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Sequence

from hax_conn_core.errors import ConfigError
from hax_conn_core.runtime.backends.base import MemoryStream
from hax_conn_core.runtime.backends.host_memory import (BUFFER_BYTES, HostCopyStream,
                                                        make_buffers)

#: accelerator, target GB/s (None: flat out) -> a MemoryStream on it.
StreamFactory = Callable[[str, Optional[float]], MemoryStream]

__all__ = ["BUFFER_BYTES", "CopyStream", "host_streams", "make_buffers", "measure_peak",
           "PeakBandwidth", "StressorError", "StreamFactory"]


class StressorError(ConfigError):
    """The stressor cannot reach the bandwidth asked of it."""


def CopyStream(target_gbps: Optional[float] = None, buffer_bytes: int = BUFFER_BYTES,
               name: str = "stream", buffers=None) -> HostCopyStream:
    """A host copy stream (the CPU stressor) not tied to an accelerator."""
    return HostCopyStream("cpu", target_gbps, buffer_bytes, name, buffers)


def host_streams(accelerator: str, target_gbps: Optional[float] = None) -> HostCopyStream:
    """The stream factory without a backend: a host copy loop per call."""
    return HostCopyStream(accelerator, target_gbps, name=f"stream-{accelerator}")


@dataclass(frozen=True)
class PeakBandwidth:
    """Measured copy bandwidth: each accelerator's stream alone, and all at once (the peak).

    ``single_gbps`` is the largest figure of one stream alone. (Cache entries written before
    the per-accelerator fields existed load with them empty.)"""

    single_gbps: float
    peak_gbps: float
    streams: int
    duration_s: float
    alone_gbps: Dict[str, float] = field(default_factory=dict)
    together_gbps: Dict[str, float] = field(default_factory=dict)
    method: str = f"numpy copy streams ({BUFFER_BYTES >> 20} MiB buffers, read + written bytes)"

    def source(self) -> str:
        alone = (", ".join(f"{acc} {gbps:.2f}" for acc, gbps in self.alone_gbps.items())
                 if self.alone_gbps else f"{self.single_gbps:.2f}")
        return (f"measured: {self.method}, {self.streams} at once for {self.duration_s:g} s: "
                f"{self.peak_gbps:.2f} GB/s (one stream alone: {alone} GB/s)")

    def alone(self, accelerator: str) -> float:
        return self.alone_gbps.get(accelerator, self.single_gbps)


def measure_peak(streams: int = 2, duration_s: float = 0.5,
                 factory: Optional[StreamFactory] = None,
                 accelerators: Optional[Sequence[str]] = None) -> PeakBandwidth:
    """Bandwidth of one stream per accelerator alone, then of all of them at once (the peak).
    Without ``accelerators``: ``streams`` host streams."""
    factory = factory or host_streams
    accelerators = tuple(accelerators or (f"stream{i}" for i in range(streams)))
    made: Dict[str, MemoryStream] = {}
    try:
        for acc in accelerators:
            made[acc] = factory(acc, None)
        alone = {}
        for acc, stream in made.items():
            stream.start()
            time.sleep(duration_s)
            alone[acc] = stream.stop()
        for stream in made.values():
            stream.start()
        time.sleep(duration_s)
        together = {acc: stream.stop() for acc, stream in made.items()}
        method = next(iter(made.values())).describe()
    finally:
        for stream in made.values():
            stream.close()
    alone = {a: round(v, 3) for a, v in alone.items()}
    together = {a: round(v, 3) for a, v in together.items()}
    return PeakBandwidth(single_gbps=max(alone.values()),
                         peak_gbps=round(max(sum(together.values()), max(alone.values())), 3),
                         streams=len(accelerators), duration_s=duration_s,
                         alone_gbps=alone, together_gbps=together, method=method)

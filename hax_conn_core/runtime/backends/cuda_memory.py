"""Memory streams on a green-context partition: paced device-to-device copies on its stream.

The cuda-sm backend's ``memory_stream`` (base.py, ``Backend.memory_stream``): the profiler's
contention stressor and probes on the emulated SoC (docs/profiler.md, "The GPU path"). A
:class:`CudaCopyStream` owns two fp16 buffers of 512 MiB on the device (far beyond the 60 MB L2,
so the traffic reaches HBM) and a CUDA graph captured on the partition's stream that copies the
source into the destination in 16 MiB chunks with an elementwise kernel (``torch.neg`` with
``out=``: the partition's SMs move the bytes, not the copy engines, which the SM split does not
limit). Paced, each chunk is followed by a ``torch.cuda._sleep`` spin kernel (one thread block,
no memory traffic), so the traffic is steady at the chunk scale (tens of microseconds), not
bursts of host-paced copies; its length is set once from measured times (the chunk copy alone,
the spin kernel's cycles per second) and corrected once against a timed replay.

Achieved bandwidth is measured with CUDA events on the partition's stream (start before the
first replay, end after the last; bytes = replays x 2 x buffer bytes: read + written). Under
another partition's traffic the copies slow and the stream falls below its target: ``stop()``
reports what it achieved, which is what the contention fit uses.

torch is imported inside; the module is importable without it (CI).
"""

from __future__ import annotations

import math
import threading
from typing import Any, Optional

from hax_conn_core.runtime.backends.base import MemoryStream

#: Bytes of each of the two buffers.
BUFFER_BYTES = 512 << 20
#: Bytes copied per kernel (one pacing step).
CHUNK_BYTES = 16 << 20
#: Replays queued on the stream at most while running in the background.
IN_FLIGHT = 2


def sleep_cycles(period_s: float, copy_s: float, cycles_per_s: float) -> int:
    """Spin cycles after each chunk so that chunk + spin lasts ``period_s`` (0: flat out)."""
    idle = period_s - copy_s
    return max(0, int(round(idle * cycles_per_s))) if idle > 0 else 0


class CudaCopyStream(MemoryStream):
    """Paced copies on one partition's stream (module docstring)."""

    def __init__(self, stream: Any, accelerator: str, target_gbps: Optional[float] = None,
                 buffer_bytes: int = BUFFER_BYTES, chunk_bytes: int = CHUNK_BYTES):
        import torch

        super().__init__(accelerator, target_gbps)
        self._torch = torch
        self.stream = stream
        self._chunks = max(1, buffer_bytes // chunk_bytes)
        count = chunk_bytes // 2  # fp16 elements per chunk
        with torch.cuda.stream(stream):
            self._src = torch.ones((self._chunks, count), dtype=torch.float16, device="cuda")
            self._dst = torch.empty_like(self._src)
        self.bytes_per_replay = 2 * self._chunks * count * 2
        self._graphs = {}  # spin cycles -> CUDA graph
        self._paced_for: Optional[float] = None
        self._cycles = 0
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._replays = 0
        self._start = self._end = None
        stream.synchronize()

    def describe(self) -> str:
        return (f"device-to-device copies on the partition's stream (elementwise fp16 kernel, "
                f"{self._chunks} x {self.bytes_per_replay // self._chunks // 2 >> 20} MiB chunks "
                "per replay, read + written bytes, CUDA events)")

    # --- graphs and pacing -------------------------------------------------------------------
    def _graph(self, cycles: int):
        graph = self._graphs.get(cycles)
        if graph is not None:
            return graph
        torch = self._torch
        with torch.cuda.stream(self.stream):
            for k in range(self._chunks):  # warm-up outside the capture
                torch.neg(self._src[k], out=self._dst[k])
        self.stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=self.stream, capture_error_mode="thread_local"):
            for k in range(self._chunks):
                torch.neg(self._src[k], out=self._dst[k])
                if cycles:
                    torch.cuda._sleep(cycles)
        self.stream.synchronize()
        self._graphs[cycles] = graph
        return graph

    def _timed(self, replays: int, cycles: int) -> float:
        """Seconds for ``replays`` replays of the graph with ``cycles``, CUDA events."""
        torch = self._torch
        graph = self._graph(cycles)
        start, end = (torch.cuda.Event(enable_timing=True) for _ in range(2))
        with torch.cuda.stream(self.stream):
            start.record(self.stream)
            for _ in range(replays):
                graph.replay()
            end.record(self.stream)
        end.synchronize()
        return start.elapsed_time(end) / 1e3

    def _spin_rate(self) -> float:
        """Cycles per second of the spin kernel on this partition."""
        torch = self._torch
        start, end = (torch.cuda.Event(enable_timing=True) for _ in range(2))
        cycles = 2_000_000
        with torch.cuda.stream(self.stream):
            torch.cuda._sleep(1000)
            start.record(self.stream)
            torch.cuda._sleep(cycles)
            end.record(self.stream)
        end.synchronize()
        return cycles / (start.elapsed_time(end) / 1e3)

    def _pace(self) -> int:
        """Spin cycles per chunk for the current target (measured once per target)."""
        target = self.target_gbps
        if target is None:
            return 0
        if self._paced_for == target:
            return self._cycles
        copy_s = self._timed(3, 0) / 3 / self._chunks
        period = self.bytes_per_replay / self._chunks / (target * 1e9)
        rate = self._spin_rate()
        cycles = sleep_cycles(period, copy_s, rate)
        if cycles:  # one correction against a timed replay (launch gaps, spin start-up)
            took = self._timed(2, cycles) / 2 / self._chunks
            cycles = max(0, cycles + int(round((period - took) * rate)))
        self._paced_for, self._cycles = target, cycles
        return cycles

    # --- the interface -----------------------------------------------------------------------
    def start(self) -> "CudaCopyStream":
        torch = self._torch
        graph = self._graph(self._pace())
        self._stop.clear()
        self._replays = 0
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)
        with torch.cuda.stream(self.stream):
            self._start.record(self.stream)

        def loop():
            pending = []
            with torch.cuda.stream(self.stream):
                while not self._stop.is_set():
                    graph.replay()
                    self._replays += 1
                    done = torch.cuda.Event()
                    done.record(self.stream)
                    pending.append(done)
                    if len(pending) > IN_FLIGHT:
                        pending.pop(0).synchronize()

        self._thread = threading.Thread(target=loop, name=f"hax-conn-copy-{self.accelerator}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> float:
        self._stop.set()
        if self._thread is None:
            return 0.0
        self._thread.join()
        self._thread = None
        with self._torch.cuda.stream(self.stream):
            self._end.record(self.stream)
        self._end.synchronize()
        seconds = self._start.elapsed_time(self._end) / 1e3
        return self._replays * self.bytes_per_replay / seconds / 1e9 if seconds > 0 else 0.0

    def transfer(self, total_bytes: int) -> float:
        replays = max(1, math.ceil(total_bytes / self.bytes_per_replay))
        return self._timed(replays, self._pace()) * total_bytes / (replays *
                                                                   self.bytes_per_replay)

    def close(self) -> None:
        if self._thread is not None:
            self.stop()
        self.stream.synchronize()
        self._graphs, self._src, self._dst = {}, None, None

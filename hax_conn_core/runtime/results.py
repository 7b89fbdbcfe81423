"""What a run returns: per frame-set, each DNN's outputs (or its error) and per-group times."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np


@dataclass(frozen=True)
class GroupTiming:
    """Groups ``group..last_group`` of one DNN in one frame-set, run as one engine (a segment:
    docs/runtime.md): where, how long. ``last_group`` equals ``group`` for a lone group."""

    frame_set: int
    dnn: str
    group: int
    accelerator: str
    ms: float  # measured on its accelerator (CUDA events, or the CPU clock)
    last_group: int = -1  # -1: the same as ``group``

    def __post_init__(self) -> None:
        if self.last_group < 0:
            object.__setattr__(self, "last_group", self.group)


@dataclass
class DnnResult:
    """One DNN's result in one frame-set: its outputs on the host, or the error that failed it,
    and which weights it ran with (``seeded:<seed>`` or ``file:<name>:<sha256 prefix>``).

    ``tag`` is what the caller submitted with the frame (e.g. the image's header), returned
    untouched so that a result is always matched with its input.
    """

    dnn: str
    frame_set: int
    tag: Any = None
    outputs: Optional[Dict[str, np.ndarray]] = None
    error: Optional[str] = None
    finished_s: float = math.nan  # perf_counter() when the outputs were on the host
    weights: str = ""  # the model's weights_id: which weights computed the outputs

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class FrameSetResult:
    """A finished frame-set: every DNN's result, its times, and the schedule it ran under."""

    index: int
    schedule_id: int  # which schedule ran it (Runtime.swap() makes a new one)
    results: Dict[str, DnnResult]
    released_s: float  # perf_counter() when it was admitted (its buffers free)
    finished_s: float
    timings: List[GroupTiming] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(result.ok for result in self.results.values())

    @property
    def latency_ms(self) -> float:
        return (self.finished_s - self.released_s) * 1e3

    def dnn_latency_ms(self, dnn: str) -> float:
        return (self.results[dnn].finished_s - self.released_s) * 1e3


def percentile(values: Sequence[float], q: float) -> float:
    clean = [v for v in values if not math.isnan(v)]
    return float(np.percentile(clean, q)) if clean else math.nan


def summarize(results: Sequence[FrameSetResult], warmup: int = 0,
              frames_in_flight: Optional[int] = None) -> Dict[str, Any]:
    """Medians, p95 and p99 of frame-set and per-DNN latency, the time per frame-set, errors.

    The first ``warmup`` frame-sets are left out. The time per frame-set is measured as
    docs/timing-model.md defines it, the median over a long run of back-to-back frame-sets:
    with ``D = frames_in_flight`` in flight, frame-sets finish in bursts of up to ``D``, so each
    completion's figure is the time since the completion ``D`` before it, over ``D``
    (``ms_per_frame_set``; a stall moves ``D`` of these, not the median). Without
    ``frames_in_flight`` it is the run's average. The run's average, completions over the time
    between the first and the last, is kept beside it (``mean_ms_per_frame_set``): it holds
    the stalls, which is what a long stream's rate sees.
    """
    kept = sorted(results, key=lambda r: r.index)[warmup:]
    latencies = [r.latency_ms for r in kept if r.ok]
    out: Dict[str, Any] = {
        "frame_sets": len(kept),
        "failed_frame_sets": sum(1 for r in kept if not r.ok),
        "latency_ms": _stats(latencies),
        "dnns": {},
    }
    finishes = sorted(r.finished_s for r in kept)
    mean = (math.nan if len(finishes) < 2 or finishes[-1] <= finishes[0]
            else (finishes[-1] - finishes[0]) * 1e3 / (len(finishes) - 1))
    per = mean
    if frames_in_flight is not None and not math.isnan(mean):
        d = int(frames_in_flight)
        if d < 1:
            raise ValueError(f"frames_in_flight must be at least 1, got {frames_in_flight}")
        spans = [(finishes[k] - finishes[k - d]) * 1e3 / d for k in range(d, len(finishes))]
        if spans:
            per = float(np.median(spans))
    out["ms_per_frame_set"] = per
    out["mean_ms_per_frame_set"] = mean
    out["frame_sets_per_s"] = 1e3 / per if per > 0 else math.nan
    names: List[str] = []
    for r in kept:
        names.extend(n for n in r.results if n not in names)
    for name in names:
        mine = [r for r in kept if name in r.results]
        good = [r.dnn_latency_ms(name) for r in mine if r.results[name].ok]
        errors = [r.results[name].error for r in mine if not r.results[name].ok]
        out["dnns"][name] = {"latency_ms": _stats(good), "errors": len(errors),
                             "first_error": errors[0] if errors else None}
    return out


def group_medians(results: Sequence[FrameSetResult], warmup: int = 0
                  ) -> Mapping[tuple, float]:
    """Median measured ms per (dnn, first group, last group, accelerator) over the frame-sets
    after warm-up (first == last for a group timed alone; else a segment run as one engine)."""
    samples: Dict[tuple, List[float]] = {}
    for r in sorted(results, key=lambda r: r.index)[warmup:]:
        for t in r.timings:
            samples.setdefault((t.dnn, t.group, t.last_group, t.accelerator), []).append(t.ms)
    return {key: float(np.median(values)) for key, values in samples.items()}


def finite_for_json(value):
    """``value`` with NaN and infinities as None (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite_for_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_for_json(item) for item in value]
    return value


def _stats(values: Sequence[float]) -> Dict[str, float]:
    return {"median": percentile(values, 50), "p95": percentile(values, 95),
            "p99": percentile(values, 99), "count": len(values)}

"""Measuring a schedule: seeded distinct frames through a Runtime, and the summary beside the
simulator's prediction. Shared by ``hax-conn run``, ``hax-conn bench runtime`` and the benches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional

import numpy as np

from hax_conn_core.runtime.results import FrameSetResult, summarize


def seeded_frames(models: Mapping[str, Any], count: int, seed: int = 0
                  ) -> Iterator[Dict[str, np.ndarray]]:
    """``count`` frame-sets of standard-normal float32 frames, distinct per frame-set and DNN
    (so that a frame mixed up with another is caught), the same for the same seed."""
    for index in range(count):
        yield {name: np.random.default_rng([seed, index, position])
               .standard_normal(model.input_shape, dtype=np.float32)
               for position, (name, model) in enumerate(models.items())}


@dataclass
class Measurement:
    """A measured schedule: every frame-set's result, the summary and the predictions."""

    results: List[FrameSetResult]
    summary: Dict[str, Any]
    predicted_ms: float  # the simulator's figure for the schedule's objective
    predicted_no_contention_ms: float

    @property
    def measured_ms(self) -> float:
        """Latency objective: median frame-set latency; throughput: ms per frame-set."""
        if self.summary.get("objective") == "throughput":
            return float(self.summary["ms_per_frame_set"])
        return float(self.summary["latency_ms"]["median"])


def measure(runtime, frames: int, warmup: int = 0, seed: int = 0,
            progress: Optional[Callable[[int], None]] = None) -> Measurement:
    """Run ``frames`` frame-sets (plus ``warmup`` first, left out of the summary) through the
    started ``runtime`` under its current schedule."""
    from hax_conn_core.runtime.plan import frames_in_flight
    from hax_conn_core.simulator import simulate

    plan = runtime.plan
    results = runtime.run(seeded_frames(plan.models, frames + warmup, seed), progress=progress)
    summary = summarize(results, warmup, frames_in_flight(plan.schedule))
    summary["objective"] = plan.schedule.objective
    return Measurement(
        results=results, summary=summary,
        predicted_ms=simulate(plan.profile, plan.schedule).predicted_ms,
        predicted_no_contention_ms=simulate(plan.profile, plan.schedule,
                                            contention=False).predicted_ms)

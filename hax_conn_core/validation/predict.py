"""What the simulator predicts for a schedule, in both figures a report shows side by side.

A schedule is run in its objective's mode (docs/runtime.md): latency schedules one frame-set at
a time (``D = 1``), throughput schedules with ``D = frames_in_flight`` in flight. Both modes
give both figures, so both are predicted for the mode the schedule runs in:

- latency mode: the latency is ``C[0]``; frame-sets follow one another back to back, so the
  time per frame-set is the same figure.
- throughput mode: the time per frame-set is the simulator's throughput value; the latency of
  a frame-set is its finish minus its release (``C[k] - C[k - D]``, the time it held a buffer
  slot, as the runtime measures it), the median over the throughput window
  (docs/timing-model.md).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from hax_conn_core.profile import Profile
from hax_conn_core.schedule import Schedule


@dataclass(frozen=True)
class Prediction:
    """A schedule's predicted figures in the mode its objective runs it in."""

    latency_ms: float  # one frame-set, from release to its last DNN's finish (median)
    ms_per_frame_set: float  # steady state, frame-sets back to back

    @property
    def frame_sets_per_s(self) -> float:
        return 1e3 / self.ms_per_frame_set

    def objective_ms(self, objective: str) -> float:
        """The figure the objective is judged by: latency, or time per frame-set."""
        return self.ms_per_frame_set if objective == "throughput" else self.latency_ms


def predict(profile: Profile, schedule: Schedule, contention: bool = True) -> Prediction:
    """Both figures of ``schedule`` on ``profile``; ``contention=False``: every slowdown 1
    (flat contention curves: what a contention-unaware model would predict)."""
    from hax_conn_core.simulator import simulate, window

    result = simulate(profile, schedule, contention=contention)
    if schedule.objective == "latency":
        return Prediction(latency_ms=result.predicted_ms, ms_per_frame_set=result.predicted_ms)
    d = schedule.frames_in_flight
    warmup, measured = window(d)
    finish = result.frame_set_finish_ms
    held = [finish[k] - (finish[k - d] if k >= d else 0.0)
            for k in range(warmup, warmup + measured)]
    return Prediction(latency_ms=statistics.median(held), ms_per_frame_set=result.predicted_ms)

"""One DNN set and objective: every schedule predicted, then measured side by side.

The measuring is ``runtime.compare.compare_schedules`` (one process, interleaved rounds, the
same frames for every schedule, medians over rounds with the spread). Schedules with the same
assignment (GPU&DLA is GPU-only when no DNN runs whole on the DLA) are measured once and the
row says so (``same_as``). The result is a plain dict: a row of the report (docs/validate.md).
"""

from __future__ import annotations

import statistics
from typing import Any, Callable, Dict, Mapping, Optional

from hax_conn_core.profile import Profile
from hax_conn_core.validation.bundle import PLAN_LABEL, ScheduleSet
from hax_conn_core.validation.predict import Prediction, predict


def measure_set(backend, profile: Profile, planned: ScheduleSet, models: Mapping[str, Any],
                rounds: int = 5, frames: int = 40, warmup: int = 5, seed: int = 0,
                precision: Optional[str] = None,
                progress: Optional[Callable[[str, int], None]] = None) -> Dict[str, Any]:
    """The report row of ``planned``: per schedule its predictions (with and without the
    contention model), its measured figures and the prediction errors; then the plan against
    the best measured baseline."""
    from hax_conn_core.runtime.compare import compare_schedules, versus_best

    sub = profile.subset(list(planned.dnns))
    distinct: Dict[str, Any] = {}  # label -> schedule, one per distinct assignment
    same_as: Dict[str, str] = {}
    for label, schedule in planned.schedules.items():
        twin = next((other for other, s in distinct.items()
                     if dict(s.assignments) == dict(schedule.assignments)
                     and s.frames_in_flight == schedule.frames_in_flight), None)
        if twin is None:
            distinct[label] = schedule
        else:
            same_as[label] = twin
    measured = compare_schedules(backend, sub, distinct, models, rounds=rounds, frames=frames,
                                 warmup=warmup, seed=seed, progress=progress,
                                 precision=precision)
    for label, twin in same_as.items():
        measured[label] = measured[twin]
    entries = {}
    for label, schedule in planned.schedules.items():
        with_model = predict(sub, schedule)
        flat = predict(sub, schedule, contention=False)
        figures = _measured_figures(measured[label])
        entries[label] = {
            "assignment": {name: list(accs) for name, accs in schedule.assignments.items()},
            "transitions": schedule.max_transitions_used(),
            "same_as": same_as.get(label),
            "predicted": _prediction(with_model),
            "predicted_no_contention": _prediction(flat),
            "measured": figures,
            "error": _errors(with_model, figures, planned.objective),
            "error_no_contention": _errors(flat, figures, planned.objective),
        }
    row: Dict[str, Any] = {
        "dnns": list(planned.dnns), "objective": planned.objective,
        "frames_in_flight": (planned.schedules[PLAN_LABEL].frames_in_flight
                             if planned.objective == "throughput" else 1),
        "schedules": entries,
    }
    if len(planned.schedules) > 1:
        # A baseline that is another baseline's twin would only repeat it; one that is the
        # plan's twin stays (the plan is that baseline: a tie).
        rivals = {label: m for label, m in measured.items()
                  if same_as.get(label) in (None, PLAN_LABEL)}
        best, gain, tie = versus_best(rivals, PLAN_LABEL)
        row.update(best_baseline=best, gain_over_best_baseline=gain, tie=tie)
    return row


def _prediction(p: Prediction) -> Dict[str, float]:
    return {"latency_ms": p.latency_ms, "ms_per_frame_set": p.ms_per_frame_set,
            "frame_sets_per_s": p.frame_sets_per_s}


def _spread(values) -> Dict[str, Any]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "rounds": list(values)}


def _measured_figures(result: Mapping[str, Any]) -> Dict[str, Any]:
    """Both figures over the rounds: latency and time per frame-set (median, min, max), and
    frame-sets/s from the median time per frame-set; beside them the run's average time per
    frame-set, stalls included (not what the prediction is judged by: results.summarize)."""
    per = _spread(result["ms_per_frame_set_rounds"])
    figures = {"latency_ms": _spread(result["latency_rounds_ms"]), "ms_per_frame_set": per,
               "frame_sets_per_s": 1e3 / per["median"]}
    if "mean_ms_per_frame_set_rounds" in result:
        figures["mean_ms_per_frame_set"] = _spread(result["mean_ms_per_frame_set_rounds"])
    return figures


def _errors(p: Prediction, measured: Mapping[str, Any], objective: str) -> Dict[str, float]:
    """Relative errors, (predicted - measured) / measured: of the latency, of the time per
    frame-set, and of the figure the objective is judged by (``objective``)."""
    latency = p.latency_ms / measured["latency_ms"]["median"] - 1
    per = p.ms_per_frame_set / measured["ms_per_frame_set"]["median"] - 1
    return {"latency": latency, "ms_per_frame_set": per,
            "objective": per if objective == "throughput" else latency}

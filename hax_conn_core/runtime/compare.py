"""Schedules measured side by side: one process, interleaved rounds, the same frames.

``compare_schedules`` builds a :class:`~.session.Runtime` per schedule, then runs ``rounds``
rounds; in each, every schedule runs the same ``frames`` frame-sets (after ``warmup``), in an
order that rotates from round to round, so that drift of the machine (heat, other load) falls
on all of them alike. Each round gives one figure per schedule (the median frame-set latency,
or the time per frame-set for throughput); the result is the median over rounds with the
spread (min and max) beside it: a difference inside the spread is a tie (docs/runtime.md).
Both figures of every round are kept too (``latency_rounds_ms``,
``ms_per_frame_set_rounds``, and the run's average time per frame-set, stalls included,
``mean_ms_per_frame_set_rounds``: results.summarize), whatever the objective, for reports
that show latency and frame-sets/s side by side (``hax-conn validate``).

``direct_ms`` is the bare-engine reference of the lockstep-overhead bench: the same engines of
a plan called one after another from the calling thread, no executors.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Dict, List, Mapping, Tuple

from hax_conn_core.errors import BackendError
from hax_conn_core.runtime.measure import seeded_frames
from hax_conn_core.runtime.plan import frames_in_flight
from hax_conn_core.runtime.session import release_engines, Runtime


def compare_schedules(backend, profile, schedules: Mapping[str, Any], models: Mapping[str, Any],
                      rounds: int = 5, frames: int = 20, warmup: int = 3, seed: int = 0,
                      progress=None, precision=None) -> Dict[str, Dict[str, Any]]:
    """Per label: ``median_ms``, ``min_ms``, ``max_ms`` over rounds, ``rounds_ms``, the
    schedule's objective, and both figures per round (see the module docstring)."""
    from hax_conn_core.runtime.results import summarize

    pool: Dict[tuple, Any] = {}  # schedules share the engines they have in common
    runtimes = {label: Runtime(backend, profile, schedule, models, precision=precision,
                               pool=pool).start()
                for label, schedule in schedules.items()}
    per_round: Dict[str, List[float]] = {label: [] for label in schedules}
    latency_rounds: Dict[str, List[float]] = {label: [] for label in schedules}
    per_frame_set_rounds: Dict[str, List[float]] = {label: [] for label in schedules}
    mean_rounds: Dict[str, List[float]] = {label: [] for label in schedules}
    labels = list(schedules)
    from hax_conn_core.runtime.gc_pause import freeze_startup_objects

    freeze_startup_objects()  # the engines are built: no full collection walks them mid-round
    try:
        for r in range(rounds):
            for label in labels[r % len(labels):] + labels[:r % len(labels)]:
                runtime = runtimes[label]
                batch = list(seeded_frames(models_of(runtime), frames + warmup, seed + r))
                results = runtime.run(batch)
                summary = summarize(results, warmup, frames_in_flight(runtime.schedule))
                if summary["failed_frame_sets"]:
                    first = next(e["first_error"] for e in summary["dnns"].values()
                                 if e["first_error"])
                    # A frame-set that failed has no time to compare: the measurement is void.
                    raise BackendError(f"{label}: frame-sets failed while measuring: {first}")
                per_round[label].append(
                    summary["ms_per_frame_set"] if runtime.schedule.objective == "throughput"
                    else summary["latency_ms"]["median"])
                latency_rounds[label].append(summary["latency_ms"]["median"])
                per_frame_set_rounds[label].append(summary["ms_per_frame_set"])
                mean_rounds[label].append(summary["mean_ms_per_frame_set"])
                if progress:
                    progress(label, r)
    finally:
        for runtime in runtimes.values():
            runtime.close()
        release_engines(pool)
    return {label: {"median_ms": statistics.median(values), "min_ms": min(values),
                    "max_ms": max(values), "rounds_ms": values,
                    "objective": schedules[label].objective,
                    "latency_rounds_ms": latency_rounds[label],
                    "ms_per_frame_set_rounds": per_frame_set_rounds[label],
                    "mean_ms_per_frame_set_rounds": mean_rounds[label]}
            for label, values in per_round.items()}


def versus_best(measured: Mapping[str, Mapping[str, float]], ours: str
                ) -> Tuple[str, float, bool]:
    """``ours`` against the best of the other labels of a ``compare_schedules`` result:
    (best label, gain = 1 - ours / best, tie). A tie: either median lies inside the other's
    spread over rounds (docs/runtime.md)."""
    best_ms, best = min((m["median_ms"], label) for label, m in measured.items()
                        if label != ours)
    mine, theirs = measured[ours], measured[best]
    tie = (mine["min_ms"] <= best_ms <= mine["max_ms"]
           or theirs["min_ms"] <= mine["median_ms"] <= theirs["max_ms"])
    return best, 1 - mine["median_ms"] / best_ms, tie


def models_of(runtime: Runtime) -> Mapping[str, Any]:
    return runtime.plan.models


def direct_ms(backend, plan, frames: List[Mapping[str, Any]]) -> List[float]:
    """Per frame-set: the wall time of running every engine of ``plan`` in turn from
    this thread (each DNN's segments in order, then the next DNN), the outputs on the host."""
    times = []
    for frame_set in frames:
        start = time.perf_counter()
        for name in plan.dnns:
            launch = None
            for segment in range(plan.last_segment(name) + 1):
                engine = plan.engines[(name, segment)]
                acc = plan.segment_accelerator(name, segment)
                if launch is None:
                    inputs = {engine.input_names[0]: backend.from_host(frame_set[name], acc)}
                    wait = ()
                else:
                    inputs, wait = launch.outputs, (launch.done,)
                launch = engine.run(inputs, wait_for=wait)
            launch.done.wait()
            for output in plan.models[name].output_names:
                backend.to_host(launch.outputs[output])
        times.append((time.perf_counter() - start) * 1e3)
    return times

"""Contention-aware simulation of a schedule (docs/timing-model.md, "Simulation semantics").

Event-driven and exact: between two events (a start, a finish, a release, the end of a
transition delay) every running group progresses at a constant rate ``1 / S``, so the next event
time is computed exactly; a small epsilon is used only to compare times, so that two events
that coincide in exact arithmetic but differ by rounding count as simultaneous.

The rules, in brief (the spec is the reference):

- Frame-set ``k`` (one frame of every DNN) is released at 0 if ``k < D``, else when frame-set
  ``k - D`` finishes; release makes group 0 of each of its DNNs ready.
- A group is ready when its predecessor finished, plus the predecessor's transition delay if
  that ran on another accelerator (the sender is free during the delay).
- An idle accelerator starts, among the ready groups assigned to it, the one that became ready
  first; ties: earlier frame-set, then the DNN listed first. No preemption. All finishes and
  releases at ``t`` are processed before any start at ``t``.
- A group on ``a`` progresses at ``1 / S``; ``S = 1`` when nothing runs on another accelerator,
  else ``S = interp(contention[a], (own demand + other accelerators' demands) / peak)``.

Latency: one frame-set, ``D = 1``, the finish of its last group. Throughput (timing model
version 1.1): ``D`` frame-sets in flight, an integer from 1 to ``MAX_FRAMES_IN_FLIGHT`` (16),
``W = 8 D`` warm-up and ``M = 32 D`` measured frame-sets, ``(C[W+M-1] - C[W-1]) / M``. The
window scales with ``D`` because with many frame-sets in flight they finish in bursts of up to
``D``: a fixed window shorter than a few bursts measures nonsense (below the busiest
accelerator's own work per frame-set).

``simulate`` records every group run (for reports, plots and the runtime's per-accelerator
order); ``predict_ms`` is the same engine without recording, for search loops.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from hax_conn_core.contention import slowdown
from hax_conn_core.errors import InternalError, ScheduleError
from hax_conn_core.profile import Profile
from hax_conn_core.schedule import check_assignment, check_schedule_fits, OBJECTIVES, Schedule

#: Tolerance (ms) under which two event times count as the same time.
TIME_EPSILON_MS = 1e-9
#: Throughput objective: warm-up and measured frame-sets per frame-set in flight
#: (docs/timing-model.md, version 1.1: ``W = 8 D``, ``M = 32 D``).
WARMUP_FRAME_SETS = 8
MEASURED_FRAME_SETS = 32
#: The frame-sets in flight a throughput schedule may ask for: 1 .. 16.
MIN_FRAMES_IN_FLIGHT = 1
MAX_FRAMES_IN_FLIGHT = 16


@dataclass(frozen=True)
class GroupRun:
    """One execution of one group of one DNN's frame in frame-set ``frame``."""

    dnn: str
    frame: int
    group: int
    accelerator: str
    start_ms: float
    finish_ms: float
    slowdown_segments: Tuple[Tuple[float, float, float], ...]  # (t0_ms, t1_ms, S)


@dataclass(frozen=True)
class SimulationResult:
    predicted_ms: float
    runs: Tuple[GroupRun, ...]  # in order of start time (ties: accelerator order)
    frame_set_finish_ms: Tuple[float, ...]  # C[k]
    dnn_finish_ms: Mapping[str, float]  # finish of each DNN's frame in frame-set 0

    def accelerator_order(self, accelerator: str, frame: int = 0) -> List[Tuple[str, int]]:
        """(dnn, group) in the order ``accelerator`` runs them in frame-set ``frame``."""
        return [(run.dnn, run.group) for run in self.runs
                if run.accelerator == accelerator and run.frame == frame]

    def accelerator_sequence(self, accelerator: str) -> List[Tuple[int, str, int]]:
        """(frame-set, dnn, group) in the order ``accelerator`` starts them, over every
        simulated frame-set: with frame-sets in flight, groups of frame-set k+1 can come
        before the last groups of frame-set k (the order a lockstep runtime follows)."""
        return [(run.frame, run.dnn, run.group) for run in self.runs
                if run.accelerator == accelerator]


def simulate(profile: Profile, schedule: Schedule, *, contention: bool = True) -> SimulationResult:
    """Simulate ``schedule`` on ``profile``; the schedule is checked against the profile first."""
    check_schedule_fits(schedule, profile)
    frames, in_flight = _frame_counts(schedule.objective, schedule.frames_in_flight)
    engine = _Engine(profile, schedule.assignments, in_flight, frames, contention, record=True)
    engine.run()
    finish = tuple(engine.frame_set_finish)
    return SimulationResult(
        predicted_ms=_objective_value(schedule.objective, finish, in_flight),
        runs=tuple(engine.runs),
        frame_set_finish_ms=finish,
        dnn_finish_ms=dict(zip(engine.names, engine.dnn_finish_frame0)),
    )


def predict_ms(profile: Profile, assignments: Mapping[str, Sequence[str]],
               objective: str = "latency", frames_in_flight: int = 2,
               contention: bool = True) -> float:
    """``simulate(...).predicted_ms`` without recording the runs (for search loops).

    ``assignments`` maps DNN -> accelerator per group, in priority order. Raises ScheduleError
    for an assignment that does not fit the profile.
    """
    for name, accs in assignments.items():
        if name not in profile.dnns:
            raise ScheduleError(f"DNN {name!r} is not in the profile: expected one of "
                                f"{', '.join(profile.dnns)}")
        check_assignment(profile, profile.dnns[name], accs)
    frames, in_flight = _frame_counts(objective, frames_in_flight)
    engine = _Engine(profile, assignments, in_flight, frames, contention, record=False)
    engine.run()
    return _objective_value(objective, engine.frame_set_finish, in_flight)


def check_frames_in_flight(frames_in_flight: object, what: str = "frames_in_flight") -> int:
    """``frames_in_flight`` if it is an integer from 1 to 16, else ScheduleError naming it."""
    if isinstance(frames_in_flight, bool) or not isinstance(frames_in_flight, int) \
            or not MIN_FRAMES_IN_FLIGHT <= frames_in_flight <= MAX_FRAMES_IN_FLIGHT:
        raise ScheduleError(f"{what}: expected an integer from {MIN_FRAMES_IN_FLIGHT} to "
                            f"{MAX_FRAMES_IN_FLIGHT}, found {frames_in_flight!r}")
    return frames_in_flight


def window(frames_in_flight: int) -> Tuple[int, int]:
    """(W, M): warm-up and measured frame-sets of the throughput window for ``D`` in flight."""
    d = check_frames_in_flight(frames_in_flight)
    return WARMUP_FRAME_SETS * d, MEASURED_FRAME_SETS * d


def _frame_counts(objective: str, frames_in_flight: int) -> Tuple[int, int]:
    """(frame-sets measured, frame-sets in flight) for an objective: ``W + M`` and ``D``."""
    if objective == "latency":
        return 1, 1
    if objective == "throughput":
        warmup, measured = window(frames_in_flight)
        return warmup + measured, frames_in_flight
    raise ScheduleError(f"objective: expected one of {', '.join(OBJECTIVES)}, found "
                        f"{objective!r}")


def _objective_value(objective: str, finish: Sequence[float], frames_in_flight: int) -> float:
    """Latency: ``C[0]``. Throughput: ``(C[W+M-1] - C[W-1]) / M`` (``window``)."""
    if objective == "latency":
        return finish[0]
    warmup, measured = window(frames_in_flight)
    return (finish[warmup + measured - 1] - finish[warmup - 1]) / measured


class _Engine:
    """The event loop. Items are tuples ``(ready_ms, frame, dnn_index, group_index)``.

    ``frames`` frame-sets are measured. The stream goes on behind them: frame-set ``k`` is
    released when ``k - D`` finishes for every ``k``, so frame-sets up to ``frames + D - 2`` can
    start before the last measured one ends and compete with it (frame-set ``frames - 1 + D`` is
    released no earlier than that end, so it cannot). The loop stops when every measured
    frame-set has finished.
    """

    def __init__(self, profile: Profile, assignments: Mapping[str, Sequence[str]],
                 in_flight: int, frames: int, contention: bool, record: bool):
        self.accs = profile.device.accelerators
        acc_index = {a: i for i, a in enumerate(self.accs)}
        self.names = list(assignments)
        # Per DNN, per group: (accelerator index, work ms, demand GB/s, delay before the next
        # group becomes ready ms). The delay is the transition cost only when the next group
        # runs on another accelerator.
        self.tables: List[List[Tuple[int, float, float, float]]] = []
        for name in self.names:
            accs = assignments[name]
            groups = profile.dnns[name].groups
            table = []
            for g, (acc, group) in enumerate(zip(accs, groups)):
                moves = g + 1 < len(accs) and accs[g + 1] != acc
                table.append((acc_index[acc], group.time_ms[acc], group.demand_gbps[acc],
                              group.transition_ms[acc] if moves else 0.0))
            self.tables.append(table)
        self.curves = ([profile.contention[a] for a in self.accs] if contention else None)
        self.peak = profile.device.peak_bandwidth_gbps
        self.in_flight = in_flight
        self.frames = frames
        self.record = record
        self.frame_set_finish: List[float] = [math.nan] * frames
        self.dnn_finish_frame0: List[float] = [math.nan] * len(self.names)
        self.runs: List[GroupRun] = []

    def run(self) -> None:
        eps = TIME_EPSILON_MS
        n_acc = len(self.accs)
        n_dnn = len(self.names)
        tables = self.tables
        curves = self.curves
        peak = self.peak
        record = self.record
        measured = self.frames
        in_flight = self.in_flight
        released_limit = measured + in_flight - 1  # frame-sets that can matter (see class doc)
        slowdowns: Dict[Tuple[int, float], float] = {}  # (accelerator, total demand) -> S
        # pending[a]: a heap of (ready, frame, dnn, group), the groups waiting for a.
        pending: List[List[Tuple[float, int, int, int]]] = [[] for _ in range(n_acc)]
        push, pop = heapq.heappush, heapq.heappop
        future: List[float] = []  # heap of ready times still ahead of t
        # running[a] = [frame, dnn, group, remaining work, demand, start, S, segments]
        running: List[Optional[list]] = [None] * n_acc
        dnns_left = [n_dnn] * released_limit
        measured_done = 0
        # Steady-state shortcut (search loops only): see _periodic_key.
        seen: Optional[Dict[tuple, Tuple[int, float]]] = None if record or measured < 3 else {}
        finished_frames = 0
        first_unfinished = 0

        def release(frame: int, t: float) -> None:
            for d in range(n_dnn):
                push(pending[tables[d][0][0]], (t, frame, d, 0))

        for k in range(min(in_flight, released_limit)):
            release(k, 0.0)
        t = 0.0
        while True:
            # Starts at t (every finish and release at t is already processed).
            busy = 0
            total_demand = 0.0
            horizon = t + eps
            for a in range(n_acc):
                run = running[a]
                if run is None and pending[a] and pending[a][0][0] <= horizon:
                    # Rule 2: the group that became ready first; times within eps of the
                    # earliest are ties, which go to the earlier frame-set, then the DNN listed
                    # first. Only those ties leave the heap.
                    queue = pending[a]
                    best = pop(queue)
                    if queue and queue[0][0] <= best[0] + eps:
                        tied = [best]
                        limit = min(best[0] + eps, horizon)
                        while queue and queue[0][0] <= limit:
                            tied.append(pop(queue))
                        best = min(tied, key=lambda item: (item[1], item[2]))
                        for item in tied:
                            if item is not best:
                                push(queue, item)
                    _, frame, d, g = best
                    spec = tables[d][g]
                    run = running[a] = [frame, d, g, spec[1], spec[2], t, 1.0,
                                        [] if record else None]
                if run is not None:
                    busy += 1
                    total_demand += run[4]
            # Rates until the next event.
            t_next = math.inf
            for a in range(n_acc):
                run = running[a]
                if run is None:
                    continue
                if curves is None or busy == 1:
                    s = 1.0
                else:
                    key = (a, total_demand)
                    s = slowdowns.get(key)
                    if s is None:
                        s = slowdowns[key] = slowdown(curves[a], total_demand / peak)
                run[6] = s
                finish = t + run[3] * s
                if finish < t_next:
                    t_next = finish
            while future and future[0] <= horizon:
                heapq.heappop(future)
            if future and future[0] < t_next:
                t_next = future[0]
            if t_next == math.inf:
                break
            # Advance to t_next; finish what ends there.
            dt = t_next - t
            finished = []
            for a in range(n_acc):
                run = running[a]
                if run is None:
                    continue
                s = run[6]
                if record:
                    segments = run[7]
                    if segments and segments[-1][2] == s:
                        segments[-1] = (segments[-1][0], t_next, s)
                    else:
                        segments.append((t, t_next, s))
                if t + run[3] * s <= t_next + eps:
                    finished.append(a)
                else:
                    run[3] -= dt / s
            t = t_next
            for a in finished:
                frame, d, g = running[a][0], running[a][1], running[a][2]
                if record and frame < measured:
                    self.runs.append(GroupRun(
                        dnn=self.names[d], frame=frame, group=g, accelerator=self.accs[a],
                        start_ms=running[a][5], finish_ms=t,
                        slowdown_segments=tuple(running[a][7])))
                running[a] = None
                table = tables[d]
                if g + 1 < len(table):
                    ready = t + table[g][3]
                    push(pending[table[g + 1][0]], (ready, frame, d, g + 1))
                    if ready > t:
                        heapq.heappush(future, ready)
                    continue
                if frame == 0:
                    self.dnn_finish_frame0[d] = t
                dnns_left[frame] -= 1
                if dnns_left[frame] == 0:
                    finished_frames += 1
                    if frame < measured:
                        self.frame_set_finish[frame] = t
                        measured_done += 1
                    if frame + in_flight < released_limit:
                        release(frame + in_flight, t)
            if measured_done == measured:
                break
            if seen is not None and finished and finished_frames > first_unfinished:
                while first_unfinished < released_limit and dnns_left[first_unfinished] == 0:
                    first_unfinished += 1
                # Frame-sets done in order, the stream still in its regular regime.
                if (finished_frames == first_unfinished
                        and first_unfinished + in_flight < released_limit
                        and first_unfinished <= measured):
                    key = _periodic_key(t, first_unfinished, running, pending,
                                        dnns_left[first_unfinished:first_unfinished + in_flight])
                    earlier = seen.get(key)
                    if earlier is not None:
                        self._extrapolate(first_unfinished - 1, earlier, t)
                        measured_done = measured
                        break
                    seen[key] = (first_unfinished - 1, t)
        if measured_done != measured:
            raise InternalError(f"simulation stopped at {t} ms with {measured - measured_done} "
                                f"measured frame-sets unfinished")
        if record:
            self.runs.sort(key=lambda r: (r.start_ms, self.accs.index(r.accelerator)))

    def _extrapolate(self, last: int, earlier: Tuple[int, float], t: float) -> None:
        """The state after frame-set ``last`` finished at ``t`` repeats the state after
        frame-set ``earlier[0]`` finished at ``earlier[1]``: the stream is periodic from there,
        ``C[m] = C[m - p] + shift`` with ``p`` frame-sets and ``shift`` ms per period."""
        period = last - earlier[0]
        shift = t - earlier[1]
        finish = self.frame_set_finish
        for m in range(last + 1, self.frames):
            finish[m] = finish[m - period] + shift


def _periodic_key(t: float, first_unfinished: int, running: Sequence[Optional[list]],
                  pending: Sequence[Sequence[Tuple[float, int, int, int]]],
                  dnns_left: Sequence[int]) -> tuple:
    """Everything that decides the future of the stream, relative to time ``t`` and to the
    first unfinished frame-set (times rounded to 1e-9 ms, so that rounding noise cannot make two
    equal states differ by more than the simulator's own time tolerance).

    The simulation is deterministic, so when this key repeats, so does everything after it,
    shifted in time and frame index. Used only without recording (predict_ms); a key that
    never repeats costs nothing but the bookkeeping.
    """
    base = first_unfinished
    return (
        tuple(None if run is None else (run[0] - base, run[1], run[2], round(run[3], 9))
              for run in running),
        tuple(tuple(sorted((round(ready - t, 9), frame - base, d, g)
                           for ready, frame, d, g in queue)) for queue in pending),
        tuple(dnns_left),
    )


def runs_by_accelerator(result: SimulationResult) -> Dict[str, List[GroupRun]]:
    """The runs of each accelerator in start order (Gantt charts, the runtime's order)."""
    out: Dict[str, List[GroupRun]] = {}
    for run in result.runs:
        out.setdefault(run.accelerator, []).append(run)
    return out


def lockstep_orders(profile: Profile, schedule: Schedule, frame_sets: int, *,
                    contention: bool = True) -> Dict[str, List[Tuple[int, str, int]]]:
    """Per accelerator, the ``(frame-set, dnn, group)`` it runs, in the order the simulation
    predicts, for the first ``frame_sets`` frame-sets of the schedule's stream (latency: one
    frame-set at a time, ``D = 1``; throughput: ``D = frames_in_flight``).

    This is the order the runtime's executors follow (lockstep, docs/runtime.md). Frame-sets
    past ``frame_sets`` still compete in the simulation, as in the endless stream, but are
    not listed: a runtime that stops after ``frame_sets`` simply has none of them.
    """
    check_schedule_fits(schedule, profile)
    if isinstance(frame_sets, bool) or not isinstance(frame_sets, int) or frame_sets < 1:
        raise ScheduleError(f"frame_sets: expected an integer >= 1, found {frame_sets!r}")
    in_flight = 1 if schedule.objective == "latency" else _frame_counts(
        schedule.objective, schedule.frames_in_flight)[1]
    engine = _Engine(profile, schedule.assignments, in_flight, frame_sets, contention,
                     record=True)
    engine.run()
    orders: Dict[str, List[Tuple[int, str, int]]] = {a: [] for a in profile.device.accelerators}
    for run in engine.runs:
        orders[run.accelerator].append((run.frame, run.dnn, run.group))
    return orders

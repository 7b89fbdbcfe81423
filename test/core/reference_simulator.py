"""An independent, deliberately plain reference of docs/timing-model.md "Simulation semantics"
(version 1.1).

Written from the spec alone (not from ``hax_conn_core/simulator.py``) so that the tests in
``test_simulator_reference.py`` can compare the two. It favours obviousness over speed: exact
``fractions.Fraction`` arithmetic (every float of the profile is taken at its exact binary
value), a plain loop over events, linear scans instead of heaps.

Readings of the points the spec leaves open (each one a choice the tests pin down):

1. *Which frame-sets exist (throughput).* "Frame-sets stream": frame-set ``k >= W+M`` is
   released too (when ``k - D`` finishes), like on hardware, and competes with the measured
   ones. The simulation stops once frame-sets ``0 .. W+M-1`` have all finished; nothing later
   can change ``C[W+M-1]`` (events are processed in time order). ``stream=False`` gives the
   other reading (only ``W+M`` frame-sets exist) so the tests can tell the two apart.
   Latency: exactly one frame-set, ``D = 1``; nothing else is ever released.
2. *Frame-set finished* = every group of every DNN of that frame-set has finished;
   ``C[k]`` is that time. Frame-set ``k + D`` is released at ``C[k]`` exactly (no delay),
   even though frame-sets may finish out of order.
3. *Ready time.* Group ``i > 0`` is ready at ``finish(i-1)`` when it runs on the same
   accelerator as group ``i-1``, else at ``finish(i-1) + transition_ms[acc(i-1)]`` of group
   ``i-1`` (a zero delay makes it ready at the finish itself). Group 0 is ready at its
   frame-set's release. "Became ready first" compares these ready times only: a ready time
   produced by a transition ending at ``t``, by a finish at ``t`` or by a release at ``t`` are
   all simply ``t``; ties then go to the lower frame-set index, then to the DNN listed first in
   the schedule. Within one frame of one DNN only one group is ever pending, so
   ``(ready time, frame-set, DNN position)`` is a total order.
4. *Same-accelerator successor.* It becomes ready at its predecessor's finish and competes
   like any other group: it does *not* keep the accelerator; a group that has been waiting
   longer (earlier ready time) goes first. It can start at that same ``t`` (finishes are
   processed before starts).
5. *Events at one time ``t``.* All finishes at ``t``, the transition delays that end at ``t``
   and the releases they trigger are processed first (their order does not matter: each only
   adds ready groups with ready time ``t``); then every idle accelerator starts its best ready
   group. An accelerator freed at ``t`` can thus start at ``t`` a group made ready at ``t``.
   Simultaneous finishes on several accelerators are exactly simultaneous (exact arithmetic).
6. *Sending accelerator during a transition.* Free: the group in transit is neither running
   (contributes no demand, does not count as "something running") nor ready.
7. *Slowdown.* ``S = 1`` when no group runs on any other accelerator, whatever the demands
   (even if the own demand is high). Otherwise ``S = interp(contention[a], (own demand on a +
   sum of the demands of the groups running on the other accelerators, each on its own
   accelerator) / peak)``, even if those demands are all 0 (then ``S = interp(curve, own/peak)``,
   which may exceed 1). ``interp`` clamps to the first/last ``s`` outside the breakpoints.
   ``S`` is recomputed for every running group after every batch of starts/finishes and held
   constant in between; a group with ``w`` work left at slowdown ``S`` finishes ``w * S`` later.
8. *Latency ``predicted_ms``.* "the time at which the last group of the last DNN finishes" is
   read as the finish of the frame-set: the latest finish over all DNNs (not the finish of the
   DNN listed last).
9. *Throughput ``predicted_ms``* = ``(C[W+M-1] - C[W-1]) / M``, ``W = 8 D``, ``M = 32 D``
   (version 1.1; version 1 had ``W = 8``, ``M = 32`` for every ``D``), ``D`` from 1 to 16.
10. ``contention=False``: ``S = 1`` always (what ``predict_ms(..., contention=False)`` means).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from hax_conn_core.profile import Profile

WARMUP = 8  # per frame-set in flight: W = 8 D
MEASURED = 32  # M = 32 D
MAX_DEPTH = 16


def window(depth: int) -> Tuple[int, int]:
    """(W, M) for ``depth`` frame-sets in flight (version 1.1)."""
    if not 1 <= depth <= MAX_DEPTH:
        raise ValueError(f"frames_in_flight {depth}: the spec allows 1 to {MAX_DEPTH}")
    return WARMUP * depth, MEASURED * depth


@dataclass(frozen=True)
class RefRun:
    dnn: str
    frame: int
    group: int
    accelerator: str
    start: Fraction
    finish: Fraction


@dataclass(frozen=True)
class RefResult:
    predicted: Fraction
    frame_set_finish: Tuple[Fraction, ...]  # C[k], k = 0 .. needed-1
    runs: Tuple[RefRun, ...]  # in order of start (ties: accelerator order in the profile)


def interp(curve: Sequence[Tuple[float, float]], u: Fraction) -> Fraction:
    points = [(Fraction(a), Fraction(b)) for a, b in curve]
    if u <= points[0][0]:
        return points[0][1]
    if u >= points[-1][0]:
        return points[-1][1]
    for (u0, s0), (u1, s1) in zip(points, points[1:]):
        if u0 <= u <= u1:
            return s0 + (u - u0) * (s1 - s0) / (u1 - u0)
    raise AssertionError("unreachable: breakpoints are sorted")


def reference_simulate(profile: Profile, assignments: Mapping[str, Sequence[str]],
                       objective: str = "latency", frames_in_flight: int = 2,
                       contention: bool = True, stream: bool = True) -> RefResult:
    """Simulate; ``assignments`` in priority order. See the module docstring for readings."""
    names = list(assignments)
    accs = list(profile.device.accelerators)
    peak = Fraction(profile.device.peak_bandwidth_gbps)
    if objective == "latency":
        depth, needed = 1, 1
    else:
        depth = frames_in_flight
        warmup, measured = window(depth)
        needed = warmup + measured
    groups = {n: profile.dnns[n].groups for n in names}

    def acc_of(n: str, g: int) -> str:
        return assignments[n][g]

    # A job is (frame, dnn position, group). ready[acc]: list of (ready time, frame, pos, group).
    ready: Dict[str, List[Tuple[Fraction, int, int, int]]] = {a: [] for a in accs}
    in_transit: List[Tuple[Fraction, int, int, int]] = []  # (ready time, frame, pos, group)
    running: Dict[str, Optional[list]] = {a: None for a in accs}  # [frame, pos, g, left, S, t0]
    dnns_left: Dict[int, int] = {}
    finish: Dict[int, Fraction] = {}
    runs: List[RefRun] = []

    def release(frame: int, t: Fraction) -> None:
        dnns_left[frame] = len(names)
        for pos, n in enumerate(names):
            ready[acc_of(n, 0)].append((t, frame, pos, 0))

    def may_release(frame: int) -> bool:
        return frame < needed if (objective == "latency" or not stream) else True

    for frame in range(depth):
        if may_release(frame):
            release(frame, Fraction(0))

    now = Fraction(0)
    while not all(k in finish for k in range(needed)):
        # Starts at `now` (all finishes/releases/transition ends at `now` already processed).
        for a in accs:
            if running[a] is None and ready[a]:
                best = min(ready[a])
                ready[a].remove(best)
                _, frame, pos, g = best
                work = Fraction(groups[names[pos]][g].time_ms[a])
                running[a] = [frame, pos, g, work, None, now]
        # Slowdowns of everything running.
        for a in accs:
            job = running[a]
            if job is None:
                continue
            others = [b for b in accs if b != a and running[b] is not None]
            if not contention or not others:
                job[4] = Fraction(1)
                continue
            demand = Fraction(groups[names[job[1]]][job[2]].demand_gbps[a])
            for b in others:
                o = running[b]
                demand += Fraction(groups[names[o[1]]][o[2]].demand_gbps[b])
            job[4] = interp(profile.contention[a], demand / peak)
        # Next event.
        candidates = [now + job[3] * job[4] for job in running.values() if job is not None]
        candidates += [item[0] for item in in_transit]
        if not candidates:
            raise AssertionError("deadlock: nothing running, nothing in transit")
        t = min(candidates)
        assert t >= now
        # Progress.
        finished = []
        for a in accs:
            job = running[a]
            if job is None:
                continue
            job[3] -= (t - now) / job[4]
            assert job[3] >= 0
            if job[3] == 0:
                finished.append(a)
        now = t
        for a in finished:
            frame, pos, g, _, _, t0 = running[a]
            running[a] = None
            n = names[pos]
            runs.append(RefRun(n, frame, g, a, t0, now))
            if g + 1 < len(groups[n]):
                nxt = acc_of(n, g + 1)
                delay = Fraction(0) if nxt == a else Fraction(groups[n][g].transition_ms[a])
                if delay == 0:
                    ready[nxt].append((now, frame, pos, g + 1))
                else:
                    in_transit.append((now + delay, frame, pos, g + 1))
            else:
                dnns_left[frame] -= 1
                if dnns_left[frame] == 0:
                    finish[frame] = now
                    if may_release(frame + depth):
                        # Each frame-set releases exactly one other: frame + depth.
                        release(frame + depth, now)
        for item in [i for i in in_transit if i[0] == now]:
            in_transit.remove(item)
            _, frame, pos, g = item
            ready[acc_of(names[pos], g)].append(item)

    c = tuple(finish[k] for k in range(needed))
    if objective == "latency":
        predicted = c[0]
    else:
        predicted = (c[warmup + measured - 1] - c[warmup - 1]) / measured
    runs.sort(key=lambda r: (r.start, accs.index(r.accelerator)))
    return RefResult(predicted=predicted, frame_set_finish=c, runs=tuple(runs))

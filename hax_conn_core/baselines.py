"""The baselines HaX-CoNN is compared with (docs/conventions.md, "Baselines";
docs/baselines.md).

Each baseline is a mapping algorithm that produces a schedule over the profile's layer groups;
the schedule is then judged like any other, by the simulator (``predicted_ms``). None of them
is contention-aware, and Herald and H2H may use more transitions than the planner's budget: each
Baseline reports its transition count (the largest over its DNNs).

- GPU-only: every group on ``gpu``.
- GPU&DLA: every DNN whole on one accelerator; the best such mapping (by the simulator) that
  uses more than one accelerator.
- Herald: per-group accelerator affinity, then load balancing (its scheduler's steps 1-2, where
  the HaX-CoNN artifact stopped).
- H2H: Herald's mapping, then communication-aware remapping (its steps 3-4): groups change
  accelerator when that removes transition costs for less than it adds in computation.

docs/baselines.md says what each step is, where it comes from and how it maps onto GPU + DLA.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from hax_conn_core.errors import ConfigError
from hax_conn_core.profile import Profile
from hax_conn_core.schedule import count_transitions, Schedule
from hax_conn_core.simulator import predict_ms

BASELINE_NAMES = ("GPU-only", "GPU&DLA", "Herald", "H2H")
GPU = "gpu"

Assignment = Dict[str, Tuple[str, ...]]


@dataclass(frozen=True)
class Baseline:
    name: str  # one of BASELINE_NAMES
    schedule: Schedule  # predicted_ms filled in by the simulator
    transitions: int  # the largest number of transitions of any DNN


def all_baselines(profile: Profile, objective: str = "latency",
                  frames_in_flight: int = 2, deadline: Optional[float] = None
                  ) -> List[Baseline]:
    """Every baseline that applies to ``profile``, in BASELINE_NAMES order.

    GPU-only needs an accelerator called ``gpu`` that runs every group; GPU&DLA needs more than
    one accelerator. A baseline that does not apply is left out (its reason: ``why_not``).
    ``deadline`` (a ``time.monotonic()`` value): the searches inside (GPU&DLA's over whole-DNN
    mappings, Herald's load balancing) stop there with the best found so far; every baseline
    is still simulated once.
    """
    out = []
    for name in BASELINE_NAMES:
        if why_not(profile, name) is None:
            out.append(baseline(profile, name, objective, frames_in_flight, deadline))
    return out


def baseline(profile: Profile, name: str, objective: str = "latency",
             frames_in_flight: int = 2, deadline: Optional[float] = None) -> Baseline:
    """One baseline by name; ConfigError for an unknown name or one that does not apply."""
    if name not in BASELINE_NAMES:
        raise ConfigError(f"unknown baseline {name!r}: expected one of "
                          f"{', '.join(BASELINE_NAMES)}")
    reason = why_not(profile, name)
    if reason is not None:
        raise ConfigError(f"baseline {name} does not apply to this profile: {reason}")
    if name == "GPU-only":
        assignment = gpu_only(profile)
    elif name == "GPU&DLA":
        assignment = best_whole_dnn_mapping(profile, objective, frames_in_flight, deadline)
    elif name == "Herald":
        assignment = herald(profile, deadline)
    else:
        assignment = h2h(profile, deadline)
    ms = predict_ms(profile, assignment, objective, frames_in_flight)
    schedule = Schedule(objective=objective, assignments=assignment, predicted_ms=ms,
                        frames_in_flight=frames_in_flight, profile_sha256=profile.sha256,
                        solver={"name": name, "baseline": True})
    return Baseline(name=name, schedule=schedule,
                    transitions=max(count_transitions(a) for a in assignment.values()))


def why_not(profile: Profile, name: str) -> Optional[str]:
    """Why baseline ``name`` does not apply to ``profile``, or None if it does."""
    accs = profile.device.accelerators
    if name == "GPU-only":
        if GPU not in accs:
            return f"the device has no accelerator called {GPU!r} ({', '.join(accs)})"
        for dnn in profile.dnns.values():
            for i, group in enumerate(dnn.groups):
                if not group.runs_on(GPU):
                    return f"the GPU cannot run group {i} of {dnn.name}"
    if name == "GPU&DLA":
        if len(accs) < 2:
            return "the device has a single accelerator"
        for dnn in profile.dnns.values():
            if not dnn.accelerators_for_all_groups(accs):
                return f"no accelerator runs every group of {dnn.name}"
    return None


# --- GPU-only and GPU&DLA --------------------------------------------------------------------

def gpu_only(profile: Profile) -> Assignment:
    return {name: (GPU,) * len(dnn.groups) for name, dnn in profile.dnns.items()}


def best_whole_dnn_mapping(profile: Profile, objective: str = "latency",
                           frames_in_flight: int = 2, deadline: Optional[float] = None
                           ) -> Assignment:
    """Every DNN whole on one accelerator: the best combination by the simulator.

    Combinations that use at least two accelerators are preferred (the baseline is "GPU & DLA";
    all on the GPU is GPU-only); if every DNN can run whole only on the same single
    accelerator, that is the answer.

    Up to ``EXHAUSTIVE_LIMIT`` combinations, every one is simulated (ties: the first in device
    order). Beyond, there are too many (2^50 for 50 DNNs): a search over them instead, in
    memory linear in the DNNs (``_search_whole_dnn_mappings``). ``deadline`` (a
    ``time.monotonic()`` value) stops either with the best combination simulated so far (at
    least one is).
    """
    accs = profile.device.accelerators
    names = list(profile.dnns)
    choices = [profile.dnns[n].accelerators_for_all_groups(accs) for n in names]
    mixed_exists = len(names) > 1 and len({a for c in choices for a in c}) > 1

    def assignment_of(combo: Sequence[str]) -> Assignment:
        return {n: (a,) * len(profile.dnns[n].groups) for n, a in zip(names, combo)}

    total = math.prod(len(c) for c in choices)
    if total > EXHAUSTIVE_LIMIT:
        return assignment_of(_search_whole_dnn_mappings(profile, names, choices, mixed_exists,
                                                        objective, frames_in_flight,
                                                        deadline))
    best, best_ms = None, math.inf
    for combo in itertools.product(*choices):  # lazily: never the whole list
        if mixed_exists and len(set(combo)) == 1:
            continue
        if best is not None and _past(deadline):
            break
        assignment = assignment_of(combo)
        ms = predict_ms(profile, assignment, objective, frames_in_flight)
        if ms < best_ms:
            best, best_ms = assignment, ms
    return best


#: ``best_whole_dnn_mapping`` simulates every combination when there are at most this many.
EXHAUSTIVE_LIMIT = 1024
#: ... and beyond, its search simulates at most this many (a safety net like the deadline).
WHOLE_DNN_SEARCH_BUDGET = 600


def _past(deadline: Optional[float]) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _search_whole_dnn_mappings(profile: Profile, names: Sequence[str],
                               choices: Sequence[Tuple[str, ...]], mixed_exists: bool,
                               objective: str, frames_in_flight: int,
                               deadline: Optional[float]) -> Tuple[str, ...]:
    """A deterministic search over whole-DNN combinations too many to enumerate.

    Start: longest-processing-time-first list scheduling on the standalone whole-DNN times
    (the DNN with the longest time first, each onto the accelerator whose load would end
    lowest; ties: device order), made mixed if it is not. Then coordinate descent under the
    simulator: each DNN in turn moves to each other accelerator it can run on whole, kept when
    the simulated value improves, sweeps repeated until one improves nothing, the budget
    (``WHOLE_DNN_SEARCH_BUDGET`` simulations) is spent or the deadline passes.
    """
    accs = profile.device.accelerators
    whole = [{a: sum(g.time_ms[a] for g in profile.dnns[n].groups) for a in c}
             for n, c in zip(names, choices)]
    loads = {a: 0.0 for a in accs}
    combo = [""] * len(names)
    order = sorted(range(len(names)), key=lambda d: (-max(whole[d].values()), d))
    for d in order:
        a = min(choices[d], key=lambda acc: (loads[acc] + whole[d][acc], accs.index(acc)))
        combo[d] = a
        loads[a] += whole[d][a]
    if mixed_exists and len(set(combo)) == 1:
        for d, options in enumerate(choices):
            other = [a for a in options if a != combo[d]]
            if other:
                combo[d] = other[0]
                break

    def value(c: Sequence[str]) -> float:
        return predict_ms(profile, {n: (a,) * len(profile.dnns[n].groups)
                                    for n, a in zip(names, c)}, objective, frames_in_flight)

    best_ms = value(combo)
    spent = 1
    improved = True
    while improved and spent < WHOLE_DNN_SEARCH_BUDGET and not _past(deadline):
        improved = False
        for d, options in enumerate(choices):
            for a in options:
                if a == combo[d] or spent >= WHOLE_DNN_SEARCH_BUDGET or _past(deadline):
                    continue
                trial = combo[:d] + [a] + combo[d + 1:]
                if mixed_exists and len(set(trial)) == 1:
                    continue
                ms = value(trial)
                spent += 1
                if ms < best_ms * (1.0 - 1e-12):
                    combo, best_ms, improved = trial, ms, True
    return tuple(combo)


# --- Herald: affinity, then load balancing ---------------------------------------------------

def herald(profile: Profile, deadline: Optional[float] = None) -> Assignment:
    """Herald's steps 1-2 over the layer groups (no transition or contention awareness).

    1. Affinity: each group on the accelerator where its standalone time is smallest.
    2. Load balancing: while moving one group off the most loaded accelerator (load = sum of
       its groups' standalone times) lowers the largest load, make the move that lowers it most
       (ties: the smallest added time, then the earliest DNN and group).

    ``deadline`` (a ``time.monotonic()`` value) stops the load balancing with the moves made.
    """
    accs = profile.device.accelerators
    assignment = {name: [_fastest(group.time_ms, accs) for group in dnn.groups]
                  for name, dnn in profile.dnns.items()}
    _balance_load(profile, assignment, deadline)
    return {name: tuple(a) for name, a in assignment.items()}


def _fastest(time_ms: Mapping[str, float], accs: Sequence[str]) -> str:
    return min((a for a in accs if a in time_ms), key=lambda a: (time_ms[a], accs.index(a)))


def _loads(profile: Profile, assignment: Mapping[str, Sequence[str]]) -> Dict[str, float]:
    loads = {a: 0.0 for a in profile.device.accelerators}
    for name, accs in assignment.items():
        for acc, group in zip(accs, profile.dnns[name].groups):
            loads[acc] += group.time_ms[acc]
    return loads


def _balance_load(profile: Profile, assignment: Dict[str, List[str]],
                  deadline: Optional[float] = None) -> None:
    accs = profile.device.accelerators
    while not _past(deadline):
        loads = _loads(profile, assignment)
        busiest = max(accs, key=lambda a: (loads[a], -accs.index(a)))
        current = loads[busiest]
        best = None  # (new max load, added time, dnn index, group index, target)
        for d, (name, dnn) in enumerate(profile.dnns.items()):
            for g, group in enumerate(dnn.groups):
                if assignment[name][g] != busiest:
                    continue
                for target in accs:
                    if target == busiest or not group.runs_on(target):
                        continue
                    moved = dict(loads)
                    moved[busiest] -= group.time_ms[busiest]
                    moved[target] += group.time_ms[target]
                    key = (max(moved.values()), group.time_ms[target] - group.time_ms[busiest],
                           d, g, accs.index(target))
                    if best is None or key < best:
                        best = key
        if best is None or best[0] >= current - 1e-12:
            return
        _, _, d, g, t = best
        assignment[list(profile.dnns)[d]][g] = accs[t]


# --- H2H: Herald's mapping, then communication-aware remapping -------------------------------

def h2h(profile: Profile, deadline: Optional[float] = None) -> Assignment:
    """H2H's steps over the layer groups: Herald's mapping, then communication-aware remapping.

    3. Remapping islands: a run of groups whose neighbours on both sides share another
       accelerator moves there when that lowers the estimate below (removing two transitions).
    4. Flipping: single groups change accelerator, one at a time in DNN and group order, while
       that lowers the estimate; repeated until nothing changes.

    The estimate is H2H's computation-plus-communication view without contention: the larger of
    the busiest accelerator's load and the longest DNN chain (its groups' standalone times plus
    the transition costs of its switches). A trial move re-adds only the moved DNN's terms
    (``_Estimate``), so a pass costs about groups x (groups per DNN + DNNs), not groups^2.
    ``deadline`` (a ``time.monotonic()`` value) stops the remapping with the moves made.
    """
    assignment = {name: list(a) for name, a in herald(profile, deadline).items()}
    estimate = _Estimate(profile, assignment)
    _remap_islands(profile, assignment, estimate, deadline)
    _flip_groups(profile, assignment, estimate, deadline)
    return {name: tuple(a) for name, a in assignment.items()}


def h2h_estimate_ms(profile: Profile, assignment: Mapping[str, Sequence[str]]) -> float:
    """H2H's latency estimate of an assignment (no contention, no ordering)."""
    return _Estimate(profile, assignment).value()


class _Estimate:
    """H2H's estimate, kept per DNN: each DNN's load per accelerator and its chain, so that a
    trial assignment of one DNN is judged by re-adding that DNN's terms only. A pure function
    of the assignment (sums taken per DNN, then over DNNs in order): no drift from updates."""

    def __init__(self, profile: Profile, assignment: Mapping[str, Sequence[str]]):
        self.profile = profile
        self.accs = profile.device.accelerators
        self.names = list(assignment)
        self.terms = {name: self._terms(name, assignment[name]) for name in self.names}

    def _terms(self, name: str, accs: Sequence[str]) -> Tuple[Dict[str, float], float]:
        groups = self.profile.dnns[name].groups
        load = {a: 0.0 for a in self.accs}
        chain = 0.0
        for i, (acc, group) in enumerate(zip(accs, groups)):
            load[acc] += group.time_ms[acc]
            chain += group.time_ms[acc]
            if i + 1 < len(accs) and accs[i + 1] != acc:
                chain += group.transition_ms[acc]
        return load, chain

    def value(self, name: Optional[str] = None, accs: Optional[Sequence[str]] = None) -> float:
        """The estimate (ms); with ``name`` and ``accs``: as if ``name`` had ``accs``."""
        trial = self._terms(name, accs) if name is not None else None
        loads = {a: 0.0 for a in self.accs}
        longest = 0.0
        for n in self.names:
            load, chain = trial if n == name else self.terms[n]
            for a, ms in load.items():
                loads[a] += ms
            longest = max(longest, chain)
        return max(max(loads.values()), longest)

    def set(self, name: str, accs: Sequence[str]) -> None:
        self.terms[name] = self._terms(name, accs)


def _remap_islands(profile: Profile, assignment: Dict[str, List[str]], estimate: _Estimate,
                   deadline: Optional[float]) -> None:
    changed = True
    while changed and not _past(deadline):
        changed = False
        for name, dnn in profile.dnns.items():
            accs = assignment[name]
            for start, end in _islands(accs):
                if start == 0 or end == len(accs):
                    continue
                outer = accs[start - 1]
                if accs[end] != outer or not all(g.runs_on(outer)
                                                 for g in dnn.groups[start:end]):
                    continue
                before = estimate.value()
                trial = accs[:start] + [outer] * (end - start) + accs[end:]
                if estimate.value(name, trial) < before - 1e-12:
                    assignment[name] = trial
                    estimate.set(name, trial)
                    changed = True
                    break


def _islands(accs: Sequence[str]) -> List[Tuple[int, int]]:
    """Maximal runs [start, end) of equal accelerators."""
    runs, start = [], 0
    for i in range(1, len(accs) + 1):
        if i == len(accs) or accs[i] != accs[start]:
            runs.append((start, i))
            start = i
    return runs


def _flip_groups(profile: Profile, assignment: Dict[str, List[str]], estimate: _Estimate,
                 deadline: Optional[float]) -> None:
    devices = profile.device.accelerators
    changed = True
    while changed and not _past(deadline):
        changed = False
        for name, dnn in profile.dnns.items():
            for g, group in enumerate(dnn.groups):
                before = estimate.value()
                for target in devices:
                    if target == assignment[name][g] or not group.runs_on(target):
                        continue
                    trial = list(assignment[name])
                    trial[g] = target
                    if estimate.value(name, trial) < before - 1e-12:
                        assignment[name] = trial
                        estimate.set(name, trial)
                        changed = True
                        break

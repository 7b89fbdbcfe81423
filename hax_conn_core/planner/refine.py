"""The search: Z3 proposes assignments, the simulator judges them (docs/planner.md, "Search").

1. Seeds: the baselines that fit the transition budget, simulated; the best is the incumbent.
2. Local search: coordinate descent under the simulator from every seed.
3. Refinement (``Search._refine``): Z3 re-solves two DNNs at a time, the others fixed, for
   assignments that contention *predicted* from simulating the incumbent (estimate.py) says
   come near or beat it; each is simulated; a better one is the new incumbent and recalibrates
   the prediction; until a round over every pair improves nothing (status ``converged``).
4. Proof (when ``prove``): Z3 is asked for an untried assignment whose model value, a lower
   bound of its simulated value (formulation.py), is at most ``incumbent / (1 + gap)``; each
   is simulated, kept if better, and blocked. *Unsat* proves the incumbent within ``gap`` of
   the best schedule the simulator can find (status ``optimal``). A bisection first reaches
   the smallest model values, simulating what it meets.

Every simulated assignment is blocked, so Z3 never proposes one twice. Everything is
deterministic: Z3 runs with a fixed seed and a resource limit (``rlimit``) per check and in
total; a wall-clock deadline is only a safety net. When a limit stops the search, the best
schedule found so far is returned with a warning.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from hax_conn_core.errors import SolverError
from hax_conn_core.planner.formulation import Assignments, CheckOutcome, Formulation
from hax_conn_core.profile import Profile
from hax_conn_core.simulator import predict_ms

#: Default resource limits (Z3 ``rlimit`` units; a few thousand per millisecond on one core).
RLIMIT_PER_CHECK = 20_000_000
RLIMIT_TOTAL = 200_000_000
#: Most assignments simulated before the search stops (a safety net like the deadline).
MAX_CANDIDATES = 2000
#: Most assignments the local search before Z3 may simulate (they count as candidates).
LOCAL_SEARCH_BUDGET = 300
#: The refinement re-solves this many DNNs at a time, the others fixed (``Search._refine``).
REFINE_DNNS = 2
#: ... and simulates assignments predicted within this fraction of the incumbent: predictions
#: err both ways, so one predicted slightly worse may simulate better.
REFINE_SLACK = 0.01
#: The ``source`` of a schedule found by the local search (not a baseline, not Z3).
LOCAL_SEARCH = "local-search"
#: With a deadline, the search stops this share of its time early (what follows it: the
#: report) or earlier, by the time one recorded simulation took (the plan's final one).
DEADLINE_MARGIN = 0.03


@dataclass(frozen=True)
class Seed:
    """A schedule known before the search (a baseline), by name."""

    name: str
    assignments: Mapping[str, Tuple[str, ...]]


@dataclass
class SearchOutcome:
    assignments: Assignments
    predicted_ms: float
    source: str  # "z3" or the name of the seed that stayed best
    status: str  # "optimal" | "converged" | "resource-limit" | "timeout" | "candidate-limit"
    lower_bound_ms: Optional[float]  # proven bound on every schedule's simulated value
    checks: int = 0
    candidates: int = 0
    z3_time_s: float = 0.0
    rlimit_used: int = 0
    warnings: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


def _key(assignments: Mapping[str, Sequence[str]], names: Sequence[str]) -> Tuple:
    return tuple(tuple(assignments[n]) for n in names)


class Search:
    def __init__(self, profile: Profile, objective: str, max_transitions: int,
                 frames_in_flight: int, *, gap: float = 0.01, seed: int = 0,
                 rlimit_per_check: int = RLIMIT_PER_CHECK, rlimit_total: int = RLIMIT_TOTAL,
                 deadline: Optional[float] = None, prove: bool = True,
                 proof_optional: bool = False):
        self.profile = profile
        self.objective = objective
        self.k = max_transitions
        self.frames = frames_in_flight
        self.gap = gap
        self.seed = seed
        self.rlimit_per_check = rlimit_per_check
        self.rlimit_total = rlimit_total
        self.deadline = deadline
        self.prove = prove
        # The proof was not asked for (prove=None): a limit that stops it is no failure.
        self.proof_optional = proof_optional
        self.names = tuple(profile.dnns)
        self.tried: Dict[Tuple, float] = {}
        self.best: Optional[Assignments] = None
        self.best_ms = float("inf")
        self.source = ""
        self.checks = 0
        self.rlimit_used = 0
        self.z3_time = 0.0
        self.stop = ""
        self.reason = ""
        # The longest recorded simulation seen (a calibration): what the caller's final
        # simulate() of the plan will take, kept free before the deadline.
        self.record_s = 0.0
        self._started = time.monotonic()

    def _remaining_s(self) -> float:
        """Seconds left before the deadline, less a reserve for what follows the search (the
        final simulation of the plan and the report): inf without a deadline."""
        if self.deadline is None:
            return math.inf
        reserve = max(DEADLINE_MARGIN * max(0.0, self.deadline - self._started),
                      1.5 * self.record_s)
        return self.deadline - reserve - time.monotonic()

    def _past_deadline(self) -> bool:
        if self._remaining_s() <= 0.0:
            self.stop = self.stop or "timeout"
            return True
        return False

    def simulate(self, assignments: Mapping[str, Sequence[str]], source: str) -> float:
        key = _key(assignments, self.names)
        if key in self.tried:
            return self.tried[key]
        ms = predict_ms(self.profile, {n: tuple(assignments[n]) for n in self.names},
                        objective=self.objective, frames_in_flight=self.frames)
        self.tried[key] = ms
        # Strictly better only, so that ties keep the earlier (seed) schedule: deterministic.
        if ms < self.best_ms * (1.0 - 1e-12):
            self.best_ms = ms
            self.best = {n: tuple(assignments[n]) for n in self.names}
            self.source = source
        return ms

    def run(self, seeds: Sequence[Seed]) -> SearchOutcome:
        for s in seeds:
            if self.best is not None and self._past_deadline():
                break
            self.simulate(s.assignments, s.name)
        if self.best is not None and self._past_deadline():
            return self._outcome("timeout", None)
        self._local_search(seeds)
        if self.best is not None and self._past_deadline():
            return self._outcome("timeout", None)
        form = Formulation(self.profile, self.objective, self.k, self.frames, seed=self.seed,
                           deadline=None if self.deadline is None
                           else time.monotonic() + self._remaining_s())
        for key in self.tried:
            form.block(dict(zip(self.names, key)))
        self.form = form
        if self.best is None:
            # No seed fits the transition budget: Z3 finds a first schedule (any), or proves
            # that none exists (SolverError).
            self._check(math.inf)
            if self.best is None:
                raise SolverError(f"no schedule found: no baseline fits {self.k} transition(s) "
                                  f"per DNN, and the search stopped at "
                                  f"{self._limit_text(self.stop)} before Z3 found one; "
                                  f"allow more time or transitions")
        self._refine()
        refined = not self.stop
        if not self.prove and self.best is not None:
            return self._outcome(self.stop or "converged", None)
        # Proof. Bisection first: down to the smallest model value of any untried assignment
        # (to within a band), every assignment met on the way simulated. Then every untried
        # assignment whose model value is at most incumbent / (1 + gap) is simulated, until
        # none is left: the model value bounds the simulated value from below.
        lower, upper = 0.0, self.best_ms
        while upper - lower > self._band() and not self.stop:
            mid = (lower + upper) / 2.0 if upper != math.inf else math.inf
            out = self._check(mid)
            if out is None:
                break
            if out.status == "unsat":
                lower = mid
            else:
                upper = min(out.model_ms, self.best_ms)
        status = ""
        while not self.stop:
            target = self.best_ms / (1.0 + self.gap)
            if lower >= target:
                status = "optimal"
                break
            bound = target
            out = self._check(bound)
            if out is not None and out.status == "unsat":
                lower = bound
        status = self.stop or status
        notes = []
        if self.proof_optional and refined and status in ("candidate-limit", "resource-limit"):
            # The proof was a bonus (prove=None): the plan is the refinement's, as on a large
            # problem, and what the proof ruled out still bounds how far it can be from best.
            gap = (f": the plan is at most {100.0 * (self.best_ms / lower - 1.0):.1f}% above "
                   f"the best possible" if lower else "")
            notes.append(f"not proven optimal: the proof stopped at "
                         f"{self._limit_text(status)}{gap}")
            status = "converged"
        return self._outcome(status, lower, notes)

    def _refine(self) -> None:
        """Z3 re-solves around the incumbent with contention predicted from simulating it.

        For every pair of DNNs in turn (the others keep the incumbent's assignment), Z3 is
        asked for untried assignments whose predicted busy times and chains (estimate.py) come
        within ``REFINE_SLACK`` of the incumbent, and that the bound does not rule out; each
        is simulated; a better one becomes the incumbent and the prediction is recalibrated
        on it. It stops when a whole round over the pairs improves nothing (or at a limit).
        Pairs, not the whole set: Z3 proves "no such assignment" for two DNNs in milliseconds,
        but for four it must rule out near-balanced partitions of every group, which took
        seconds per check (docs/planner.md, "What we tried").
        """
        from itertools import combinations, count

        from hax_conn_core.planner.estimate import calibrated_wall_ms

        if self.best is None:
            return  # nothing to refine around: the proof finds the first schedule
        n = len(self.names)
        subsets = list(combinations(range(n), min(REFINE_DNNS, n)))
        calibrated_on = None
        stale = 0
        gave_up: set = set()  # pairs whose check ran out of resources since the last improvement
        improved_on = self.best_ms
        reason = ""
        for turn in count():
            if stale == len(subsets) or self.stop:
                break
            searched = subsets[turn % len(subsets)]
            fixed = {name: self.best[name] for d, name in enumerate(self.names)
                     if d not in searched}
            before = self.best_ms
            if before < improved_on:
                gave_up.clear()  # a pair Z3 gave up on gets asked again around the new plan
                improved_on = before
            while not self.stop:
                if calibrated_on != self.best_ms:
                    if self._past_deadline():
                        break
                    t0 = time.monotonic()
                    self.form.set_estimate(calibrated_wall_ms(
                        self.profile, self.names, self.best, self.objective, self.frames))
                    self.record_s = max(self.record_s, time.monotonic() - t0)
                    calibrated_on = self.best_ms
                out = self._check(self.best_ms * (1.0 + REFINE_SLACK), estimate=True,
                                  fixed=fixed, soft=True)
                if out is not None and out.status == "unknown":
                    gave_up.add(searched)  # this pair alone ran out: on to the next one
                    reason = out.reason
                if out is None or out.status != "sat":
                    break
            stale = 0 if self.best_ms < before else stale + 1
        if gave_up and not self.stop:
            # Not converged: around the final plan, Z3 could not answer for these pairs.
            self.stop = "resource-limit"
            self.reason = f"{reason} on {len(gave_up)} pair(s) of DNNs"

    def _local_search(self, seeds: Sequence[Seed]) -> None:
        """Coordinate descent from every seed, before Z3: a better incumbent early means fewer
        assignments fall under ``incumbent / (1 + gap)`` and Z3 has fewer to rule out.

        A move changes one DNN's assignment to one at Hamming distance 1 or 2 within the
        transition budget (shift a transition point, add or drop one at an end, flip a group);
        DNNs and moves are scanned in a fixed order and every move that improves the simulated
        value is taken as it is met; sweeps repeat until one improves nothing or the budget is
        spent. (Measured: stopping a DNN's scan at its first improvement simulates more.)
        Deterministic; every simulated assignment is blocked for Z3 like any other.
        """
        from hax_conn_core.schedule import count_transitions

        budget = len(self.tried) + LOCAL_SEARCH_BUDGET
        accs = tuple(self.profile.device.accelerators)

        def moves(current: Tuple[str, ...], n: int):
            groups = self.profile.dnns[self.names[n]].groups
            out = []
            for i in range(len(current)):
                for a in accs:
                    if a == current[i] or not groups[i].runs_on(a):
                        continue
                    one = current[:i] + (a,) + current[i + 1:]
                    if count_transitions(one) <= self.k:
                        out.append(one)
                    if i + 1 < len(current) and groups[i + 1].runs_on(a) \
                            and current[i + 1] != a:
                        two = one[:i + 1] + (a,) + one[i + 2:]
                        if count_transitions(two) <= self.k:
                            out.append(two)
            return out

        starts = []
        for s in seeds:
            key = _key(s.assignments, self.names)
            if key not in starts:
                starts.append(key)
        for start in starts:
            current = list(start)
            current_ms = self.tried[start]
            improved = True
            while improved and len(self.tried) < budget and not self._past_deadline():
                improved = False
                for n in range(len(self.names)):
                    for option in moves(current[n], n):
                        if len(self.tried) >= budget or self._past_deadline():
                            break
                        trial = current[:n] + [option] + current[n + 1:]
                        ms = self.simulate(dict(zip(self.names, trial)), LOCAL_SEARCH)
                        if ms < current_ms * (1.0 - 1e-12):
                            # Taken at once; the scan goes on through the moves listed
                            # for this DNN (neighbours of its assignment when it began).
                            current, current_ms, improved = trial, ms, True

    def _band(self) -> float:
        return 2.0 * self.gap * self.best_ms if self.best_ms != math.inf else math.inf

    def _check(self, bound: float, estimate: bool = False,
               fixed: Optional[Mapping[str, Sequence[str]]] = None,
               soft: bool = False) -> Optional[CheckOutcome]:
        """One Z3 check; a found assignment is simulated and blocked. None when stopped.

        ``soft``: a check that alone exhausts its per-check resource limit is returned as
        ``unknown`` and the search goes on (the refinement moves to the next pair).
        """
        if len(self.tried) >= MAX_CANDIDATES:
            self.stop = "candidate-limit"
            return None
        remaining_ms = None
        if self.deadline is not None:
            remaining_ms = int(min(self._remaining_s(), 1e6) * 1000)
            if remaining_ms <= 0:
                self.stop = "timeout"
                return None
        budget = min(self.rlimit_per_check, self.rlimit_total - self.rlimit_used)
        if budget <= 0:
            self.stop = "resource-limit"
            return None
        t0 = time.perf_counter()
        out = self.form.check(bound, budget, remaining_ms, estimate=estimate, fixed=fixed)
        self.z3_time += time.perf_counter() - t0
        self.checks += out.solves
        self.rlimit_used += out.rlimit_used
        if out.status == "unknown":
            # Z3 says "canceled" for both limits: the clock tells them apart.
            timed_out = self.deadline is not None and self._remaining_s() <= 0.01
            if soft and not timed_out and self.rlimit_used < self.rlimit_total:
                return out  # the caller decides
            self.reason = out.reason
            self.stop = "timeout" if timed_out else "resource-limit"
            return None
        if out.status == "unsat":
            if self.best is None:
                raise SolverError(f"no schedule fits: with at most {self.k} transition(s) per "
                                  f"DNN, some DNN has groups that no sequence of accelerators "
                                  f"can run; allow more transitions")
            return out
        self.simulate(out.assignments, "z3")
        self.form.block(out.assignments)
        return out

    def _limit_text(self, status: str) -> str:
        return {"timeout": "the time limit (--timeout)",
                "resource-limit": "Z3's resource limit (rlimit)",
                "candidate-limit": f"the limit of {MAX_CANDIDATES} simulated candidates"}[status]

    def _outcome(self, status: str, lower: Optional[float],
                 notes: Sequence[str] = ()) -> SearchOutcome:
        warnings = []
        # Every term of the model bounds the simulated value from below (formulation.py), so
        # what Z3 ruled out bounds every schedule. Without a proof there is no bound.
        lower_bound = min(lower, self.best_ms) if lower else None
        if status in ("timeout", "resource-limit", "candidate-limit"):
            msg = (f"the search stopped at {self._limit_text(status)} after {self.checks} Z3 "
                   f"checks and {len(self.tried)} simulated schedules; returning the best found "
                   f"so far")
            if lower_bound:
                msg += (f" (at most {100.0 * (self.best_ms / lower_bound - 1.0):.1f}% above the "
                        f"best possible)")
            if self.reason:
                msg += f" [Z3: {self.reason}]"
            warnings.append(msg)
        return SearchOutcome(assignments=self.best, predicted_ms=self.best_ms, source=self.source,
                             status=status, lower_bound_ms=lower_bound, checks=self.checks,
                             candidates=len(self.tried), z3_time_s=self.z3_time,
                             rlimit_used=self.rlimit_used, warnings=warnings, notes=list(notes))

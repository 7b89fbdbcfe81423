"""``plan()``: the planner's entry point, and its result.

``plan(profile, objective="latency", max_transitions=1)`` returns a :class:`PlanResult`: the
schedule (``predicted_ms`` is the simulator's value for it, always), the baselines judged the
same way, how the search ended and any warnings. docs/planner.md explains the method.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from hax_conn_core.errors import ConfigError
from hax_conn_core.profile import Profile
from hax_conn_core.schedule import count_transitions, OBJECTIVES, Schedule

#: A plan is proven within this fraction of the best schedule the simulator can find
#: (both objectives: the Z3 model's value is a lower bound of the simulated one).
DEFAULT_GAP = 0.01
#: The Z3 random seed: fixed, so that the same input gives the same plan.
DEFAULT_SEED = 0
#: ``prove=None`` proves only problems with at most this many schedules: beyond, the proof
#: must rule out more near-optimal schedules than a few seconds allow (docs/planner.md).
PROVE_LIMIT = 100_000
#: The ``source`` of a plan that is a hint (``plan(hints=...)``) the search did not beat.
HINT = "hint"


def count_schedules(profile: Profile, max_transitions: int) -> int:
    """How many schedules there are: per DNN, the assignments with at most
    ``max_transitions`` changes that use only accelerators able to run each group, multiplied
    over the DNNs."""
    accs = tuple(profile.device.accelerators)
    total = 1
    for dnn in profile.dnns.values():
        # ways[a][k]: assignments of the groups so far ending on a with k transitions.
        ways = {a: [0] * (max_transitions + 1) for a in accs}
        for i, group in enumerate(dnn.groups):
            new = {a: [0] * (max_transitions + 1) for a in accs}
            for a in accs:
                if not group.runs_on(a):
                    continue
                if i == 0:
                    new[a][0] = 1
                    continue
                for k in range(max_transitions + 1):
                    new[a][k] = ways[a][k] + (sum(ways[b][k - 1] for b in accs if b != a)
                                              if k else 0)
            ways = new
        total *= sum(sum(counts) for counts in ways.values())
    return total


@dataclass(frozen=True)
class PlanResult:
    """What ``plan()`` found.

    ``schedule.predicted_ms`` is the simulator's value of the returned schedule. ``status``:
    ``optimal`` (proven within ``gap`` of the best schedule the simulator can find),
    ``converged`` (the refinement's plan, not proven: ``notes`` says why), ``timeout``,
    ``resource-limit`` or ``candidate-limit`` (stopped early: see ``warnings``). ``source`` is
    ``z3``, ``local-search`` or the name of the baseline that stayed best.
    """

    schedule: Schedule
    baselines: Tuple[Any, ...]  # hax_conn_core.baselines.Baseline, all of them
    status: str
    source: str
    lower_bound_ms: Optional[float]
    time_s: float
    z3_time_s: float
    checks: int
    candidates: int
    warnings: Tuple[str, ...]
    notes: Tuple[str, ...]

    @property
    def predicted_ms(self) -> float:
        return float(self.schedule.predicted_ms)

    @property
    def max_transitions(self) -> int:
        return int(self.schedule.max_transitions)

    def best_baseline(self, within_budget: bool = False):
        """The baseline with the smallest predicted time (ties: the one listed first).

        ``within_budget``: only those using at most ``max_transitions`` per DNN, the ones the
        plan is guaranteed never to lose to (docs/conventions.md, "Baselines").
        """
        pool = [b for b in self.baselines
                if not within_budget or b.transitions <= self.max_transitions]
        return min(pool, key=lambda b: b.schedule.predicted_ms) if pool else None

    def improvement_pct(self, within_budget: bool = False) -> Optional[float]:
        """How much faster than the best baseline, in percent of the baseline's time."""
        best = self.best_baseline(within_budget)
        if best is None:
            return None
        ref = best.schedule.predicted_ms
        return 100.0 * (ref - self.predicted_ms) / ref


def _check_options(objective: str, max_transitions: Any, timeout_s: Optional[float],
                   frames_in_flight: Any) -> None:
    if objective not in OBJECTIVES:
        raise ConfigError(f"objective: expected one of {', '.join(OBJECTIVES)}, found "
                          f"{objective!r}")
    if isinstance(max_transitions, bool) or not isinstance(max_transitions, int) \
            or max_transitions < 0:
        raise ConfigError(f"max transitions: expected an integer >= 0, found {max_transitions!r}")
    if timeout_s is not None and not timeout_s > 0:
        raise ConfigError(f"timeout: expected a number of seconds > 0, found {timeout_s!r}")
    from hax_conn_core.simulator import MAX_FRAMES_IN_FLIGHT, MIN_FRAMES_IN_FLIGHT

    if isinstance(frames_in_flight, bool) or not isinstance(frames_in_flight, int) \
            or not MIN_FRAMES_IN_FLIGHT <= frames_in_flight <= MAX_FRAMES_IN_FLIGHT:
        raise ConfigError(f"frames in flight: expected an integer from {MIN_FRAMES_IN_FLIGHT} "
                          f"to {MAX_FRAMES_IN_FLIGHT}, found "
                          f"{frames_in_flight!r}")


#: With ``timeout_s``, the baselines' own searches (GPU&DLA over whole-DNN mappings) get at
#: most this share of it; the planner's search gets the rest.
BASELINE_SHARE = 0.25
#: With ``timeout_s``, a search with budget K >= 1 first plans with K - 1 (its result seeds
#: the larger search, so a larger budget is never worse) within this share of the time left.
INNER_SHARE = 0.5


def plan(profile: Profile, objective: str = "latency", max_transitions: int = 1,
         timeout_s: Optional[float] = None, frames_in_flight: int = 2, *,
         gap: float = DEFAULT_GAP, seed: int = DEFAULT_SEED, prove: Optional[bool] = None,
         rlimit_per_check: Optional[int] = None, rlimit_total: Optional[int] = None,
         hints: Sequence[Mapping[str, Sequence[str]]] = ()) -> PlanResult:
    """Plan every DNN of ``profile`` (cut it down first with ``profile.subset``).

    ``objective``: ``latency`` (one frame-set) or ``throughput`` (``frames_in_flight``
    frame-sets streaming, 1 to 16). ``max_transitions``: most accelerator changes per DNN (the
    paper: 1). ``timeout_s``: a wall-clock limit (Defaults to none) that every stage keeps
    (baselines, local search, Z3, the final simulation), returning the best schedule found by
    then; the search is otherwise bounded by Z3 resource limits (Defaults to
    ``refine.RLIMIT_PER_CHECK`` and ``refine.RLIMIT_TOTAL``, per search), so the same input
    gives the same plan. ``prove``: after the refinement, prove the plan within ``gap`` of the
    best schedule (status ``optimal``); ``None`` (default): only when there are at most
    ``PROVE_LIMIT`` schedules, else the plan is the refinement's (``converged``).

    Budget monotonicity: with ``max_transitions`` K >= 1 the plan for K - 1 is made first (the
    same way, recursively) and seeds the search, so the plan for K is never worse than the plan
    for K - 1, nor than any baseline within K transitions. Raises ConfigError for a bad option.

    ``hints``: partial assignments known to be good (a previous plan's, for the DNNs still in
    the set: the re-planner's warm start); each, completed with every baseline's assignment of
    the other DNNs, seeds the search like a baseline. A hint that does not fit (another group
    count, a group its accelerator cannot run, too many transitions) is ignored.
    """
    from hax_conn_core.baselines import all_baselines
    from hax_conn_core.planner import refine
    from hax_conn_core.simulator import simulate

    _check_options(objective, max_transitions, timeout_s, frames_in_flight)
    if timeout_s is not None and not timeout_s < 1e9:
        raise ConfigError(f"timeout: expected a number of seconds below 1e9, found "
                          f"{timeout_s!r}")
    started = time.monotonic()
    deadline = started + timeout_s if timeout_s is not None else None
    baselines = tuple(all_baselines(
        profile, objective=objective, frames_in_flight=frames_in_flight,
        deadline=None if deadline is None else started + BASELINE_SHARE * timeout_s))
    options = dict(profile=profile, objective=objective, frames_in_flight=frames_in_flight,
                   baselines=baselines, gap=gap, seed=seed, prove=prove, hints=tuple(hints),
                   rlimit_per_check=rlimit_per_check, rlimit_total=rlimit_total)
    outcome, nested, space, asked, proving, totals = _search(
        max_transitions=max_transitions, deadline=deadline, **options)
    from hax_conn_core.planner.formulation import import_z3

    z3 = import_z3()

    solver_info: Dict[str, Any] = {
        "name": "z3", "version": z3.get_version_string(), "status": outcome.status,
        "time_s": 0.0, "z3_time_s": round(totals["z3_time_s"], 4),
        "checks": totals["checks"], "candidates": totals["candidates"], "seed": seed,
        "gap": gap}
    if outcome.lower_bound_ms is not None:
        solver_info["lower_bound_ms"] = outcome.lower_bound_ms
    if nested:
        solver_info["seeded_with_k"] = max_transitions - 1

    def schedule_of(assignments) -> Schedule:
        return Schedule(objective=objective, assignments=dict(assignments),
                        max_transitions=max_transitions, frames_in_flight=frames_in_flight,
                        profile_sha256=profile.sha256, solver=solver_info)

    # predicted_ms is always the simulator's value of the returned schedule: simulate() when
    # the time allows, else predict_ms (the same simulation, which stops once the stream
    # repeats itself: equal to within about 1e-9).
    record_s = totals["record_s"]
    chosen, chosen_source = outcome.assignments, outcome.source
    if deadline is None or time.monotonic() + 1.5 * record_s < deadline:
        value = simulate(profile, schedule_of(chosen)).predicted_ms
        if deadline is None:
            # The searches compare with predict_ms; judge the nested plans (K - 1, K - 2, ...)
            # by simulate() too and keep the best (ties: the larger budget's), so that the
            # plan for K never reports a worse figure than the plan for K - 1.
            for smaller in nested:
                if dict(smaller.assignments) == dict(chosen):
                    continue
                smaller_value = simulate(profile, schedule_of(smaller.assignments)).predicted_ms
                if smaller_value < value:
                    chosen, chosen_source, value = (smaller.assignments, smaller.source,
                                                    smaller_value)
    else:
        value = outcome.predicted_ms
    solver_info["time_s"] = round(time.monotonic() - started, 4)
    schedule = schedule_of(chosen).with_prediction(value)
    notes = []
    found_by = ("z3", refine.LOCAL_SEARCH, HINT)  # a hint: a previous plan, not a baseline
    if all(count_transitions(a) == 0 for a in schedule.assignments.values()):
        notes.append("no split beats the best whole-DNN mapping: the plan maps whole DNNs"
                     + (f" (the {chosen_source} baseline)" if chosen_source not in found_by
                        else ""))
    elif chosen_source not in found_by:
        notes.append(f"no schedule beats the {chosen_source} baseline: the plan is that "
                     f"baseline")
    notes.extend(outcome.notes)
    if outcome.status == "converged" and asked is None and not proving:
        notes.append(f"not proven optimal: {space:,} possible schedules, more than the "
                     f"{PROVE_LIMIT:,} the proof runs on by default (--prove to try)")
    elif outcome.status == "converged" and asked is False:
        notes.append("not proven optimal: the proof was switched off")
    return PlanResult(schedule=schedule, baselines=baselines, status=outcome.status,
                      source=chosen_source, lower_bound_ms=outcome.lower_bound_ms,
                      time_s=time.monotonic() - started, z3_time_s=totals["z3_time_s"],
                      checks=totals["checks"], candidates=totals["candidates"],
                      warnings=tuple(outcome.warnings), notes=tuple(notes))


def _search(profile: Profile, objective: str, max_transitions: int, frames_in_flight: int,
            baselines, deadline: Optional[float], gap: float, seed: int,
            prove: Optional[bool], rlimit_per_check: Optional[int],
            rlimit_total: Optional[int], hints: Tuple[Mapping[str, Sequence[str]], ...] = ()):
    """The search for budget ``max_transitions``, seeded with the baselines within it and,
    for K >= 1, with the result of the search for K - 1 (made first, the same way).

    Returns (outcome, the outcomes for K - 1, K - 2, ... 0 (those that found a schedule), the
    number of schedules, prove as asked, whether the proof ran, totals over the nested
    searches).
    """
    from hax_conn_core.errors import SolverError
    from hax_conn_core.planner import refine

    totals = {"checks": 0, "candidates": 0, "z3_time_s": 0.0, "record_s": 0.0}
    seeds = [refine.Seed(b.name, b.schedule.assignments) for b in baselines
             if b.transitions <= max_transitions]
    seeds += _hint_seeds(profile, hints, seeds, max_transitions)
    nested: List[Any] = []
    if max_transitions >= 1:
        inner_deadline = None
        if deadline is not None:
            inner_deadline = time.monotonic() + INNER_SHARE * max(
                0.0, deadline - time.monotonic())
        try:
            inner, deeper, _, _, _, inner_totals = _search(
                profile=profile, objective=objective, max_transitions=max_transitions - 1,
                frames_in_flight=frames_in_flight, baselines=baselines,
                deadline=inner_deadline, gap=gap, seed=seed, prove=prove,
                rlimit_per_check=rlimit_per_check, rlimit_total=rlimit_total, hints=hints)
        except SolverError:
            pass  # nothing fits K - 1 transitions (or no time to find it): no seed
        else:
            nested = [inner] + list(deeper)
            for key in ("checks", "candidates", "z3_time_s"):
                totals[key] += inner_totals[key]
            totals["record_s"] = max(totals["record_s"], inner_totals["record_s"])
            seeds.append(refine.Seed(inner.source, inner.assignments))
    space = count_schedules(profile, max_transitions)
    asked = prove
    proving = space <= PROVE_LIMIT if prove is None else prove
    search = refine.Search(
        profile, objective, max_transitions, frames_in_flight, gap=gap, seed=seed,
        prove=proving, proof_optional=asked is None,
        rlimit_per_check=rlimit_per_check or refine.RLIMIT_PER_CHECK,
        rlimit_total=rlimit_total or refine.RLIMIT_TOTAL, deadline=deadline)
    outcome = search.run(seeds)
    totals["checks"] += outcome.checks
    totals["candidates"] += outcome.candidates
    totals["z3_time_s"] += outcome.z3_time_s
    totals["record_s"] = max(totals["record_s"], search.record_s)
    return outcome, nested, space, asked, proving, totals


def _hint_seeds(profile: Profile, hints, seeds, max_transitions: int) -> List[Any]:
    """Seeds from ``hints`` (see plan()): each fitting hint over each seed's other DNNs."""
    from hax_conn_core.planner import refine

    out: List[Any] = []
    for hint in hints:
        fitting = {}
        for name, accs in hint.items():
            dnn = profile.dnns.get(name)
            accs = tuple(accs)
            if dnn is not None and len(accs) == len(dnn.groups) \
                    and count_transitions(accs) <= max_transitions \
                    and all(g.runs_on(a) for g, a in zip(dnn.groups, accs)):
                fitting[name] = accs
        if not fitting:
            continue
        known = set()
        for base in seeds:
            assignments = {n: fitting.get(n, tuple(a)) for n, a in base.assignments.items()}
            key = tuple(assignments[n] for n in profile.dnns)
            if key not in known:
                known.add(key)
                out.append(refine.Seed(HINT, assignments))
    return out

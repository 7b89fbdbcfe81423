"""Brute force: every schedule with at most K transitions per DNN, judged by the simulator.

The oracle that tests and benchmarks compare the planner and the baselines with. It is exact
(the simulator decides) but exponential in the number of DNNs: per DNN with ``n`` groups and two
accelerators there are ``2 + 2 (n - 1)`` assignments with at most one transition, and the
search tries every combination over the DNNs.
"""

from __future__ import annotations

import itertools
import math
import time
from typing import Iterator, List, Optional, Sequence, Tuple

from hax_conn_core.errors import ScheduleError
from hax_conn_core.profile import DnnProfile, Profile
from hax_conn_core.schedule import Schedule
from hax_conn_core.simulator import predict_ms


def enumerate_assignments(dnn_profile: DnnProfile, accelerators: Sequence[str],
                          max_transitions: Optional[int]) -> Iterator[Tuple[str, ...]]:
    """Every assignment of ``dnn_profile``'s groups to ``accelerators`` with at most
    ``max_transitions`` changes (``None``: any number), using only accelerators that can run
    each group. Order: lexicographic in the order of ``accelerators`` (deterministic).
    """
    groups = dnn_profile.groups
    limit = math.inf if max_transitions is None else max_transitions

    def extend(prefix: Tuple[str, ...], used: int) -> Iterator[Tuple[str, ...]]:
        i = len(prefix)
        if i == len(groups):
            yield prefix
            return
        for acc in accelerators:
            if not groups[i].runs_on(acc):
                continue
            cost = used + (1 if prefix and prefix[-1] != acc else 0)
            if cost <= limit:
                yield from extend(prefix + (acc,), cost)

    return extend((), 0)


def brute_force_best(profile: Profile, objective: str = "latency", max_transitions: int = 1,
                     frames_in_flight: int = 2, contention: bool = True) -> Schedule:
    """The schedule with the smallest ``predicted_ms`` among all with at most
    ``max_transitions`` transitions per DNN (ties: the first in enumeration order).

    The DNNs keep the profile's order (their priority). Raises ScheduleError if some DNN has no
    assignment at all within the budget (a group no accelerator... cannot happen in a valid
    profile, but a budget of 0 needs one accelerator that runs every group).
    """
    accs = profile.device.accelerators
    names = list(profile.dnns)
    options: List[List[Tuple[str, ...]]] = []
    for name in names:
        found = list(enumerate_assignments(profile.dnns[name], accs, max_transitions))
        if not found:
            raise ScheduleError(f"{name}: no assignment with at most {max_transitions} "
                                f"transitions: no accelerator runs enough of its groups")
        options.append(found)
    started = time.perf_counter()
    best_ms = math.inf
    best = None
    evaluated = 0
    for combo in itertools.product(*options):
        assignment = dict(zip(names, combo))
        ms = predict_ms(profile, assignment, objective, frames_in_flight, contention)
        evaluated += 1
        if ms < best_ms:
            best_ms, best = ms, assignment
    return Schedule(objective=objective, assignments=best, predicted_ms=best_ms,
                    max_transitions=max_transitions, frames_in_flight=frames_in_flight,
                    profile_sha256=profile.sha256,
                    solver={"name": "brute-force", "evaluated": evaluated,
                            "time_s": round(time.perf_counter() - started, 3),
                            "contention": contention})

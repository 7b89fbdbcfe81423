"""Predicted wall times per group and accelerator, calibrated on a simulated schedule.

The refinement step of the search (refine.py) asks Z3 only for assignments that these
predictions say beat the incumbent: "re-solve with slowdowns taken from simulating the
incumbent". Unlike the Z3 model's bound (formulation.py), a prediction may be too high or too
low; it steers the search and proves nothing.

From the simulation of a schedule, per accelerator ``a`` (two accelerators ``a``, ``b``):

- ``phi_a``: the share of ``a``'s busy time during which ``b`` was busy too;
- ``demand_b``: the mean DRAM demand on ``b`` during that overlap (weighted by overlap time).

A group ``p`` placed on ``a`` is predicted to spend the same share ``phi_a`` of its wall time
beside a partner of demand ``demand_b``, slowed then by ``s = interp(contention[a], (demand_p +
demand_b) / peak)``. Its work ``t`` then takes ``t / ((1 - phi_a) + phi_a / s)``. A factor
per accelerator makes the predicted busy time of the calibration schedule equal its simulated
busy time. A schedule whose accelerators never overlap, or a device with other than two
accelerators, gives the standalone times: no contention predicted, the weakest filter.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Sequence, Tuple

from hax_conn_core.contention import slowdown
from hax_conn_core.profile import Profile
from hax_conn_core.schedule import Schedule
from hax_conn_core.simulator import GroupRun, simulate

GroupKey = Tuple[int, int]  # (DNN index, group index), as in formulation.py


def standalone_ms(profile: Profile, names: Sequence[str]) -> Dict[Tuple[GroupKey, str], float]:
    """Every group's standalone time on every accelerator that can run it."""
    return {((n, i), a): ms for n, name in enumerate(names)
            for i, group in enumerate(profile.dnns[name].groups)
            for a, ms in group.time_ms.items()}


def calibrated_wall_ms(profile: Profile, names: Sequence[str],
                       assignments: Mapping[str, Sequence[str]], objective: str,
                       frames_in_flight: int) -> Dict[Tuple[GroupKey, str], float]:
    """Predicted wall time of every group on every accelerator it can run on (ms)."""
    wall = standalone_ms(profile, names)
    accs = tuple(profile.device.accelerators)
    if len(accs) != 2:
        return wall
    schedule = Schedule(objective=objective,
                        assignments={n: tuple(assignments[n]) for n in names},
                        frames_in_flight=frames_in_flight)
    runs = simulate(profile, schedule).runs
    by_acc = {a: sorted((r for r in runs if r.accelerator == a), key=lambda r: r.start_ms)
              for a in accs}

    def demand(run: GroupRun) -> float:
        return profile.dnns[run.dnn].groups[run.group].demand_gbps[run.accelerator]

    overlap, weighted = _overlap(by_acc[accs[0]], by_acc[accs[1]], demand)
    peak = profile.device.peak_bandwidth_gbps
    index = {name: n for n, name in enumerate(names)}
    for a, other in ((0, 1), (1, 0)):
        acc = accs[a]
        busy = sum(r.finish_ms - r.start_ms for r in by_acc[acc])
        if busy <= 0.0 or overlap <= 0.0:
            continue  # nothing ran here, or never beside the other: standalone times
        phi = min(1.0, overlap / busy)
        partner_demand = weighted[other] / overlap
        curve = profile.contention[acc]
        factor: Dict[Tuple[GroupKey, str], float] = {}
        for (p, acc_p), ms in wall.items():
            if acc_p != acc:
                continue
            group = profile.dnns[names[p[0]]].groups[p[1]]
            s = slowdown(curve, (group.demand_gbps[acc] + partner_demand) / peak)
            factor[(p, acc)] = 1.0 / ((1.0 - phi) + phi / s)
        predicted = sum(profile.dnns[r.dnn].groups[r.group].time_ms[acc]
                        * factor[((index[r.dnn], r.group), acc)] for r in by_acc[acc])
        scale = busy / predicted if predicted > 0.0 else 1.0
        for key, f in factor.items():
            wall[key] *= f * scale
    return wall


def _overlap(first: List[GroupRun], second: List[GroupRun], demand) -> Tuple[float, List[float]]:
    """Total time both accelerators are busy, and per accelerator the demand of its own runs
    integrated over that time (runs of one accelerator never overlap)."""
    total = 0.0
    weighted = [0.0, 0.0]  # [0]: demand of first's runs over the overlap, [1]: of second's
    i = j = 0
    while i < len(first) and j < len(second):
        x, y = first[i], second[j]
        both = min(x.finish_ms, y.finish_ms) - max(x.start_ms, y.start_ms)
        if both > 0.0:
            total += both
            weighted[0] += both * demand(x)
            weighted[1] += both * demand(y)
        if x.finish_ms <= y.finish_ms:
            i += 1
        else:
            j += 1
    return total, weighted

"""The Z3 model of the planning problem (docs/planner.md, "Formulation").

Decision: one accelerator per layer group (a Boolean per group when the device has two
accelerators, one-hot Booleans otherwise), at most ``max_transitions`` changes per DNN.

Objective ``latency`` (one frame-set): a start and a finish (reals, ms) per group, precedence
with transition delays, no two groups at once on one accelerator, in the order the runtime uses
(the group that became ready first goes first; ties to the DNN listed first), and contention
that depends on what actually overlaps: for each pair of groups of different DNNs on different
accelerators an overlap duration ``ov``, and a group's duration is its standalone time plus
``ov * (1 - 1/S)`` per overlapping partner, ``S`` being the profile's slowdown at
(own + partner demand) / peak. With two accelerators this is exact for the timelines the
simulator produces, so the model's optimum over a set of assignments is a lower bound of their
simulated latencies: that is what lets the search prove it is within 1 % of the best.

Objective ``throughput`` with D >= 2 frame-sets in flight: a period ``P`` per frame-set with
``P >= busy time of each accelerator`` and ``D * P >= each DNN's chain`` (its groups and
transitions end to end), where each group's busy time is inflated by the contention it meets
when the frame-sets stream (the other accelerator's groups overlap it in proportion to their
share of the period, estimated from the incumbent's simulated period). This is an estimate: the
search judges every candidate by simulation. With D = 1 frame-sets do not overlap and the
latency model is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from hax_conn_core.contention import slowdown
from hax_conn_core.errors import InternalError, SolverError
from hax_conn_core.profile import Group, Profile

Assignments = Dict[str, Tuple[str, ...]]


@dataclass(frozen=True)
class CheckOutcome:
    """One bounded check: is there an unblocked assignment whose model value is <= bound?"""

    status: str  # "sat" | "unsat" | "unknown"
    assignments: Optional[Assignments] = None  # sat: the model's assignment
    model_ms: Optional[float] = None  # sat: the model's value of it
    reason: str = ""  # unknown: Z3's reason (timeout, resource limit, ...)
    rlimit_used: int = 0


def contention_factor(profile: Profile, group: Group, acc: str, partner: Group,
                      partner_acc: str) -> float:
    """``1 - 1/S``: the share of a group's wall time lost while ``partner`` runs elsewhere."""
    demand = group.demand_gbps.get(acc, 0.0) + partner.demand_gbps.get(partner_acc, 0.0)
    s = slowdown(profile.contention[acc], demand / profile.device.peak_bandwidth_gbps)
    return 1.0 - 1.0 / s


class Formulation:
    """A Z3 solver holding the model; checks are incremental (assumption literals).

    ``horizon_ms`` is an upper bound that every later check's bound respects (the incumbent's
    value when the model is built): pairs of groups that cannot meet within it get no
    constraints. ``period_ms`` (throughput) is the period used to estimate streaming contention.
    """

    def __init__(self, profile: Profile, objective: str, max_transitions: int,
                 frames_in_flight: int, horizon_ms: float, period_ms: Optional[float] = None,
                 seed: int = 0):
        import z3

        self._z3 = z3
        self.profile = profile
        self.names: Tuple[str, ...] = tuple(profile.dnns)
        self.accs: Tuple[str, ...] = tuple(profile.device.accelerators)
        self.groups: Tuple[Tuple[Group, ...], ...] = tuple(
            profile.dnns[name].groups for name in self.names)
        self.objective = objective
        self.max_transitions = max_transitions
        self.frames_in_flight = frames_in_flight
        self.horizon_ms = horizon_ms
        self.ctx = z3.Context()
        self.solver = z3.Solver(ctx=self.ctx)
        self.solver.set("random_seed", seed)
        self._checks = 0
        self._choices: List[List[Dict[str, object]]] = []
        self._decisions: List[object] = []
        self._build_choices()
        self._build_transitions()
        if objective == "latency" or frames_in_flight == 1:
            self.value = self._build_latency()
        elif objective == "throughput":
            if period_ms is None or period_ms <= 0:
                raise InternalError("throughput formulation needs a positive period estimate")
            self.value = self._build_throughput(period_ms)
        else:
            raise InternalError(f"unknown objective {objective!r}")

    # --- building ----------------------------------------------------------------------------

    def _val(self, x: float):
        return self._z3.RealVal(repr(float(x)), ctx=self.ctx)

    def _build_choices(self) -> None:
        z3 = self._z3
        two = len(self.accs) == 2
        for n, (name, groups) in enumerate(zip(self.names, self.groups)):
            row: List[Dict[str, object]] = []
            for i, group in enumerate(groups):
                allowed = [a for a in self.accs if group.runs_on(a)]
                if not allowed:
                    raise SolverError(f"group {i} of {name} (layers {group.layers[0]}-"
                                      f"{group.layers[1]}) has no accelerator that can run it: "
                                      f"expected time_ms for one of {', '.join(self.accs)}")
                if len(allowed) == 1:
                    row.append({allowed[0]: z3.BoolVal(True, ctx=self.ctx)})
                elif two:
                    first = z3.Bool(f"on_{n}_{i}", ctx=self.ctx)
                    self._decisions.append(first)
                    row.append({self.accs[0]: first, self.accs[1]: z3.Not(first)})
                else:
                    lits = {a: z3.Bool(f"on_{n}_{i}_{a}", ctx=self.ctx) for a in allowed}
                    self._decisions.extend(lits.values())
                    self.solver.add(z3.PbEq([(lit, 1) for lit in lits.values()], 1))
                    row.append(lits)
            self._choices.append(row)

    def _on(self, n: int, i: int, acc: str):
        lit = self._choices[n][i].get(acc)
        return lit if lit is not None else self._z3.BoolVal(False, ctx=self.ctx)

    def _build_transitions(self) -> None:
        """Switch literals and delays between consecutive groups; at most K switches per DNN."""
        z3 = self._z3
        self._delay: List[List[object]] = []
        for n, groups in enumerate(self.groups):
            switches, delays = [], []
            for i in range(len(groups) - 1):
                leaves = [(a, z3.And(self._on(n, i, a), z3.Not(self._on(n, i + 1, a))))
                          for a in self._choices[n][i]]
                switches.append(z3.Or([lit for _, lit in leaves]))
                delays.append(z3.Sum([z3.If(lit, self._val(groups[i].transition_ms.get(a, 0.0)),
                                            self._val(0.0)) for a, lit in leaves]))
            if switches and self.max_transitions < len(switches):
                self.solver.add(z3.AtMost(*switches, self.max_transitions))
            self._delay.append(delays)

    def _standalone(self, n: int, i: int):
        z3 = self._z3
        group = self.groups[n][i]
        return z3.Sum([z3.If(lit, self._val(group.time_ms[a]), self._val(0.0))
                       for a, lit in self._choices[n][i].items()])

    def _windows(self) -> List[List[Tuple[float, float]]]:
        """Earliest start and latest finish of each group in a frame-set within the horizon."""
        out = []
        for groups in self.groups:
            fastest = [min(g.time_ms.values()) for g in groups]
            total = sum(fastest)
            done = 0.0
            row = []
            for t in fastest:
                row.append((done, self.horizon_ms - (total - done - t)))
                done += t
            out.append(row)
        return out

    def _build_latency(self):
        z3 = self._z3
        s = self.solver
        zero = self._val(0.0)
        makespan = z3.Real("makespan", ctx=self.ctx)
        start, finish, ready = [], [], []
        for n, groups in enumerate(self.groups):
            st = [z3.Real(f"s_{n}_{i}", ctx=self.ctx) for i in range(len(groups))]
            fi = [z3.Real(f"f_{n}_{i}", ctx=self.ctx) for i in range(len(groups))]
            rd: List[object] = [zero]
            for i in range(1, len(groups)):
                rd.append(fi[i - 1] + self._delay[n][i - 1])
            start.append(st)
            finish.append(fi)
            ready.append(rd)
            for i in range(len(groups)):
                s.add(st[i] >= rd[i])
            s.add(makespan >= fi[-1])
        # The busy time of each accelerator bounds the makespan (implied; helps propagation).
        for a in self.accs:
            s.add(makespan >= z3.Sum([z3.If(self._on(n, i, a), self._val(g.time_ms[a]), zero)
                                      for n, groups in enumerate(self.groups)
                                      for i, g in enumerate(groups) if g.runs_on(a)]))
        penalties: Dict[Tuple[int, int], List[object]] = {}
        windows = self._windows()
        for n in range(len(self.groups)):
            for m in range(n + 1, len(self.groups)):
                for i, gp in enumerate(self.groups[n]):
                    for j, gq in enumerate(self.groups[m]):
                        (e_p, l_p), (e_q, l_q) = windows[n][i], windows[m][j]
                        if e_p >= l_q or e_q >= l_p:
                            continue  # cannot meet within the horizon
                        self._add_pair(n, i, m, j, start, finish, ready, penalties)
        for n, groups in enumerate(self.groups):
            for i in range(len(groups)):
                extra = penalties.get((n, i), [])
                duration = self._standalone(n, i)
                if extra:
                    duration = duration + z3.Sum(extra)
                s.add(finish[n][i] == start[n][i] + duration)
        return makespan

    def _add_pair(self, n, i, m, j, start, finish, ready, penalties) -> None:
        """Group (n, i) and group (m, j), n listed before m."""
        z3 = self._z3
        s = self.solver
        sp, fp, rp = start[n][i], finish[n][i], ready[n][i]
        sq, fq, rq = start[m][j], finish[m][j], ready[m][j]
        common = [a for a in self._choices[n][i] if a in self._choices[m][j]]
        if common:
            same = z3.Or([z3.And(self._on(n, i, a), self._on(m, j, a)) for a in common])
            # One at a time, first ready first (ties: the DNN listed first, here n).
            s.add(z3.Implies(same, z3.Or(z3.And(rp <= rq, fp <= sq),
                                         z3.And(rq < rp, fq <= sp))))
        terms_p, terms_q = [], []
        gp, gq = self.groups[n][i], self.groups[m][j]
        ov = None
        for a in self._choices[n][i]:
            for b in self._choices[m][j]:
                if a == b:
                    continue
                c_p = contention_factor(self.profile, gp, a, gq, b)
                c_q = contention_factor(self.profile, gq, b, gp, a)
                if c_p <= 0.0 and c_q <= 0.0:
                    continue
                if ov is None:
                    ov = z3.Real(f"ov_{n}_{i}_{m}_{j}", ctx=self.ctx)
                    pen_p = z3.Real(f"pen_{n}_{i}_by_{m}_{j}", ctx=self.ctx)
                    pen_q = z3.Real(f"pen_{m}_{j}_by_{n}_{i}", ctx=self.ctx)
                    s.add(ov >= 0, pen_p >= 0, pen_q >= 0)
                    # ov is at least the overlap of [sp, fp] and [sq, fq]: the overlap is the
                    # smallest of these four differences (or <= 0 when they are disjoint).
                    s.add(z3.Or(ov >= fp - sq, ov >= fq - sp, ov >= fp - sp, ov >= fq - sq))
                    terms_p.append(pen_p)
                    terms_q.append(pen_q)
                both = z3.And(self._on(n, i, a), self._on(m, j, b))
                if c_p > 0.0:
                    s.add(z3.Implies(both, pen_p >= self._val(c_p) * ov))
                if c_q > 0.0:
                    s.add(z3.Implies(both, pen_q >= self._val(c_q) * ov))
        if terms_p:
            penalties.setdefault((n, i), []).extend(terms_p)
            penalties.setdefault((m, j), []).extend(terms_q)

    def _build_throughput(self, period_ms: float):
        z3 = self._z3
        s = self.solver
        zero = self._val(0.0)
        period = z3.Real("period", ctx=self.ctx)
        flat = [(n, i, g) for n, groups in enumerate(self.groups) for i, g in enumerate(groups)]
        duration = {}
        for n, i, gp in flat:
            terms = [self._standalone(n, i)]
            for m, j, gq in flat:
                if (m, j) == (n, i):
                    continue
                for a in self._choices[n][i]:
                    for b in self._choices[m][j]:
                        if a == b:
                            continue
                        c = contention_factor(self.profile, gp, a, gq, b)
                        # Streaming: gq occupies t_q / P of the period, so it overlaps that
                        # share of gp's run.
                        lost = gp.time_ms[a] * gq.time_ms[b] * c / period_ms
                        if lost > 0.0:
                            both = z3.And(self._on(n, i, a), self._on(m, j, b))
                            terms.append(z3.If(both, self._val(lost), zero))
            d = z3.Real(f"d_{n}_{i}", ctx=self.ctx)
            s.add(d == z3.Sum(terms))
            duration[(n, i)] = d
        for a in self.accs:
            s.add(period >= z3.Sum([z3.If(self._on(n, i, a), duration[(n, i)], zero)
                                    for n, i, g in flat if g.runs_on(a)]))
        d_frames = self._val(float(self.frames_in_flight))
        for n, groups in enumerate(self.groups):
            chain = [duration[(n, i)] for i in range(len(groups))] + list(self._delay[n])
            s.add(d_frames * period >= z3.Sum(chain))
        return period

    # --- using -------------------------------------------------------------------------------

    def block(self, assignments: Mapping[str, Sequence[str]]) -> None:
        """Exclude one assignment from every later check (it has been simulated already)."""
        z3 = self._z3
        differs = []
        for n, name in enumerate(self.names):
            for i, acc in enumerate(assignments[name]):
                if len(self._choices[n][i]) > 1:
                    differs.append(z3.Not(self._on(n, i, acc)))
        if not differs:
            # Only one assignment exists; blocking it leaves nothing.
            differs = [z3.BoolVal(False, ctx=self.ctx)]
        self.solver.add(z3.Or(differs))

    def check(self, bound_ms: float, rlimit: int, timeout_ms: Optional[int] = None
              ) -> CheckOutcome:
        """Is there an unblocked assignment whose model value is at most ``bound_ms``?"""
        z3 = self._z3
        self._checks += 1
        lit = z3.Bool(f"bound_{self._checks}", ctx=self.ctx)
        if bound_ms != float("inf"):
            self.solver.add(z3.Implies(lit, self.value <= self._val(bound_ms)))
        self.solver.set("rlimit", int(rlimit))
        if timeout_ms is not None:
            self.solver.set("timeout", max(1, int(timeout_ms)))
        before = self._rlimit_count()
        result = self.solver.check(lit)
        used = self._rlimit_count() - before
        if result == z3.sat:
            model = self.solver.model()
            value = model.eval(self.value, model_completion=True)
            return CheckOutcome("sat", self._assignments(model), _to_float(value),
                                rlimit_used=used)
        if result == z3.unsat:
            return CheckOutcome("unsat", rlimit_used=used)
        return CheckOutcome("unknown", reason=self.solver.reason_unknown(), rlimit_used=used)

    def _rlimit_count(self) -> int:
        stats = self.solver.statistics()
        return int(stats.get_key_value("rlimit count")) if "rlimit count" in stats.keys() else 0

    def _assignments(self, model) -> Assignments:
        z3 = self._z3
        out: Assignments = {}
        for n, name in enumerate(self.names):
            accs = []
            for choice in self._choices[n]:
                chosen = [a for a, lit in choice.items()
                          if z3.is_true(model.eval(lit, model_completion=True))]
                if len(chosen) != 1:
                    raise InternalError(f"Z3 model assigns {name} a group to {chosen}")
                accs.append(chosen[0])
            out[name] = tuple(accs)
        return out


def _to_float(value) -> float:
    if hasattr(value, "as_fraction"):
        frac = value.as_fraction()
        return frac.numerator / frac.denominator
    return float(value.as_decimal(12).rstrip("?"))

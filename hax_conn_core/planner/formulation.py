"""The Z3 model of the planning problem (docs/planner.md, "Formulation").

Variables: one Boolean per group and accelerator, "group ``p`` runs on ``a``" (with two
accelerators a single Boolean per group, true = the first one); exactly one per group; a
transition after group ``i`` when it runs on ``a`` and group ``i+1`` does not; at most
``max_transitions`` per DNN.

The model does not lay out a timeline (Z3 is slow at that: see docs/planner.md, "What we
tried"). It states, for a bound ``B``, pseudo-Boolean constraints that every assignment whose
simulated value is at most ``B`` satisfies:

1. busy time: for each accelerator ``a``, the standalone times of the groups on ``a`` sum to at
   most ``B`` (contention only lengthens them);
2. chain: for each DNN, its groups' standalone times plus its transition delays, end to end, are
   at most ``B``;
3. contention (two accelerators): for multipliers ``l1, l2, l3 >= 0`` summing to 1,
   ``l1 * busy_a + l2 * busy_b + l3 * union(busy intervals) <= B``; written through each
   group's overlapped work (slowed by at least the smallest slowdown any partner can cause it)
   this is one weight per group and accelerator. A grid of multipliers gives a family of such
   constraints; a check whose answer one of them rules out adds it and asks again (lazy
   constraint generation). Derivation in docs/planner.md.

For throughput (``D`` frame-sets in flight, the period measured over ``M`` frame-sets), the
busy and contention sums are compared with ``B * M / (M - D + 1)`` and the chains with
``B * M / floor(M / D)`` (``_scales``): what the measurement window must hold.

So the model value of an assignment, ``lower_bound(assignments)``, never exceeds its simulated
value: the search (refine.py) uses this to prove a plan within 1 % of the best. Times enter as
whole microseconds, rounded down, so rounding keeps the bound valid.
"""

from __future__ import annotations

import bisect
import ctypes
import math
import time
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from hax_conn_core.contention import slowdown
from hax_conn_core.errors import InternalError, SolverError
from hax_conn_core.profile import Group, Profile

Assignments = Dict[str, Tuple[str, ...]]
GroupKey = Tuple[int, int]  # (DNN index, group index)

#: Times enter the model as whole multiples of 1/RESOLUTION ms (1 us), rounded down.
RESOLUTION = 1000


@dataclass(frozen=True)
class CheckOutcome:
    """One bounded check: is there an unblocked assignment whose model value is <= bound?"""

    status: str  # "sat" | "unsat" | "unknown"
    assignments: Optional[Assignments] = None  # sat: the model's assignment
    model_ms: Optional[float] = None  # sat: its model value (lower_bound)
    reason: str = ""  # unknown: Z3's reason (timeout, resource limit, ...)
    rlimit_used: int = 0
    solves: int = 1  # Z3 calls made (a check that adds contention bounds asks again)


def contention_factor(profile: Profile, group: Group, acc: str, partner: Group,
                      partner_acc: str) -> float:
    """``1 - 1/S``: the share of a group's wall time lost while ``partner`` runs elsewhere."""
    demand = group.demand_gbps.get(acc, 0.0) + partner.demand_gbps.get(partner_acc, 0.0)
    s = slowdown(profile.contention[acc], demand / profile.device.peak_bandwidth_gbps)
    return 1.0 - 1.0 / s


def _scales(streaming: bool, frames_in_flight: int) -> Tuple[float, float]:
    """How far the busy and chain sums may exceed the bound (throughput's window edges).

    Latency: 1 and 1. Throughput measures ``(C[W+M-1] - C[W-1]) / M`` with ``M = 32 D``
    (docs/timing-model.md, version 1.1); the ``M - D + 1`` frame-sets released at or after
    ``C[W-1]`` all run inside that window, so the window holds at least ``M - D + 1``
    frame-sets' work on each accelerator: busy <= P * M / (M - D + 1). A frame-set is in flight
    from ``C[k-D]`` to ``C[k]``, so ``C[k] - C[k-D] >= chain`` and, over ``floor(M / D)`` such
    steps, chain <= P * M / floor(M / D).
    """
    if not streaming:
        return 1.0, 1.0
    from hax_conn_core.simulator import window

    d = frames_in_flight
    _, m = window(d)
    busy = m / (m - d + 1) if m - d + 1 > 0 else math.inf
    chain = m / (m // d) if m // d > 0 else math.inf
    return busy, chain


def _units(ms: float) -> int:
    return int(math.floor(ms * RESOLUTION + 1e-9))


class _Partners:
    """The groups that can run on accelerator ``other``, sorted by their demand there, to find
    the smallest slowdown any of them can cause a group on the other accelerator.

    ``least_slowdown`` is ``min over partners q of interp(curve, (own + demand_q) / peak)``
    without visiting every ``q``: the curve is linear between breakpoints (constant outside),
    so on each piece the minimum over the partners in it lies at the one with the smallest or
    the largest demand there. Cost per group: pieces x log(groups), plus skipping partners of
    the same DNN (latency: a DNN's own groups never run beside it) or the group itself.
    """

    def __init__(self, form: "Formulation", other: str):
        entries = sorted((form.groups[q[0]][q[1]].demand_gbps.get(other, 0.0), q)
                         for q in form.flat if form.groups[q[0]][q[1]].runs_on(other))
        self.demands = [d for d, _ in entries]
        self.keys = [q for _, q in entries]
        self.streaming = form.streaming
        self.peak = form.profile.device.peak_bandwidth_gbps

    def _eligible(self, index: int, p: GroupKey) -> bool:
        q = self.keys[index]
        return q != p and (self.streaming or q[0] != p[0])

    def least_slowdown(self, p: GroupKey, own: float, curve) -> float:
        edges = [u * self.peak - own for u, _ in curve]
        bounds = [-math.inf] + edges + [math.inf]
        best = math.inf
        for lo, hi in zip(bounds, bounds[1:]):
            first = bisect.bisect_left(self.demands, lo)
            last = bisect.bisect_right(self.demands, hi) - 1
            i = first
            while i <= last and not self._eligible(i, p):
                i += 1
            if i > last:
                continue
            j = last
            while j > i and not self._eligible(j, p):
                j -= 1
            for k in (i, j):
                best = min(best, slowdown(curve, (own + self.demands[k]) / self.peak))
        return 1.0 if best == math.inf else best


def import_z3():
    """The z3 module, or a SetupError saying how to get it (or to plan elsewhere)."""
    from hax_conn_core.imports import required

    return required("z3", "z3-solver", "planning", instead="plan on a machine that has it and "
                    "bring the schedules (hax-conn run --schedule S.json; hax-conn validate "
                    "--schedules DIR)")


class Formulation:
    """A Z3 solver holding the model; each check adds its bound under a fresh literal."""

    def __init__(self, profile: Profile, objective: str, max_transitions: int,
                 frames_in_flight: int, seed: int = 0, deadline: Optional[float] = None):
        z3 = import_z3()
        self._deadline = deadline  # time.monotonic(): past it, building leaves out the cuts
        if objective not in ("latency", "throughput"):
            raise InternalError(f"unknown objective {objective!r}")
        self._z3 = z3
        self.profile = profile
        self.names: Tuple[str, ...] = tuple(profile.dnns)
        self.accs: Tuple[str, ...] = tuple(profile.device.accelerators)
        self.groups: Tuple[Tuple[Group, ...], ...] = tuple(
            profile.dnns[name].groups for name in self.names)
        self.flat: List[GroupKey] = [(n, i) for n, gs in enumerate(self.groups)
                                     for i in range(len(gs))]
        self.streaming = objective == "throughput" and frames_in_flight > 1
        # Value <= bound becomes sum <= bound * scale (see _scales).
        self.busy_scale, self.chain_scale = _scales(self.streaming, frames_in_flight)
        self.max_transitions = max_transitions
        self.ctx = z3.Context()
        # QF_FD: Z3's SAT core with native pseudo-Boolean constraints and assumptions.
        self.solver = z3.SolverFor("QF_FD", ctx=self.ctx)
        self.solver.set("random_seed", seed)
        self._checks = 0
        # The bound now asserted: (key, literal, ms); key = (units, estimate version or 0).
        self._bound: Optional[Tuple[Tuple[int, int], object, float]] = None
        self._estimate_sums: List[Tuple[object, int, float]] = []
        self._estimate_version = 0
        self._rlimit_index: Optional[int] = None
        self._build_choices()
        self._build_transitions()
        self._cuts = self._contention_cuts()
        self._active_cuts: set = set()
        self._pb_sums = self._sums()

    # --- building ----------------------------------------------------------------------------

    def _build_choices(self) -> None:
        """``self.on[p][a]``: the literal "group p runs on accelerator a"."""
        z3 = self._z3
        self.on: Dict[GroupKey, Dict[str, object]] = {}
        self._free: List[GroupKey] = []
        self._off: Dict[GroupKey, Dict[str, object]] = {}
        self._decision_decls: List[Tuple[str, object]] = []
        # How to read a group's accelerator from a model: (variable, if true, if false).
        self._decode: Dict[GroupKey, Tuple[Tuple[Optional[str], str, Optional[str]], ...]] = {}
        for n, i in self.flat:
            group = self.groups[n][i]
            allowed = [a for a in self.accs if group.runs_on(a)]
            if not allowed:
                raise SolverError(f"group {i} of {self.names[n]} (layers {group.layers[0]}-"
                                  f"{group.layers[1]}) has no accelerator that can run it: "
                                  f"expected time_ms for one of {', '.join(self.accs)}")
            if len(allowed) == 1:
                self.on[(n, i)] = {allowed[0]: z3.BoolVal(True, ctx=self.ctx)}
                self._decode[(n, i)] = ((None, allowed[0], allowed[0]),)
                continue
            self._free.append((n, i))
            if len(allowed) == 2:
                name = f"on_{n}_{i}_{allowed[0]}"
                first = z3.Bool(name, ctx=self.ctx)
                self._decision_decls.append((name, first.decl()))
                self.on[(n, i)] = {allowed[0]: first, allowed[1]: z3.Not(first)}
                self._off[(n, i)] = {allowed[0]: z3.Not(first), allowed[1]: first}
                self._decode[(n, i)] = ((name, allowed[0], allowed[1]),)
            else:
                lits = {a: z3.Bool(f"on_{n}_{i}_{a}", ctx=self.ctx) for a in allowed}
                self._decision_decls.extend((f"on_{n}_{i}_{a}", lit.decl())
                                            for a, lit in lits.items())
                self.solver.add(z3.PbEq([(lit, 1) for lit in lits.values()], 1))
                self.on[(n, i)] = lits
                self._off[(n, i)] = {a: z3.Not(lit) for a, lit in lits.items()}
                self._decode[(n, i)] = tuple((f"on_{n}_{i}_{a}", a, None) for a in allowed)

    def _lit(self, p: GroupKey, acc: str):
        return self.on[p].get(acc, self._z3.BoolVal(False, ctx=self.ctx))

    def _build_transitions(self) -> None:
        """Transition literals and their delays; at most K transitions per DNN."""
        z3 = self._z3
        self._chain_terms: List[List[Tuple[object, int]]] = []
        for n, groups in enumerate(self.groups):
            switches, terms = [], []
            for i, group in enumerate(groups):
                p = (n, i)
                for a, lit in self.on[p].items():
                    terms.append((lit, _units(group.time_ms[a])))
                if i + 1 == len(groups):
                    continue
                leaves = []
                for a, lit in self.on[p].items():
                    if a in self.on[(n, i + 1)] and len(self.on[p]) == 1 \
                            and len(self.on[(n, i + 1)]) == 1:
                        continue  # both fixed to a: never a transition
                    leave = z3.And(lit, z3.Not(self._lit((n, i + 1), a)))
                    leaves.append(leave)
                    cost = _units(group.transition_ms.get(a, 0.0))
                    if cost > 0:
                        terms.append((leave, cost))
                if leaves:
                    switches.append(z3.Or(leaves) if len(leaves) > 1 else leaves[0])
            if switches and self.max_transitions < len(switches):
                self.solver.add(z3.AtMost(*switches, self.max_transitions))
            self._chain_terms.append(terms)

    def _contention_cuts(self):
        """Weights of the contention bounds: ``value >= sum of w[cut][p, a]`` over the groups.

        Two accelerators a, b only. For multipliers ``l1, l2, l3 >= 0`` (sum 1) and
        ``theta`` in [0, 1], ``l1 * busy_a + l2 * busy_b + l3 * union`` is at most the value;
        writing each group's wall time through its overlapped work ``beta`` (slowed by at
        least ``s_min``) and taking the worst ``beta`` per group gives one weight per group and
        accelerator (docs/planner.md, "Contention bound"). Each multiplier choice is one
        linear constraint; the search adds those that cut off a proposed assignment.
        """
        import numpy as np

        self._column = {}
        for p in self.flat:
            for acc in self.on[p]:
                self._column[(p, acc)] = len(self._column)
        if len(self.accs) != 2:
            return np.zeros((0, len(self._column)))
        a, b = self.accs
        s_min = {}
        for acc, other in ((a, b), (b, a)):
            partners = _Partners(self, other)
            for p in self.flat:
                gp = self.groups[p[0]][p[1]]
                if gp.runs_on(acc):
                    s_min[(p, acc)] = partners.least_slowdown(p, gp.demand_gbps.get(acc, 0.0),
                                                              self.profile.contention[acc])
            if self._deadline is not None and time.monotonic() > self._deadline:
                # Out of time: no contention bounds (the model stays a valid, weaker bound).
                return np.zeros((0, len(self._column)))
        rows = []
        steps = [k / 10.0 for k in range(6)]
        for l1 in steps:
            for l2 in steps:
                l3 = 1.0 - l1 - l2
                for theta in (0.0, 0.25, 0.5, 0.75, 1.0):
                    if l3 == 0.0 and theta != 0.5:
                        continue  # theta only weighs the union term
                    row = np.zeros(len(self._column))
                    for (p, acc), col in self._column.items():
                        own, share = (l1, theta) if acc == a else (l2, 1.0 - theta)
                        s = s_min[(p, acc)]
                        t = self.groups[p[0]][p[1]].time_ms[acc]
                        row[col] = t * (own + l3 + min(0.0, own * (s - 1.0)
                                                       + l3 * (share * s - 1.0)))
                    rows.append(row)
        return np.array(rows)

    # --- the bound, in Z3 and in Python ------------------------------------------------------

    def _busy_terms(self, a: str) -> List[Tuple[object, int]]:
        return [(self.on[p][a], _units(self.groups[p[0]][p[1]].time_ms[a]))
                for p in self.flat if a in self.on[p]]

    def _sums(self) -> List[Tuple[object, int, float]]:
        """The weighted sums the bound applies to: (cached PB arguments, size, bound scale)."""
        sums = ([(self._busy_terms(a), self.busy_scale) for a in self.accs]
                if self.busy_scale != math.inf else [])
        if self.chain_scale != math.inf:
            sums += [(terms, self.chain_scale) for terms in self._chain_terms]
        return [self._pb_args(terms, scale) for terms, scale in sums if self._positive(terms)]

    @staticmethod
    def _positive(terms) -> bool:
        return any(w > 0 for _, w in terms)

    def _cut_terms(self, index: int) -> List[Tuple[object, int]]:
        row = self._cuts[index]
        return [(self.on[p][acc], int(math.floor(row[col] * RESOLUTION)))
                for (p, acc), col in self._column.items()]

    def _pb_args(self, terms, scale: float):
        terms = [(lit, w) for lit, w in terms if w > 0]
        # Built once: the z3 Python layer re-checks every argument on each PbLe call, which
        # costs more than the check itself.
        args = (self._z3.Ast * len(terms))()
        coeffs = (ctypes.c_int * len(terms))()
        for k, (lit, w) in enumerate(terms):
            args[k] = lit.as_ast()
            coeffs[k] = w
        return ((args, coeffs), len(terms), scale)

    def _bound_constraints(self, bound_ms: float) -> List[object]:
        out = []
        for sum_args in self._pb_sums:
            out.append(self._pb_constraint(sum_args, bound_ms))
        return out

    def _pb_constraint(self, sum_args, bound_ms: float):
        z3 = self._z3
        (args, coeffs), size, scale = sum_args
        limit = _units(bound_ms * scale)
        return z3.BoolRef(z3.Z3_mk_pble(self.ctx.ref(), size, args, coeffs, limit), self.ctx)

    def add_cut(self, index: int) -> None:
        """Put contention bound ``index`` into the model (also under the current bound)."""
        if index in self._active_cuts or self.busy_scale == math.inf:
            return
        self._active_cuts.add(index)
        terms = self._cut_terms(index)
        if not self._positive(terms):
            return
        sum_args = self._pb_args(terms, self.busy_scale)
        self._pb_sums.append(sum_args)
        if self._bound is not None:
            self.solver.add(self._z3.Implies(self._bound[1],
                                             self._pb_constraint(sum_args, self._bound[2])))

    def lower_bound(self, assignments: Mapping[str, Sequence[str]]) -> float:
        """The model value of an assignment (ms): at most its simulated value."""
        busy = {a: 0.0 for a in self.accs}
        value = 0.0
        for n, name in enumerate(self.names):
            accs = assignments[name]
            chain = 0.0
            for i, (acc, group) in enumerate(zip(accs, self.groups[n])):
                busy[acc] += group.time_ms[acc]
                chain += group.time_ms[acc]
                if i + 1 < len(accs) and accs[i + 1] != acc:
                    chain += group.transition_ms.get(acc, 0.0)
            value = max(value, chain / self.chain_scale)
        value = max([value] + [b / self.busy_scale for b in busy.values()])
        cut_value, _ = self.strongest_cut(assignments)
        return max(value, cut_value)

    def strongest_cut(self, assignments: Mapping[str, Sequence[str]]) -> Tuple[float, int]:
        """The largest contention bound of an assignment (ms) and its index (-1: none)."""
        if len(self._cuts) == 0:
            return 0.0, -1
        cols = [self._column[((n, i), acc)] for n, name in enumerate(self.names)
                for i, acc in enumerate(assignments[name])]
        totals = self._cuts[:, cols].sum(axis=1)
        index = int(totals.argmax())
        return float(totals[index]) / self.busy_scale, index

    # --- using -------------------------------------------------------------------------------

    def block(self, assignments: Mapping[str, Sequence[str]]) -> None:
        """Exclude one assignment from every later check (it has been simulated already)."""
        z3 = self._z3
        differs = [self._off[p][assignments[self.names[p[0]]][p[1]]] for p in self._free]
        if not differs:
            self.solver.add(z3.BoolVal(False, ctx=self.ctx))
            return
        # Straight through the C API: z3.Or re-checks every argument (slow in a loop).
        args = (z3.Ast * len(differs))()
        for k, lit in enumerate(differs):
            args[k] = lit.as_ast()
        self.solver.add(z3.BoolRef(z3.Z3_mk_or(self.ctx.ref(), len(differs), args), self.ctx))

    def _bound_literal(self, bound_ms: float, estimate: bool):
        """The literal that switches the bound (and the estimate filter) on; the previous
        bound's is retired (asserted false) so that the solver does not carry every bound it
        was ever asked about."""
        z3 = self._z3
        key = (_units(bound_ms), self._estimate_version if estimate else 0)
        if self._bound is not None and self._bound[0] == key:
            return self._bound[1]
        if self._bound is not None:
            self.solver.add(z3.Not(self._bound[1]))
        lit = z3.Bool(f"bound_{self._checks}_{key[0]}_{key[1]}", ctx=self.ctx)
        constraints = self._bound_constraints(bound_ms)
        if estimate:
            constraints += [self._pb_constraint(sum_args, bound_ms)
                            for sum_args in self._estimate_sums]
        for c in constraints:
            self.solver.add(z3.Implies(lit, c))
        self._bound = (key, lit, bound_ms)
        return lit

    # --- the estimate filter -----------------------------------------------------------------

    def set_estimate(self, wall_ms: Mapping[Tuple[GroupKey, str], float]) -> None:
        """Predicted wall times (ms) of every group on every accelerator it can run on.

        Unlike the bound these are estimates (contention taken from simulating the incumbent,
        refine.py): a check with ``estimate=True`` also asks that the predicted busy time of
        every accelerator (per frame-set) fit the bound. The filter keeps Z3 to assignments
        predicted to come near the incumbent; it proves nothing. (Predicted chains per DNN
        were tried as well: docs/planner.md, "What we tried".)
        """
        sums = []
        for a in self.accs:
            terms = [(self.on[p][a], _units(wall_ms[(p, a)])) for p in self.flat
                     if a in self.on[p]]
            if self._positive(terms):
                sums.append(self._pb_args(terms, 1.0))
        self._estimate_sums = sums
        self._estimate_version += 1

    def check(self, bound_ms: float, rlimit: int, timeout_ms: Optional[int] = None,
              estimate: bool = False,
              fixed: Optional[Mapping[str, Sequence[str]]] = None) -> CheckOutcome:
        """Is there an unblocked assignment whose model value is at most ``bound_ms``?

        ``estimate``: its predicted value too (``set_estimate``). ``fixed``: DNN -> the
        assignment it must keep (only the other DNNs are searched).

        An answer that a contention bound not yet in the model rules out adds that bound and
        asks again (lazy constraint generation), within the same resource limit.
        """
        z3 = self._z3
        assumptions = []
        if bound_ms != math.inf:
            assumptions.append(self._bound_literal(bound_ms, estimate))
        for p in self._free if fixed else ():
            name = self.names[p[0]]
            if name in fixed:
                assumptions.append(self.on[p][fixed[name][p[1]]])
        used = 0
        solves = 0
        while True:
            self._checks += 1
            solves += 1
            self.solver.set("rlimit", max(1, int(rlimit - used)))
            if timeout_ms is not None:
                self.solver.set("timeout", max(1, int(timeout_ms)))
            before = self._rlimit_count()
            result = self.solver.check(*assumptions)
            used += self._rlimit_count() - before
            if result != z3.sat:
                break
            found = self._assignments(self.solver.model())
            value = self.lower_bound(found)
            cut_value, cut = self.strongest_cut(found)
            if bound_ms == math.inf or value <= bound_ms + 1.0 / RESOLUTION \
                    or cut in self._active_cuts or cut_value <= bound_ms:
                return CheckOutcome("sat", found, value, rlimit_used=used, solves=solves)
            self.add_cut(cut)
            if used >= rlimit:
                return CheckOutcome("unknown", reason="max. resource limit exceeded",
                                    rlimit_used=used, solves=solves)
        if result == z3.unsat:
            return CheckOutcome("unsat", rlimit_used=used, solves=solves)
        return CheckOutcome("unknown", reason=self.solver.reason_unknown(), rlimit_used=used,
                            solves=solves)

    def _rlimit_count(self) -> int:
        """Z3's resource counter, read through the C API (Statistics.keys() costs ~100 calls)."""
        z3 = self._z3
        ctx = self.ctx.ref()
        stats = z3.Z3_solver_get_statistics(ctx, self.solver.solver)
        z3.Z3_stats_inc_ref(ctx, stats)
        try:
            size = z3.Z3_stats_size(ctx, stats)
            order = ([self._rlimit_index] if self._rlimit_index is not None else []) \
                + list(range(size))
            for k in order:
                if k < size and z3.Z3_stats_get_key(ctx, stats, k) in ("rlimit count",
                                                                       "rlimit-count"):
                    self._rlimit_index = k
                    if z3.Z3_stats_is_uint(ctx, stats, k):
                        return int(z3.Z3_stats_get_uint_value(ctx, stats, k))
                    return int(z3.Z3_stats_get_double_value(ctx, stats, k))
            return 0
        finally:
            z3.Z3_stats_dec_ref(ctx, stats)

    def _assignments(self, model) -> Assignments:
        z3 = self._z3
        ctx = self.ctx.ref()
        truth = {}
        for name, decl in self._decision_decls:
            value = z3.Z3_model_get_const_interp(ctx, model.model, decl.ast)
            truth[name] = bool(value) and z3.Z3_get_bool_value(ctx, value) == z3.Z3_L_TRUE
        out: Assignments = {}
        for n, name in enumerate(self.names):
            accs = []
            for i in range(len(self.groups[n])):
                chosen = []
                for var, if_true, if_false in self._decode[(n, i)]:
                    value = truth.get(var, False) if var is not None else True
                    pick = if_true if value else if_false
                    if pick is not None:
                        chosen.append(pick)
                if len(chosen) != 1:
                    raise InternalError(f"Z3 model puts group {i} of {name} on {chosen}")
                accs.append(chosen[0])
            out[name] = tuple(accs)
        return out

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
   at most ``B`` (latency) or ``D * B`` (throughput: a frame-set is in flight for at most ``D``
   periods);
3. contention (two accelerators): when both accelerators work, their overlap costs each group
   ``overlap * (1 - 1/S)``; with ``c_a`` the smallest such factor on ``a`` over the pairs of
   groups that can overlap, ``W_a + W_b * c_a / (1 + c_a) <= B`` (the union of the busy
   intervals fits in ``B``; derivation in docs/planner.md).

So the model value of an assignment, ``lower_bound(assignments)``, never exceeds its simulated
value: the search (refine.py) uses this to prove a plan within 1 % of the best. Times enter as
whole microseconds, rounded down, so rounding keeps the bound valid.
"""

from __future__ import annotations

import ctypes
import math
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


def contention_factor(profile: Profile, group: Group, acc: str, partner: Group,
                      partner_acc: str) -> float:
    """``1 - 1/S``: the share of a group's wall time lost while ``partner`` runs elsewhere."""
    demand = group.demand_gbps.get(acc, 0.0) + partner.demand_gbps.get(partner_acc, 0.0)
    s = slowdown(profile.contention[acc], demand / profile.device.peak_bandwidth_gbps)
    return 1.0 - 1.0 / s


def _scales(streaming: bool, frames_in_flight: int) -> Tuple[float, float]:
    """How far the busy and chain sums may exceed the bound (throughput's window edges).

    Latency: 1 and 1. Throughput measures ``(C[W+M-1] - C[W-1]) / M``; the ``M - D + 1``
    frame-sets released at or after ``C[W-1]`` all run inside that window, so the window holds
    at least ``M - D + 1`` frame-sets' work on each accelerator: busy <= P * M / (M - D + 1).
    A frame-set is in flight from ``C[k-D]`` to ``C[k]``, so ``C[k] - C[k-D] >= chain`` and,
    over ``floor(M / D)`` such steps, chain <= P * M / floor(M / D).
    """
    if not streaming:
        return 1.0, 1.0
    from hax_conn_core.simulator import MEASURED_FRAME_SETS as m

    d = frames_in_flight
    busy = m / (m - d + 1) if m - d + 1 > 0 else math.inf
    chain = m / (m // d) if m // d > 0 else math.inf
    return busy, chain


def _units(ms: float) -> int:
    return int(math.floor(ms * RESOLUTION + 1e-9))


class Formulation:
    """A Z3 solver holding the model; each check adds its bound under a fresh literal."""

    def __init__(self, profile: Profile, objective: str, max_transitions: int,
                 frames_in_flight: int, seed: int = 0):
        import z3

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
        self._bound: Optional[Tuple[int, object]] = None
        self._build_choices()
        self._build_transitions()
        self.kappa = self._contention_weights()
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

    def _contention_weights(self) -> Dict[Tuple[str, str], float]:
        """``c_a / (1 + c_a)`` per ordered accelerator pair (two accelerators only)."""
        if len(self.accs) != 2:
            return {}
        out = {}
        for a in self.accs:
            b = self.accs[1] if a == self.accs[0] else self.accs[0]
            smallest = math.inf
            for k, p in enumerate(self.flat):
                gp = self.groups[p[0]][p[1]]
                if not gp.runs_on(a):
                    continue
                for q in self.flat:
                    gq = self.groups[q[0]][q[1]]
                    if q == p or not gq.runs_on(b) or (q[0] == p[0] and not self.streaming):
                        continue
                    smallest = min(smallest, contention_factor(self.profile, gp, a, gq, b))
            if smallest != math.inf and smallest > 0.0:
                out[(a, b)] = smallest / (1.0 + smallest)
        return out

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
        for (a, b), kappa in self.kappa.items():
            if self.busy_scale == math.inf:
                break
            terms = self._busy_terms(a) + [(lit, int(math.floor(w * kappa)))
                                           for lit, w in self._busy_terms(b)]
            sums.append((terms, self.busy_scale))
        out = []
        for terms, scale in sums:
            terms = [(lit, w) for lit, w in terms if w > 0]
            if not terms:
                continue
            # Built once: the z3 Python layer re-checks every argument on each PbLe call,
            # which costs more than the check itself.
            args = (self._z3.Ast * len(terms))()
            coeffs = (ctypes.c_int * len(terms))()
            for k, (lit, w) in enumerate(terms):
                args[k] = lit.as_ast()
                coeffs[k] = w
            out.append(((args, coeffs), len(terms), scale))
        return out

    def _bound_constraints(self, bound_ms: float) -> List[object]:
        z3 = self._z3
        out = []
        for (args, coeffs), size, scale in self._pb_sums:
            limit = _units(bound_ms * scale)
            out.append(z3.BoolRef(z3.Z3_mk_pble(self.ctx.ref(), size, args, coeffs, limit),
                                  self.ctx))
        return out

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
        for (a, b), kappa in self.kappa.items():
            value = max(value, (busy[a] + kappa * busy[b]) / self.busy_scale)
        return value

    # --- using -------------------------------------------------------------------------------

    def block(self, assignments: Mapping[str, Sequence[str]]) -> None:
        """Exclude one assignment from every later check (it has been simulated already)."""
        z3 = self._z3
        differs = [self._off[p][assignments[self.names[p[0]]][p[1]]] for p in self._free]
        self.solver.add(z3.Or(differs) if differs else z3.BoolVal(False, ctx=self.ctx))

    def _bound_literal(self, bound_ms: float):
        """The literal that switches the bound on; the previous bound's is retired (asserted
        false) so that the solver does not carry every bound it was ever asked about."""
        z3 = self._z3
        units = _units(bound_ms)
        if self._bound is not None and self._bound[0] == units:
            return self._bound[1]
        if self._bound is not None:
            self.solver.add(z3.Not(self._bound[1]))
        lit = z3.Bool(f"bound_{self._checks}", ctx=self.ctx)
        for c in self._bound_constraints(bound_ms):
            self.solver.add(z3.Implies(lit, c))
        self._bound = (units, lit)
        return lit

    def check(self, bound_ms: float, rlimit: int, timeout_ms: Optional[int] = None
              ) -> CheckOutcome:
        """Is there an unblocked assignment whose model value is at most ``bound_ms``?"""
        z3 = self._z3
        self._checks += 1
        assumptions = []
        if bound_ms != math.inf:
            assumptions.append(self._bound_literal(bound_ms))
        self.solver.set("rlimit", int(rlimit))
        if timeout_ms is not None:
            self.solver.set("timeout", max(1, int(timeout_ms)))
        before = self._rlimit_count()
        result = self.solver.check(*assumptions)
        used = self._rlimit_count() - before
        if result == z3.sat:
            found = self._assignments(self.solver.model())
            return CheckOutcome("sat", found, self.lower_bound(found), rlimit_used=used)
        if result == z3.unsat:
            return CheckOutcome("unsat", rlimit_used=used)
        return CheckOutcome("unknown", reason=self.solver.reason_unknown(), rlimit_used=used)

    def _rlimit_count(self) -> int:
        stats = self.solver.statistics()
        keys = stats.keys()
        for key in ("rlimit count", "rlimit-count"):
            if key in keys:
                return int(stats.get_key_value(key))
        return 0

    def _assignments(self, model) -> Assignments:
        z3 = self._z3
        truth = {}
        for name, decl in self._decision_decls:
            value = model.get_interp(decl)
            truth[name] = value is not None and z3.is_true(value)
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

"""The Z3 model's checks: fixed DNNs and the estimate filter (planner/formulation.py)."""

import itertools
import math

import pytest

from hax_conn_core.planner.estimate import standalone_ms
from hax_conn_core.planner.formulation import Formulation
from test.core.strategies import group, make_profile

RLIMIT = 10_000_000


def _profile(accelerators=("gpu", "dla")):
    times = {a: 1.0 + k for k, a in enumerate(accelerators)}
    groups = [group(times, {a: 30.0 for a in accelerators})] * 3
    return make_profile({"a": groups, "b": groups}, accelerators=accelerators)


@pytest.mark.parametrize("accelerators", [("gpu", "dla"), ("gpu", "dla0", "dla1")])
def test_fixed_dnns_keep_their_assignment(accelerators):
    profile = _profile(accelerators)
    form = Formulation(profile, "latency", max_transitions=2, frames_in_flight=1)
    seen = set()
    for kept in itertools.product(accelerators, repeat=3):
        out = form.check(math.inf, RLIMIT, fixed={"a": kept})
        assert out.status == "sat"
        assert out.assignments["a"] == kept
        seen.add(out.assignments["b"])
        form.block(out.assignments)
    # With every assignment of b blocked beside a fixed one, nothing is left for that a.
    form_b = Formulation(profile, "latency", max_transitions=2, frames_in_flight=1)
    kept = (accelerators[0],) * 3
    for b in itertools.product(accelerators, repeat=3):
        form_b.block({"a": kept, "b": b})
    assert form_b.check(math.inf, RLIMIT, fixed={"a": kept}).status == "unsat"
    assert form_b.check(math.inf, RLIMIT).status == "sat"  # other a's are still free


def test_a_new_estimate_applies_at_the_same_bound():
    profile = _profile()
    names = list(profile.dnns)
    form = Formulation(profile, "latency", max_transitions=1, frames_in_flight=1)
    bound = 10.0  # standalone: everything fits (6 GPU groups of 1 ms at most 6 ms)
    form.set_estimate({key: 20.0 for key in standalone_ms(profile, names)})
    assert form.check(bound, RLIMIT, estimate=True).status == "unsat"  # no group fits
    assert form.check(bound, RLIMIT).status == "sat"  # the filter is off without estimate
    form.set_estimate(standalone_ms(profile, names))
    out = form.check(bound, RLIMIT, estimate=True)
    assert out.status == "sat"
    # GPU groups predicted at 3 ms: every answer has at most 3 of them on the GPU (9 <= 10 ms),
    # where the standalone times alone would allow all six.
    form.set_estimate({key: (3.0 if key[1] == "gpu" else 1.0)
                       for key in standalone_ms(profile, names)})
    for _ in range(20):
        out = form.check(bound, RLIMIT, estimate=True)
        if out.status != "sat":
            break
        on_gpu = sum(a == "gpu" for accs in out.assignments.values() for a in accs)
        assert 3.0 * on_gpu <= bound
        form.block(out.assignments)

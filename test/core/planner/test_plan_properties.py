"""Property tests of the planner against the brute-force oracle and the baselines.

Random small instances (2-3 DNNs of 2-5 groups, random curves, demands and transition costs):
the plan is within 1 % of the brute-force optimum under the simulator, never worse than a
baseline at an equal transition budget, and its ``predicted_ms`` is the simulator's value.
Seeded (derandomized) so that a run is reproducible; HAX_CONN_TEST_ALL=1 draws more examples.
"""

import os

import pytest
from hypothesis import given, HealthCheck, settings, strategies as st

from hax_conn_core.enumerate_schedules import brute_force_best, enumerate_assignments
from hax_conn_core.planner import plan
from hax_conn_core.planner.api import count_schedules
from hax_conn_core.planner.formulation import Formulation
from hax_conn_core.schedule import count_transitions
from hax_conn_core.simulator import predict_ms, simulate
from test.core.strategies import assignments_for, small_profiles

EXAMPLES = 200 if os.environ.get("HAX_CONN_TEST_ALL") == "1" else 60
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _check_plan(profile, objective, k):
    result = plan(profile, objective=objective, max_transitions=k)
    schedule = result.schedule
    # predicted_ms is the simulator's value of the returned schedule.
    assert schedule.predicted_ms == simulate(profile, schedule).predicted_ms
    assert all(count_transitions(a) <= k for a in schedule.assignments.values())
    assert list(schedule.assignments) == list(profile.dnns)  # priority order kept
    # Never worse than a baseline that fits the same transition budget.
    for baseline in result.baselines:
        if baseline.transitions <= k:
            assert result.predicted_ms <= baseline.schedule.predicted_ms * (1 + 1e-9), \
                baseline.name
    # Within 1 % of the best schedule the simulator can find.
    best = brute_force_best(profile, objective, k)
    assert result.predicted_ms <= best.predicted_ms * 1.01 + 1e-9, (
        f"plan {result.predicted_ms} vs brute force {best.predicted_ms}: "
        f"{dict(schedule.assignments)} vs {dict(best.assignments)}")
    return result


@SETTINGS
@given(profile=small_profiles(), k=st.integers(min_value=0, max_value=2))
def test_latency_plan_within_one_percent_of_brute_force(profile, k):
    result = _check_plan(profile, "latency", k)
    assert result.status == "optimal"
    assert result.lower_bound_ms <= result.predicted_ms


@SETTINGS
@given(profile=small_profiles(max_dnns=2, max_groups=4), k=st.integers(min_value=0, max_value=2))
def test_throughput_plan_within_one_percent_of_brute_force(profile, k):
    result = _check_plan(profile, "throughput", k)
    assert result.status == "optimal"


@settings(max_examples=4 * EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), profile=small_profiles(max_dnns=3),
       objective=st.sampled_from(["latency", "throughput"]),
       frames=st.integers(min_value=1, max_value=4))
def test_model_value_never_exceeds_simulated_value(data, profile, objective, frames):
    # The search's proof rests on this: Z3's model value is a lower bound of the simulation.
    assignment = data.draw(assignments_for(profile))
    form = Formulation(profile, objective, max_transitions=10, frames_in_flight=frames)
    simulated = predict_ms(profile, assignment, objective=objective, frames_in_flight=frames)
    assert form.lower_bound(assignment) <= simulated * (1 + 1e-9)


@pytest.mark.parametrize("accelerators", [("gpu", "dla0", "dla1")])
@settings(max_examples=max(5, EXAMPLES // 3), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_three_accelerators_latency(accelerators, data):
    profile = data.draw(small_profiles(max_dnns=2, max_groups=3, accelerators=accelerators))
    _check_plan(profile, "latency", 1)


@SETTINGS
@given(profile=st.one_of(small_profiles(),
                         small_profiles(max_dnns=2, max_groups=3,
                                        accelerators=("gpu", "dla0", "dla1"))),
       k=st.integers(min_value=0, max_value=2),
       objective=st.sampled_from(["latency", "throughput"]),
       frames=st.integers(min_value=1, max_value=4))
def test_refinement_alone_never_loses_to_a_baseline(profile, k, objective, frames):
    # Without the proof (prove=False, the default on large problems) the plan is the
    # refinement's: not proven, but never worse than a baseline within the budget, judged by
    # the simulator, and the same every time.
    result = plan(profile, objective=objective, max_transitions=k, prove=False,
                  frames_in_flight=frames)
    schedule = result.schedule
    assert schedule.predicted_ms == simulate(profile, schedule).predicted_ms
    assert all(count_transitions(a) <= k for a in schedule.assignments.values())
    for baseline in result.baselines:
        if baseline.transitions <= k:
            assert result.predicted_ms <= baseline.schedule.predicted_ms * (1 + 1e-9), \
                baseline.name
    if any(b.transitions <= k for b in result.baselines):
        assert result.status == "converged"
        assert result.lower_bound_ms is None
    again = plan(profile, objective=objective, max_transitions=k, prove=False,
                 frames_in_flight=frames)
    assert again.schedule.assignments == schedule.assignments


@SETTINGS
@given(profile=small_profiles(max_groups=6), k=st.integers(min_value=0, max_value=3))
def test_count_schedules_is_the_number_the_oracle_enumerates(profile, k):
    accs = profile.device.accelerators
    expected = 1
    for dnn in profile.dnns.values():
        expected *= sum(1 for _ in enumerate_assignments(dnn, accs, k))
    assert count_schedules(profile, k) == expected

"""Enumerating assignments and the brute-force oracle."""

import pytest
from hypothesis import given, HealthCheck, settings

from hax_conn_core.enumerate_schedules import brute_force_best, enumerate_assignments
from hax_conn_core.errors import ScheduleError
from hax_conn_core.schedule import count_transitions
from hax_conn_core.simulator import predict_ms
from test.core.strategies import group, make_profile, small_profiles

BOTH = {"gpu": 1.0, "dla": 2.0}


@pytest.mark.parametrize("n_groups", [1, 2, 5, 10])
def test_counts_with_two_accelerators(n_groups):
    dnn = make_profile({"a": [group(BOTH)] * n_groups}).dnns["a"]
    found = list(enumerate_assignments(dnn, ("gpu", "dla"), 1))
    assert len(found) == 2 + 2 * (n_groups - 1)
    assert len(set(found)) == len(found)
    assert all(count_transitions(a) <= 1 for a in found)
    assert len(list(enumerate_assignments(dnn, ("gpu", "dla"), 0))) == 2
    assert len(list(enumerate_assignments(dnn, ("gpu", "dla"), None))) == 2 ** n_groups


def test_three_accelerators_one_transition():
    dnn = make_profile({"a": [group({"gpu": 1, "dla0": 1, "dla1": 1})] * 4},
                       accelerators=("gpu", "dla0", "dla1")).dnns["a"]
    # 3 single-accelerator runs + 3 cut points x 3 x 2 ordered pairs.
    assert len(list(enumerate_assignments(dnn, ("gpu", "dla0", "dla1"), 1))) == 3 + 3 * 6


def test_only_accelerators_that_can_run_each_group():
    dnn = make_profile({"a": [group(BOTH), group({"gpu": 1.0}), group(BOTH)]}).dnns["a"]
    found = set(enumerate_assignments(dnn, ("gpu", "dla"), 1))
    assert found == {("gpu", "gpu", "gpu"), ("dla", "gpu", "gpu"), ("gpu", "gpu", "dla")}


def test_order_is_lexicographic_in_device_order():
    dnn = make_profile({"a": [group(BOTH)] * 2}).dnns["a"]
    assert list(enumerate_assignments(dnn, ("gpu", "dla"), 1)) == [
        ("gpu", "gpu"), ("gpu", "dla"), ("dla", "gpu"), ("dla", "dla")]


def test_brute_force_finds_the_hand_computed_optimum():
    # a: 2 ms on the GPU then 2 ms anywhere; b: 3 ms on the DLA only. Best: a all on the GPU
    # (4 ms) in parallel with b (3 ms) = 4 ms; a moving to the DLA would queue behind b.
    profile = make_profile({"a": [group({"gpu": 2.0}), group({"gpu": 2.0, "dla": 2.0})],
                            "b": [group({"dla": 3.0})]})
    best = brute_force_best(profile)
    assert best.assignments == {"a": ("gpu", "gpu"), "b": ("dla",)}
    assert best.predicted_ms == pytest.approx(4.0)
    assert best.max_transitions == 1 and best.profile_sha256 == profile.sha256
    assert best.solver["evaluated"] == 2


def test_brute_force_matches_an_exhaustive_check():
    profile = make_profile({
        "a": [group({"gpu": 0.5, "dla": 1.0}, {"gpu": 60, "dla": 30}, {"gpu": 0.1, "dla": 0.2}),
              group({"gpu": 0.8, "dla": 0.9}, {"gpu": 50, "dla": 40}, {"gpu": 0.1, "dla": 0.1}),
              group({"gpu": 0.3, "dla": 0.7}, {"gpu": 70, "dla": 20})],
        "b": [group({"gpu": 1.0, "dla": 1.1}, {"gpu": 40, "dla": 35}, {"gpu": 0.05, "dla": 0.1}),
              group({"gpu": 0.4, "dla": 0.6}, {"gpu": 30, "dla": 25})]})
    best = brute_force_best(profile, "throughput", max_transitions=2)
    every = [predict_ms(profile, {"a": a, "b": b}, "throughput")
             for a in enumerate_assignments(profile.dnns["a"], ("gpu", "dla"), None)
             for b in enumerate_assignments(profile.dnns["b"], ("gpu", "dla"), None)]
    assert best.predicted_ms == min(every)


def test_no_assignment_within_budget():
    profile = make_profile({"a": [group({"gpu": 1.0}), group({"dla": 1.0})]})
    with pytest.raises(ScheduleError, match="a: no assignment with at most 0 transitions"):
        brute_force_best(profile, max_transitions=0)


@settings(max_examples=20, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(small_profiles(min_dnns=2, max_dnns=2, max_groups=4))
def test_a_larger_budget_is_never_worse(profile):
    # The schedules with at most K transitions include those with at most K - 1.
    by_budget = [brute_force_best(profile, max_transitions=k).predicted_ms for k in (0, 1, 2)]
    assert by_budget[2] <= by_budget[1] <= by_budget[0]

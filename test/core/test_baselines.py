"""Baselines on hand-computed cases, and brute force as their lower bound."""

import pytest
from hypothesis import given, HealthCheck, settings, strategies as st

from hax_conn_core.baselines import (all_baselines, baseline, BASELINE_NAMES, h2h,
                                     h2h_estimate_ms, herald)
from hax_conn_core.enumerate_schedules import brute_force_best
from hax_conn_core.errors import ConfigError
from hax_conn_core.simulator import predict_ms
from test.core.strategies import group, make_profile, small_profiles


def test_gpu_only_puts_everything_on_the_gpu():
    profile = make_profile({"a": [group({"gpu": 1.0, "dla": 0.5})] * 3,
                            "b": [group({"gpu": 2.0, "dla": 0.1})]})
    result = baseline(profile, "GPU-only")
    assert result.schedule.assignments == {"a": ("gpu",) * 3, "b": ("gpu",)}
    assert result.transitions == 0
    assert result.schedule.predicted_ms == pytest.approx(5.0)  # serial on the GPU


def test_gpu_and_dla_takes_the_best_mixed_whole_dnn_mapping():
    # a is fast on the GPU, b on the DLA: a | b in parallel, 1 ms.
    profile = make_profile({"a": [group({"gpu": 1.0, "dla": 2.0})],
                            "b": [group({"gpu": 2.0, "dla": 1.0})]})
    result = baseline(profile, "GPU&DLA")
    assert result.schedule.assignments == {"a": ("gpu",), "b": ("dla",)}
    assert result.schedule.predicted_ms == pytest.approx(1.0)


def test_gpu_and_dla_uses_both_accelerators_even_when_gpu_only_is_faster():
    profile = make_profile({"a": [group({"gpu": 1.0, "dla": 10.0})],
                            "b": [group({"gpu": 1.0, "dla": 10.0})]})
    result = baseline(profile, "GPU&DLA")
    # Mixed mappings both take 10 ms; the first in device order wins.
    assert result.schedule.assignments == {"a": ("gpu",), "b": ("dla",)}
    assert result.schedule.predicted_ms == pytest.approx(10.0)


def test_gpu_and_dla_respects_what_the_dla_can_run():
    profile = make_profile({"a": [group({"gpu": 1.0, "dla": 0.1}), group({"gpu": 1.0})],
                            "b": [group({"gpu": 5.0, "dla": 1.0})]})
    assert baseline(profile, "GPU&DLA").schedule.assignments == {"a": ("gpu", "gpu"),
                                                                 "b": ("dla",)}


def test_herald_affinity_then_load_balancing():
    # Affinity puts all three groups on the GPU (1 ms < 1.5 ms): load 3 vs 0. Moving one group
    # to the DLA gives loads 2 / 1.5; moving a second would give 1 / 3, so it stops there.
    profile = make_profile({"a": [group({"gpu": 1.0, "dla": 1.5})] * 3})
    assert herald(profile) == {"a": ("dla", "gpu", "gpu")}


def test_herald_ignores_transition_costs_and_h2h_does_not():
    # Herald keeps the middle group on the DLA, its fastest accelerator, paying two transitions
    # of 1 ms; H2H's remapping folds it back into the GPU run (estimate 5 ms -> 4 ms).
    slow_dla = group({"gpu": 1.0, "dla": 5.0}, transition_ms={"gpu": 1.0, "dla": 1.0})
    profile = make_profile({"a": [slow_dla,
                                  group({"gpu": 2.0, "dla": 1.0},
                                        transition_ms={"gpu": 1.0, "dla": 1.0}),
                                  group({"gpu": 1.0, "dla": 5.0})]})
    assert herald(profile) == {"a": ("gpu", "dla", "gpu")}
    assert h2h_estimate_ms(profile, herald(profile)) == pytest.approx(5.0)
    assert h2h(profile) == {"a": ("gpu", "gpu", "gpu")}
    baselines = {b.name: b for b in all_baselines(profile)}
    assert baselines["Herald"].transitions == 2 and baselines["H2H"].transitions == 0
    assert baselines["Herald"].schedule.predicted_ms == pytest.approx(5.0)
    assert baselines["H2H"].schedule.predicted_ms == pytest.approx(4.0)


def test_h2h_flips_a_group_when_the_transition_costs_more_than_it_saves():
    # Herald: (dla, gpu, gpu), chain 1.5 + 1 (transition) + 1 + 1 = 4.5 ms. Flipping group 0 to
    # the GPU gives loads 3 and chain 3: H2H keeps everything on the GPU.
    profile = make_profile({"a": [group({"gpu": 1.0, "dla": 1.5},
                                        transition_ms={"gpu": 0.0, "dla": 1.0})] * 3})
    assert herald(profile) == {"a": ("dla", "gpu", "gpu")}
    assert h2h(profile) == {"a": ("gpu", "gpu", "gpu")}


def test_baselines_that_do_not_apply_are_left_out():
    profile = make_profile({"a": [group({"dla": 1.0})], "b": [group({"gpu": 1.0})]})
    names = [b.name for b in all_baselines(profile)]
    assert names == ["GPU&DLA", "Herald", "H2H"]
    with pytest.raises(ConfigError, match="GPU-only does not apply .*cannot run group 0 of a"):
        baseline(profile, "GPU-only")
    with pytest.raises(ConfigError, match="unknown baseline 'Best': expected one of GPU-only"):
        baseline(profile, "Best")


def test_every_baseline_is_judged_by_the_simulator():
    profile = make_profile({"a": [group({"gpu": 1.0, "dla": 1.2}, {"gpu": 40, "dla": 30})] * 3,
                            "b": [group({"gpu": 0.7, "dla": 0.9}, {"gpu": 50, "dla": 20})] * 2})
    for objective in ("latency", "throughput"):
        results = all_baselines(profile, objective)
        assert [b.name for b in results] == list(BASELINE_NAMES)
        for b in results:
            assert b.schedule.predicted_ms == predict_ms(profile, b.schedule.assignments,
                                                         objective)
            assert b.schedule.profile_sha256 == profile.sha256


@settings(max_examples=40, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_brute_force_is_a_lower_bound_of_baselines_within_its_budget(data):
    profile = data.draw(small_profiles(min_dnns=2, max_dnns=2, max_groups=4))
    objective = data.draw(st.sampled_from(["latency", "throughput"]))
    results = all_baselines(profile, objective)
    budget = max(b.transitions for b in results)
    best = brute_force_best(profile, objective, max_transitions=budget)
    for b in results:
        assert best.predicted_ms <= b.schedule.predicted_ms + 1e-9, b.name

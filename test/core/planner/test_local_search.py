"""The local search that improves the incumbent before Z3 (refine.Search._local_search)."""

import pytest
from hypothesis import given, HealthCheck, settings, strategies as st

from hax_conn_core.planner import refine
from hax_conn_core.schedule import count_transitions
from hax_conn_core.simulator import predict_ms
from test.core.strategies import group, make_profile, small_profiles


def _search(profile, k, seeds):
    search = refine.Search(profile, "latency", k, 1)
    for seed in seeds:
        search.simulate(seed.assignments, seed.name)
    search._local_search(seeds)
    return search


def test_local_search_alone_finds_the_hand_computed_split():
    # One DNN, a GPU-fast then a DLA-fast group, no traffic. From GPU-only (1 + 3 = 4 ms) the
    # moves in order: group 0 to the DLA (3 + 3 = 6 ms, no), both to the DLA (4 ms, not
    # better), group 1 to the DLA (1 + 1 = 2 ms): taken; no move from there improves.
    profile = make_profile({"a": [group({"gpu": 1.0, "dla": 3.0}),
                                  group({"gpu": 3.0, "dla": 1.0})]})
    gpu_only = refine.Seed("GPU-only", {"a": ("gpu", "gpu")})
    search = _search(profile, 1, [gpu_only])
    assert search.best == {"a": ("gpu", "dla")}
    assert search.best_ms == pytest.approx(2.0)
    assert search.source == refine.LOCAL_SEARCH
    assert search.tried[(("gpu", "gpu"),)] == pytest.approx(4.0)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(profile=small_profiles(max_dnns=3), k=st.integers(min_value=0, max_value=2))
def test_local_search_never_worse_than_its_seed_and_keeps_the_budget(profile, k):
    accs = profile.device.accelerators
    seeds = [refine.Seed(f"{a}-only", {n: (a,) * len(d.groups) for n, d in profile.dnns.items()})
             for a in accs if all(g.runs_on(a) for d in profile.dnns.values() for g in d.groups)]
    if not seeds:
        return
    search = _search(profile, k, seeds)
    seed_best = min(predict_ms(profile, s.assignments) for s in seeds)
    assert search.best_ms <= seed_best
    assert search.best_ms == predict_ms(profile, search.best)
    assert all(count_transitions(a) <= k for a in search.best.values())
    assert len(search.tried) <= len(seeds) + refine.LOCAL_SEARCH_BUDGET

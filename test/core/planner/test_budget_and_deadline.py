"""A larger transition budget is never worse; every stage keeps the deadline and memory stays
polynomial (docs/planner.md, "Guarantees"). Real Z3, generated profiles, the real command.

No timing is asserted: the wall-time figures for --timeout live in bench/bench_scale.py
(docs/bench-scale.md). Here a 50-DNN problem whose GPU&DLA baseline alone has 2^50 whole-DNN
combinations must finish at all, and with the limit's warning.
"""

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, HealthCheck, settings, strategies as st

from hax_conn_core.baselines import (all_baselines, best_whole_dnn_mapping, EXHAUSTIVE_LIMIT,
                                     h2h, h2h_estimate_ms)
from hax_conn_core.planner import plan
from hax_conn_core.planner.formulation import _Partners, Formulation
from hax_conn_core.contention import slowdown
from hax_conn_core.profile import parse_profile
from hax_conn_core.simulator import predict_ms
from test.core.strategies import small_profiles

REPO = Path(__file__).resolve().parents[3]
HAX_CONN = str(Path(sys.executable).with_name("hax-conn"))
CURVES = {"gpu": [[0.0, 1.0], [0.5, 1.05], [1.0, 1.6], [1.5, 2.2]],
          "dla": [[0.0, 1.0], [0.3, 1.0], [1.0, 1.4], [1.5, 1.9]]}


def generated_profile(seed: int, n_dnns: int, n_groups: int, dla_share: float = 1.0):
    """Random groups on the shipped Xavier device and curves; every group runs on the DLA
    unless ``dla_share`` < 1 (the worst case for whole-DNN enumeration is 1: 2^n_dnns)."""
    rng = random.Random(f"budget-{seed}-{n_dnns}-{n_groups}")
    dnns = {}
    for d in range(n_dnns):
        groups, layer = [], 0
        for _ in range(n_groups):
            gpu = rng.uniform(0.1, 2.0)
            time_ms, demand, transition = {"gpu": gpu}, {"gpu": rng.uniform(5, 80)}, \
                {"gpu": rng.uniform(0.0, 0.2)}
            if rng.random() < dla_share:
                time_ms["dla"] = gpu * rng.uniform(1.0, 3.0)
                demand["dla"] = rng.uniform(5, 60)
                transition["dla"] = rng.uniform(0.0, 0.2)
            size = rng.randint(1, 20)
            groups.append({"layers": [layer, layer + size - 1], "time_ms": time_ms,
                           "demand_gbps": demand, "transition_ms": transition})
            layer += size
        dnns[f"net{d}"] = {"groups": groups}
    doc = {"format": "hax-conn-profile/1",
           "device": {"name": "xavier-agx", "accelerators": ["gpu", "dla"],
                      "peak_bandwidth_gbps": 136.5},
           "contention": CURVES, "dnns": dnns}
    return doc, parse_profile(doc, source="<generated>")


# --- budget monotonicity -----------------------------------------------------------------------

def _check_monotone(profile, objective, frames=2, **limits):
    previous = None
    for k in (0, 1, 2):
        result = plan(profile, objective=objective, max_transitions=k, frames_in_flight=frames,
                      **limits)
        within = [b.schedule.predicted_ms for b in result.baselines if b.transitions <= k]
        # Baselines carry predict_ms's figure, the plan simulate()'s: the same simulation, the
        # first stopping once the stream repeats (equal to ~1e-12): hence the tolerance. The
        # plans for K and K - 1 are both simulate()'s: compared exactly.
        assert all(result.predicted_ms <= ms * (1 + 1e-9) for ms in within), (
            k, result.predicted_ms, within)
        if previous is not None:
            assert result.predicted_ms <= previous, (k, result.predicted_ms, previous)
        assert result.schedule.max_transitions_used() <= k
        previous = result.predicted_ms


@settings(max_examples=12, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(small_profiles(min_dnns=2, max_dnns=3, dla_everywhere=True),
       st.sampled_from(["latency", "throughput"]))
def test_a_larger_budget_is_never_worse_on_small_profiles(profile, objective):
    _check_monotone(profile, objective)


@pytest.mark.parametrize("seed, objective", [(0, "throughput"), (1, "latency"),
                                             (2, "throughput")])
def test_a_larger_budget_is_never_worse_when_limits_stop_the_search(seed, objective):
    # Resource limits so small that every search stops early (the case: K = 2 stopped
    # at a limit, K = 1 did not): the K search still starts from the K - 1 plan.
    _, profile = generated_profile(seed, 3, 8)
    _check_monotone(profile, objective, rlimit_total=2_000_000, rlimit_per_check=500_000)


@pytest.mark.parametrize("seed", [3, 4])
def test_budget_monotonicity_through_the_real_command(seed, tmp_path):
    doc, _ = generated_profile(seed, 3, 6)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    values = []
    for k in ("0", "1", "2"):
        done = subprocess.run([HAX_CONN, "plan", "--profile", str(path), "--objective",
                               "throughput", "--max-transitions", k, "--json"],
                              capture_output=True, text=True, timeout=600, cwd=REPO)
        assert done.returncode == 0, done.stderr
        values.append(json.loads(done.stdout)["predicted_ms"])
    assert values[0] >= values[1] >= values[2], values


# --- baselines at scale --------------------------------------------------------------------------

@pytest.mark.parametrize("n_dnns", [11, 20, 60])
def test_gpu_and_dla_beyond_exhaustive_is_a_mixed_search_result(n_dnns):
    _, profile = generated_profile(5, n_dnns, 3)
    assert 2 ** n_dnns > EXHAUSTIVE_LIMIT
    assignment = best_whole_dnn_mapping(profile, "latency")
    used = {accs[0] for accs in assignment.values()}
    assert used == {"gpu", "dla"}  # mixed: the baseline is "GPU & DLA"
    assert all(len(set(accs)) == 1 for accs in assignment.values())  # whole DNNs
    # No single DNN moved to the other accelerator improves it (the search's end condition),
    # unless the move would leave a single accelerator.
    ms = predict_ms(profile, assignment)
    for name, accs in list(assignment.items())[:8]:
        other = "dla" if accs[0] == "gpu" else "gpu"
        trial = {**assignment, name: (other,) * len(accs)}
        if len({a[0] for a in trial.values()}) > 1:
            assert predict_ms(profile, trial) >= ms * (1 - 1e-12)


def test_gpu_and_dla_exhaustive_up_to_the_limit_matches_every_combination():
    import itertools

    _, profile = generated_profile(6, 6, 3)
    names = list(profile.dnns)
    best = min((c for c in itertools.product(("gpu", "dla"), repeat=6) if len(set(c)) > 1),
               key=lambda c: predict_ms(profile, {n: (a,) * 3 for n, a in zip(names, c)}))
    assert best_whole_dnn_mapping(profile) == {n: (a,) * 3 for n, a in zip(names, best)}


def test_gpu_and_dla_stops_at_the_deadline_with_a_simulated_combination():
    _, profile = generated_profile(7, 40, 4)
    import time

    assignment = best_whole_dnn_mapping(profile, "latency", deadline=time.monotonic())
    assert {accs[0] for accs in assignment.values()} == {"gpu", "dla"}
    assert set(assignment) == set(profile.dnns)


@settings(max_examples=30, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(small_profiles(min_dnns=2, max_dnns=4))
def test_h2h_moves_only_when_its_estimate_drops(profile):
    from hax_conn_core.baselines import herald

    assert h2h_estimate_ms(profile, h2h(profile)) <= h2h_estimate_ms(profile,
                                                                     herald(profile)) + 1e-12


@settings(max_examples=60, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(small_profiles(min_dnns=1, max_dnns=4), st.booleans())
def test_least_partner_slowdown_equals_the_scan_over_every_partner(profile, streaming):
    form = Formulation(profile, "throughput" if streaming else "latency", 1,
                       2 if streaming else 1)
    a, b = form.accs
    for acc, other in ((a, b), (b, a)):
        partners = _Partners(form, other)
        for p in form.flat:
            gp = form.groups[p[0]][p[1]]
            if not gp.runs_on(acc):
                continue
            own = gp.demand_gbps.get(acc, 0.0)
            scan = [slowdown(profile.contention[acc],
                             (own + form.groups[q[0]][q[1]].demand_gbps.get(other, 0.0))
                             / profile.device.peak_bandwidth_gbps)
                    for q in form.flat if q != p and form.groups[q[0]][q[1]].runs_on(other)
                    and (form.streaming or q[0] != p[0])]
            expected = min(scan) if scan else 1.0
            assert partners.least_slowdown(p, own, profile.contention[acc]) == \
                pytest.approx(expected, rel=1e-12)


# --- the deadline through the real command -------------------------------------------------------

@pytest.mark.parametrize("objective, k", [("latency", "1"), ("throughput", "2")])
def test_fifty_dnns_with_a_timeout_finish_with_a_plan(objective, k, tmp_path):
    doc, profile = generated_profile(8, 50, 30)
    path = tmp_path / "p50.json"
    path.write_text(json.dumps(doc))
    done = subprocess.run([HAX_CONN, "plan", "--profile", str(path), "--objective", objective,
                           "--max-transitions", k, "--timeout", "3", "--json"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr
    schedule = json.loads(done.stdout)
    assert set(schedule["dnns"]) == set(profile.dnns)
    assert "time limit" in done.stderr  # it stopped at the limit and said so
    baselines = all_baselines(profile, objective)
    within = [b.schedule.predicted_ms for b in baselines if b.transitions <= int(k)]
    assert schedule["predicted_ms"] <= min(within) * (1 + 1e-6)


@pytest.mark.parametrize("value", ["inf", "nan", "0", "-1", "1e300"])
def test_bad_timeouts_are_one_line(value):
    done = subprocess.run([HAX_CONN, "plan", "--profile",
                           str(REPO / "profiles" / "xavier_googlenet_alexnet.json"),
                           "--timeout", value], capture_output=True, text=True, timeout=120,
                          cwd=REPO)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1 and "timeout" in done.stderr

"""The planner on hand-computed cases, its limits and its options."""

import pytest

from hax_conn_core.errors import ConfigError, SolverError
from hax_conn_core.planner import plan
from hax_conn_core.schedule import count_transitions
from hax_conn_core.simulator import simulate
from test.core.strategies import group, make_profile

# Each DNN: a first group the GPU runs 3x faster, a second the DLA runs 3x faster; no demand,
# so no contention, no transition cost.
SPLIT_WINS = {
    "a": [group({"gpu": 1.0, "dla": 3.0}), group({"gpu": 3.0, "dla": 1.0})],
    "b": [group({"gpu": 1.0, "dla": 3.0}), group({"gpu": 3.0, "dla": 1.0})],
}


def test_split_beats_every_whole_mapping():
    # Hand-computed: a[0] GPU 0-1, b[0] GPU 1-2, a[1] DLA 1-2, b[1] DLA 2-3: 3 ms. The best whole
    # mapping (a on GPU, b on DLA, or the reverse) takes 4 ms; GPU-only 8 ms.
    result = plan(make_profile(SPLIT_WINS))
    assert result.schedule.assignments == {"a": ("gpu", "dla"), "b": ("gpu", "dla")}
    assert result.predicted_ms == pytest.approx(3.0)
    assert result.status == "optimal"
    by_name = {b.name: b.schedule.predicted_ms for b in result.baselines}
    assert by_name["GPU-only"] == pytest.approx(8.0)
    assert by_name["GPU&DLA"] == pytest.approx(4.0)


def test_no_transition_budget_gives_a_whole_mapping_and_says_so():
    result = plan(make_profile(SPLIT_WINS), max_transitions=0)
    assert all(count_transitions(a) == 0 for a in result.schedule.assignments.values())
    assert result.predicted_ms == pytest.approx(4.0)
    assert any("whole" in note for note in result.notes)


def test_two_transitions_are_used_when_they_pay():
    # GPU-fast, DLA-fast, GPU-fast groups: with K = 2 the DNN alternates; with K = 1 it cannot.
    alternating = [group({"gpu": 1.0, "dla": 4.0}), group({"gpu": 4.0, "dla": 1.0}),
                   group({"gpu": 1.0, "dla": 4.0})]
    profile = make_profile({"a": alternating})
    two = plan(profile, max_transitions=2)
    assert two.schedule.assignments == {"a": ("gpu", "dla", "gpu")}
    assert two.predicted_ms == pytest.approx(3.0)
    one = plan(profile, max_transitions=1)
    assert one.predicted_ms == pytest.approx(6.0)  # gpu, gpu, gpu or gpu, dla, dla
    assert max(count_transitions(a) for a in one.schedule.assignments.values()) <= 1


@pytest.mark.parametrize("demand, expected_ms, b_on", [
    # No memory traffic: b on the DLA overlaps a: max(2, 1.2) = 2 ms (GPU-only: 3 ms).
    (0.0, 2.0, "dla"),
    # Heavy traffic: u = (90 + 90) / 100 -> S = 2 (the curve's end). Overlapped, both run at
    # half speed: b finishes at 2.4 ms, a has done 1.2 of 2 ms and ends at 3.2 ms. So the
    # GPU-only schedule (a then b, 3 ms) wins.
    (90.0, 3.0, "gpu"),
])
def test_contention_decides_where_a_dnn_goes(demand, expected_ms, b_on):
    profile = make_profile({"a": [group({"gpu": 2.0}, {"gpu": demand})],
                            "b": [group({"gpu": 1.0, "dla": 1.2},
                                        {"gpu": demand, "dla": demand})]})
    result = plan(profile)
    assert result.schedule.assignments["b"] == (b_on,)
    assert result.predicted_ms == pytest.approx(expected_ms)
    assert result.predicted_ms == pytest.approx(simulate(profile, result.schedule).predicted_ms)


def test_same_input_same_plan():
    profile = make_profile(SPLIT_WINS)
    first, second = plan(profile, max_transitions=2), plan(profile, max_transitions=2)
    assert first.schedule.assignments == second.schedule.assignments
    assert first.predicted_ms == second.predicted_ms
    assert first.checks == second.checks


def test_a_spent_time_limit_returns_the_best_so_far_with_a_warning():
    profile = make_profile(SPLIT_WINS)
    result = plan(profile, timeout_s=1e-9)
    assert result.status == "timeout"
    assert result.warnings and "best found so far" in result.warnings[0]
    assert result.predicted_ms == pytest.approx(simulate(profile, result.schedule).predicted_ms)


def test_a_spent_resource_limit_returns_the_best_so_far_with_a_warning():
    profile = make_profile(SPLIT_WINS)
    result = plan(profile, rlimit_total=1)
    assert result.status == "resource-limit"
    assert result.warnings and "resource limit" in result.warnings[0]
    best_baseline = min(b.schedule.predicted_ms for b in result.baselines if b.transitions <= 1)
    assert result.predicted_ms <= best_baseline + 1e-9


def test_schedule_records_what_it_was_planned_on():
    profile = make_profile(SPLIT_WINS)
    result = plan(profile, objective="throughput", max_transitions=2, frames_in_flight=3)
    s = result.schedule
    assert s.profile_sha256 == profile.sha256
    assert s.max_transitions == 2 and s.frames_in_flight == 3 and s.objective == "throughput"
    assert s.solver["name"] == "z3" and s.solver["status"] == result.status
    assert s.solver["time_s"] >= 0


def test_three_accelerators():
    three = {"gpu": 2.0, "dla0": 2.0, "dla1": 2.0}
    profile = make_profile({"a": [group(three)] * 2, "b": [group(three)] * 2,
                            "c": [group(three)] * 2},
                           accelerators=("gpu", "dla0", "dla1"))
    result = plan(profile, max_transitions=0)
    # One DNN per accelerator: 4 ms.
    assert result.predicted_ms == pytest.approx(4.0)
    assert len({a[0] for a in result.schedule.assignments.values()}) == 3


def test_no_schedule_fits_the_budget():
    # a's groups run on different accelerators only: it needs one transition.
    profile = make_profile({"a": [group({"gpu": 1.0}), group({"dla": 1.0})]})
    with pytest.raises(SolverError, match="no schedule fits"):
        plan(profile, max_transitions=0)
    assert plan(profile, max_transitions=1).schedule.assignments == {"a": ("gpu", "dla")}


@pytest.mark.parametrize("kwargs, match", [
    ({"objective": "speed"}, "objective: expected one of latency, throughput"),
    ({"max_transitions": -1}, "max transitions: expected an integer >= 0"),
    ({"max_transitions": 1.5}, "max transitions: expected an integer >= 0"),
    ({"timeout_s": 0}, "timeout: expected a number of seconds > 0"),
    ({"frames_in_flight": 0}, "frames in flight: expected an integer from 1 to 16, found 0"),
    ({"frames_in_flight": 17}, "frames in flight: expected an integer from 1 to 16, found 17"),
    ({"frames_in_flight": 40}, "frames in flight: expected an integer from 1 to 16, found 40"),
    ({"frames_in_flight": 2.0}, "frames in flight: expected an integer from 1 to 16"),
])
def test_bad_options(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        plan(make_profile(SPLIT_WINS), **kwargs)


def _four_dnns():
    # Four DNNs of five groups, GPU-fast and DLA-fast in turn, heavy DRAM traffic: 22^4
    # schedules with K = 2 (234,256), over the default proof limit.
    groups = [group({"gpu": 1.0, "dla": 2.5}, {"gpu": 40.0, "dla": 30.0}),
              group({"gpu": 2.0, "dla": 1.0}, {"gpu": 20.0, "dla": 20.0}),
              group({"gpu": 0.5, "dla": 1.5}, {"gpu": 60.0, "dla": 10.0}),
              group({"gpu": 1.5, "dla": 1.0}, {"gpu": 30.0, "dla": 40.0}),
              group({"gpu": 0.8, "dla": 2.0}, {"gpu": 50.0, "dla": 20.0})]
    return make_profile({name: groups for name in "abcd"})


def test_large_problems_are_refined_not_proven_unless_asked():
    from hax_conn_core.planner.api import count_schedules, PROVE_LIMIT

    profile = _four_dnns()
    assert count_schedules(profile, 2) > PROVE_LIMIT
    refined = plan(profile, max_transitions=2)
    assert refined.status == "converged"
    # Found by the refinement (the only Z3 step without the proof), beyond the local search.
    assert refined.source == "z3"
    assert refined.lower_bound_ms is None
    assert any("not proven" in note and "--prove" in note for note in refined.notes)
    assert refined.schedule.solver["status"] == "converged"
    proven = plan(profile, max_transitions=2, prove=True)
    assert proven.status == "optimal"
    assert proven.lower_bound_ms <= proven.predicted_ms
    # The proof starts from the refined plan: it can only find a better one.
    assert proven.predicted_ms <= refined.predicted_ms


def test_small_problems_are_proven_by_default():
    profile = make_profile(SPLIT_WINS)
    assert plan(profile).status == "optimal"
    assert plan(profile, prove=False).status == "converged"


def _no_baseline_fits_k1():
    # No "gpu" accelerator (no GPU-only), no accelerator runs a whole DNN (no GPU&DLA), and
    # the affinities alternate so that Herald and H2H need more than K = 1 transitions.
    def g(npu, dla):
        times = {a: t for a, t in (("npu", npu), ("dla", dla)) if t is not None}
        return group(times, {a: 40.0 for a in times}, {a: 0.01 for a in times})

    dnn = [g(1.0, None), g(1.0, 3.0), g(3.0, 1.0), g(1.0, 3.0), g(3.0, 1.0), g(None, 1.0)]
    return make_profile({"a": dnn, "b": dnn}, accelerators=("npu", "dla"))


def test_no_baseline_within_budget_refines_from_a_first_z3_schedule():
    # Z3 finds the first schedule, the refinement improves on it, prove=False is honoured.
    profile = _no_baseline_fits_k1()
    refined = plan(profile, max_transitions=1, prove=False)
    assert not any(b.transitions <= 1 for b in refined.baselines)
    assert refined.status == "converged" and refined.lower_bound_ms is None
    assert refined.source == "z3"
    assert refined.schedule.predicted_ms == simulate(profile, refined.schedule).predicted_ms
    proven = plan(profile, max_transitions=1)
    assert proven.status == "optimal"
    assert proven.predicted_ms <= refined.predicted_ms


def test_no_baseline_and_a_limit_before_the_first_schedule_is_a_clear_error():
    with pytest.raises(SolverError, match="no schedule found: no baseline fits 1 transition"):
        plan(_no_baseline_fits_k1(), max_transitions=1, prove=False, rlimit_per_check=1)


def test_pairs_z3_gives_up_on_are_a_resource_limit_not_convergence():
    # Every refinement check runs out of resources: the search must not call that converged.
    result = plan(_four_dnns(), max_transitions=2, prove=False, rlimit_per_check=1)
    assert result.status == "resource-limit"
    assert any("Z3's resource limit" in w and "pair(s) of DNNs" in w for w in result.warnings)
    assert not any("not proven" in note for note in result.notes)


def test_a_proof_that_runs_out_leaves_the_refined_plan_converged(monkeypatch):
    # prove=None and a problem under the proof limit: the proof runs, but a limit that stops
    # it is no failure; the plan is the refinement's, with the bound reached in a note.
    from hax_conn_core.planner import api, refine

    profile = _four_dnns()
    refined = plan(profile, max_transitions=2, prove=False)
    monkeypatch.setattr(api, "PROVE_LIMIT", 10 ** 9)
    # Room for the refinement (deterministic: the same candidates again) and a few more.
    monkeypatch.setattr(refine, "MAX_CANDIDATES", refined.candidates + 5)
    result = plan(profile, max_transitions=2)
    assert result.status == "converged"
    assert not result.warnings
    assert any(f"the proof stopped at the limit of {refined.candidates + 5} simulated "
               f"candidates" in note for note in result.notes)
    assert result.lower_bound_ms is not None  # what the proof ruled out still bounds
    assert result.predicted_ms <= refined.predicted_ms
    asked = plan(profile, max_transitions=2, prove=True)
    assert asked.status == "candidate-limit" and asked.warnings

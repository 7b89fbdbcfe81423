"""The simulator against an independent plain reference (reference_simulator.py) and paper cases.

The reference was written from docs/timing-model.md alone, with exact rational arithmetic; its
docstring lists how it reads each point the spec leaves open. The property tests draw small
instances on a coarse grid (times and delays in quarters of a millisecond, demands in quarters of
the peak) so that ties (simultaneous finishes, a transition ending as another group finishes,
releases at a finish) really happen, and random ones with arbitrary curves.
"""

from fractions import Fraction

import pytest
from hypothesis import given, HealthCheck, settings, strategies as st

from hax_conn_core.schedule import Schedule
from hax_conn_core.simulator import predict_ms, simulate
from test.core.reference_simulator import reference_simulate
from test.core.strategies import assignments_for, group, make_profile, small_profiles

FLAT = [[0.0, 1.0]]  # no slowdown at all: isolates the ordering rules
ACCS_2 = ("gpu", "dla")
ACCS_3 = ("gpu", "dla", "pva")


def _close(ours: float, ref: Fraction, rel: float = 1e-9) -> bool:
    return abs(ours - float(ref)) <= rel * max(1.0, abs(float(ref)))


# Throughput runs 40 D frame-sets, and the stream can amplify a perturbation: on some grid
# instances (contention curves steep enough) an input change of 1e-12 ms grows about 3x per
# frame-set, to 1e-4 ms in C[36] of the exact reference. Float rounding is such a perturbation,
# so ours (floats) legitimately drifts from the exact reference by ~1e-8 ms there.
THROUGHPUT_REL = 1e-6


def _flat_profile(dnns, accelerators=ACCS_2):
    return make_profile(dnns, accelerators=accelerators,
                        curves={a: FLAT for a in accelerators})


# --- hand-computed cases ---------------------------------------------------------------------

def test_same_accelerator_successor_queues_behind_earlier_ready_group():
    # a: g0 gpu 1, g1 gpu 1; b: gpu 1. At 0 a.g0 (listed first) runs 0-1. At 1 a.g1 becomes
    # ready (1) but b has waited since 0: b runs 1-2, a.g1 2-3.
    profile = _flat_profile({"a": [group({"gpu": 1.0}), group({"gpu": 1.0})],
                             "b": [group({"gpu": 1.0})]})
    result = simulate(profile, Schedule("latency", {"a": ("gpu", "gpu"), "b": ("gpu",)}))
    assert result.dnn_finish_ms == pytest.approx({"a": 3.0, "b": 2.0})
    assert result.predicted_ms == pytest.approx(3.0)


def test_transition_end_ties_with_a_finish_then_dnn_order_decides():
    # a: g0 dla 1 (then 0.5 ms hand-over), g1 gpu 1; b: g0 gpu 1.5, g1 gpu 1.
    # dla runs a.g0 0-1, gpu runs b.g0 0-1.5. a.g1 is ready at 1 + 0.5 = 1.5, b.g1 at 1.5 too:
    # a tie, same frame-set, so the DNN listed first goes first.
    dnns = {"a": [group({"dla": 1.0}, transition_ms={"dla": 0.5}), group({"gpu": 1.0})],
            "b": [group({"gpu": 1.5}), group({"gpu": 1.0})]}
    profile = _flat_profile(dnns)
    assign = {"a": ("dla", "gpu"), "b": ("gpu", "gpu")}
    # a first: a.g1 1.5-2.5, b.g1 2.5-3.5.
    result = simulate(profile, Schedule("latency", assign))
    assert result.dnn_finish_ms == pytest.approx({"a": 2.5, "b": 3.5})
    # b first: b.g1 1.5-2.5, a.g1 2.5-3.5.
    reordered = {"b": assign["b"], "a": assign["a"]}
    result = simulate(profile.subset(["b", "a"]), Schedule("latency", reordered))
    assert result.dnn_finish_ms == pytest.approx({"a": 3.5, "b": 2.5})


def test_sender_is_free_during_the_transition_delay():
    # a: g0 dla 1 (then 1 ms hand-over), g1 gpu 1; b: dla 1. dla runs a.g0 0-1, then b 1-2
    # while a is in transit; a.g1 is ready at 2 and runs on the gpu 2-3.
    profile = _flat_profile({"a": [group({"dla": 1.0}, transition_ms={"dla": 1.0}),
                                   group({"gpu": 1.0})],
                             "b": [group({"dla": 1.0})]})
    result = simulate(profile, Schedule("latency", {"a": ("dla", "gpu"), "b": ("dla",)}))
    assert result.dnn_finish_ms == pytest.approx({"a": 3.0, "b": 2.0})


def test_slowdown_applies_whenever_anything_runs_elsewhere_even_with_zero_demand():
    # a: gpu 1 ms, demand 0; b: dla 2 ms, demand 0. gpu curve constant 1.5 (clamped), dla flat.
    # Together: u = 0 on both, S_gpu = 1.5 (something runs on the dla), so a ends at 1.5;
    # b at S = 1 ends at 2. Alone, a takes its standalone 1 ms (S = 1, nothing elsewhere).
    profile = make_profile({"a": [group({"gpu": 1.0})], "b": [group({"dla": 2.0})]},
                           curves={"gpu": [[0.0, 1.5]], "dla": FLAT})
    result = simulate(profile, Schedule("latency", {"a": ("gpu",), "b": ("dla",)}))
    assert result.dnn_finish_ms == pytest.approx({"a": 1.5, "b": 2.0})
    assert predict_ms(profile.subset(["a"]), {"a": ("gpu",)}) == pytest.approx(1.0)


def test_three_accelerators_interpolation_and_clamping():
    # a gpu 2 ms 50 GB/s, b dla 2 ms 25 GB/s, c pva 4 ms 25 GB/s, peak 100.
    # gpu [[0.5,1],[1.5,3]], dla [[0,1],[2,2]], pva constant 2.
    # 0-3: u = 1 everywhere: S_gpu = 2, S_dla = 1.5, S_pva = 2. b ends at 2 * 1.5 = 3.
    #   a has done 1.5 of 2, c 1.5 of 4.
    # 3-3.75: u_gpu = 0.75 -> S_gpu = 1 + 0.25 * 2 = 1.5, a ends at 3 + 0.5 * 1.5 = 3.75;
    #   S_pva = 2: c does 0.375 more (2.125 left).
    # 3.75-5.875: c alone (S = 1) ends at 3.75 + 2.125 = 5.875.
    profile = make_profile({"a": [group({"gpu": 2.0}, {"gpu": 50.0})],
                            "b": [group({"dla": 2.0}, {"dla": 25.0})],
                            "c": [group({"pva": 4.0}, {"pva": 25.0})]},
                           accelerators=ACCS_3,
                           curves={"gpu": [[0.5, 1.0], [1.5, 3.0]],
                                   "dla": [[0.0, 1.0], [2.0, 2.0]], "pva": [[0.0, 2.0]]})
    result = simulate(profile, Schedule("latency", {"a": ("gpu",), "b": ("dla",), "c": ("pva",)}))
    assert result.dnn_finish_ms == pytest.approx({"a": 3.75, "b": 3.0, "c": 5.875})
    assert result.predicted_ms == pytest.approx(5.875)


def test_latency_is_the_latest_finish_not_the_last_listed_dnn():
    # a gpu 3, b dla 1, flat curves: the frame-set ends at 3 although b (listed last) ends at 1.
    profile = _flat_profile({"a": [group({"gpu": 3.0})], "b": [group({"dla": 1.0})]})
    assert predict_ms(profile, {"a": ("gpu",), "b": ("dla",)}) == pytest.approx(3.0)


@pytest.mark.parametrize("depth, expected", [(1, 2.0), (2, 1.0), (3, 1.0)])
def test_throughput_pipeline(depth, expected):
    # One DNN: g0 gpu 1, g1 dla 1 (no hand-over cost), flat curves.
    # D = 1: frame-sets run one after another, C[k] = 2 (k + 1): 2 ms per frame-set.
    # D = 2: gpu 0-1 (f0), 1-2 (f1); dla 1-2 (f0), 2-3 (f1); C = 2, 3; f2 released at 2 runs
    #   gpu 2-3, dla 3-4; f3 released at 3 ...: C[k] = k + 2, 1 ms per frame-set.
    # D = 3: the gpu stays the bottleneck: 1 ms per frame-set.
    profile = _flat_profile({"a": [group({"gpu": 1.0}), group({"dla": 1.0})]})
    assign = {"a": ("gpu", "dla")}
    result = simulate(profile, Schedule("throughput", assign, frames_in_flight=depth))
    assert result.predicted_ms == pytest.approx(expected)
    assert predict_ms(profile, assign, "throughput", depth) == pytest.approx(expected)
    assert result.frame_set_finish_ms[:4] == pytest.approx(
        [2.0, 4.0, 6.0, 8.0] if depth == 1 else [2.0, 3.0, 4.0, 5.0])


def test_release_at_a_finish_ties_go_to_the_earlier_frame_set():
    # D = 1, one DNN a: g0 gpu 1, g1 gpu 1 ... and b: gpu 0.5. Frame-set 0: gpu runs a.g0 0-1
    # (a listed first), then b (ready 0) 1-1.5, then a.g1 (ready 1) 1.5-2.5: C[0] = 2.5.
    # Frame-set 1 released at 2.5: same again, so 2.5 ms per frame-set.
    profile = _flat_profile({"a": [group({"gpu": 1.0}), group({"gpu": 1.0})],
                             "b": [group({"gpu": 0.5})]})
    assign = {"a": ("gpu", "gpu"), "b": ("gpu",)}
    assert predict_ms(profile, assign, "throughput", 1) == pytest.approx(2.5)
    # D = 2: the gpu never idles (everything runs on it): 2.5 ms per frame-set too.
    assert predict_ms(profile, assign, "throughput", 2) == pytest.approx(2.5)


def test_frame_sets_after_the_measured_window_are_released_and_compete():
    # One DNN: g0 dla 1, g1 gpu 1; any overlap doubles both (constant curves s = 2). D = 2.
    # 0-1: f0.g0 alone. 1-3: f0.g1 (gpu) and f1.g0 (dla) together at S = 2; C[0] = 3, f2 is
    # released at 3: f1.g1 and f2.g0 overlap 3-5; C[1] = 5; so C[k] = 3 + 2k.
    # D = 2: W = 16, M = 64 (version 1.1). Frame-set 80 (past W + M = 80) is released at
    # C[78] = 159 and overlaps f79.g1, so C[79] = 161 and predicted = (161 - C[15] = 33) / 64
    # = 2.0. If only frame-sets 0..79 existed, f79.g1 would run alone 159-160: (160 - 33) / 64
    # = 127 / 64 (spec: frame-sets stream, and the release rule holds for every k).
    profile = make_profile({"a": [group({"dla": 1.0}), group({"gpu": 1.0})]},
                           curves={"gpu": [[0.0, 2.0]], "dla": [[0.0, 2.0]]})
    assign = {"a": ("dla", "gpu")}
    result = simulate(profile, Schedule("throughput", assign, frames_in_flight=2))
    assert result.frame_set_finish_ms[:3] == pytest.approx([3.0, 5.0, 7.0])
    assert len(result.frame_set_finish_ms) == 80
    assert result.frame_set_finish_ms[79] == pytest.approx(161.0)
    assert result.predicted_ms == pytest.approx(2.0)
    assert predict_ms(profile, assign, "throughput", 2) == pytest.approx(2.0)
    finite = reference_simulate(profile, assign, "throughput", 2, stream=False)
    assert finite.predicted == Fraction(127, 64)  # the reading we do not take


# --- property tests against the reference ----------------------------------------------------

_quarters = st.integers(min_value=1, max_value=8).map(lambda x: x / 4.0)  # 0.25 .. 2 ms
_delays = st.sampled_from([0.0, 0.0, 0.25, 0.5, 1.0])
_demands = st.integers(min_value=0, max_value=4).map(lambda x: 25.0 * x)  # quarters of peak


@st.composite
def _grid_curves(draw, dyadic: bool):
    """A curve with breakpoints on u in quarters; dyadic: s in {1, 2, 4} (exact in floats)."""
    us = sorted(draw(st.sets(st.integers(min_value=0, max_value=12), min_size=1, max_size=4)))
    if dyadic:
        ss = sorted(draw(st.lists(st.sampled_from([1.0, 2.0, 4.0]), min_size=len(us),
                                  max_size=len(us))))
    else:
        ss = [draw(st.integers(min_value=4, max_value=12)) / 4.0 for _ in us]
    return [[u / 4.0, s] for u, s in zip(us, ss)]


@st.composite
def grid_instances(draw):
    """(profile, assignments): 2-3 DNNs of 1-5 groups, 2-3 accelerators, values on a grid."""
    accs = draw(st.sampled_from([ACCS_2, ACCS_3]))
    dyadic = draw(st.booleans())
    dnns = {}
    for d in range(draw(st.integers(min_value=2, max_value=3))):
        groups = []
        for _ in range(draw(st.integers(min_value=1, max_value=5))):
            groups.append(group({a: draw(_quarters) for a in accs},
                                {a: draw(_demands) for a in accs},
                                {a: draw(_delays) for a in accs}))
        dnns[f"dnn{d}"] = groups
    profile = make_profile(dnns, accelerators=accs,
                           curves={a: draw(_grid_curves(dyadic)) for a in accs})
    return profile, draw(assignments_for(profile))


@st.composite
def random_instances(draw):
    """(profile, assignments) from the shared strategies: arbitrary times and curves."""
    accs = draw(st.sampled_from([ACCS_2, ACCS_3]))
    profile = draw(small_profiles(min_groups=1, accelerators=accs))
    return profile, draw(assignments_for(profile))


def _check(profile, assign):
    ref = reference_simulate(profile, assign)
    result = simulate(profile, Schedule("latency", assign))
    assert _close(result.predicted_ms, ref.predicted), (result.predicted_ms, ref.predicted)
    assert _close(predict_ms(profile, assign), ref.predicted)
    ours = {(r.dnn, r.group): (r.accelerator, r.start_ms, r.finish_ms) for r in result.runs}
    for run in ref.runs:
        acc, start, finish = ours[(run.dnn, run.group)]
        assert acc == run.accelerator
        assert _close(start, run.start) and _close(finish, run.finish), (run, start, finish)
    for depth in (1, 2, 3):
        ref = reference_simulate(profile, assign, "throughput", depth)
        result = simulate(profile, Schedule("throughput", assign, frames_in_flight=depth))
        assert _close(result.predicted_ms, ref.predicted, THROUGHPUT_REL), (
            depth, result.predicted_ms, float(ref.predicted))
        assert _close(predict_ms(profile, assign, "throughput", depth), ref.predicted,
                      THROUGHPUT_REL)
        n = min(len(result.frame_set_finish_ms), len(ref.frame_set_finish))
        for k in range(n):
            assert _close(result.frame_set_finish_ms[k], ref.frame_set_finish[k],
                          THROUGHPUT_REL), (depth, k)
        # contention off: standalone times, same ordering rules.
        ref_off = reference_simulate(profile, assign, "throughput", depth, contention=False)
        assert _close(predict_ms(profile, assign, "throughput", depth, contention=False),
                      ref_off.predicted, THROUGHPUT_REL)


def _settings(examples):
    return settings(derandomize=True, deadline=None, max_examples=examples,
                    suppress_health_check=[HealthCheck.too_slow])


@_settings(150)
@given(grid_instances())
def test_matches_reference_on_grid_instances_with_ties(instance):
    _check(*instance)


@_settings(60)
@given(random_instances())
def test_matches_reference_on_random_instances(instance):
    _check(*instance)

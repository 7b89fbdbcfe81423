"""The predicted wall times the refinement steers Z3 with (planner/estimate.py)."""

import pytest
from hypothesis import given, HealthCheck, settings, strategies as st

from hax_conn_core.planner.estimate import calibrated_wall_ms, standalone_ms
from hax_conn_core.schedule import Schedule
from hax_conn_core.simulator import simulate
from test.core.strategies import assignments_for, group, make_profile, small_profiles

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(data=st.data(), profile=small_profiles(),
       objective=st.sampled_from(["latency", "throughput"]))
def test_prediction_of_the_calibration_schedule_is_its_simulated_busy_time(
        data, profile, objective):
    # Calibrated on a schedule, the prediction reproduces that schedule's simulated busy time
    # on every accelerator (per frame-set), whatever the overlap was.
    assignment = data.draw(assignments_for(profile))
    names = list(profile.dnns)
    wall = calibrated_wall_ms(profile, names, assignment, objective, 2)
    runs = simulate(profile, Schedule(objective=objective, assignments=assignment)).runs
    frames = len({r.frame for r in runs})
    for acc in profile.device.accelerators:
        simulated = sum(r.finish_ms - r.start_ms for r in runs if r.accelerator == acc)
        predicted = sum(wall[((n, i), acc)] for n, name in enumerate(names)
                        for i, a in enumerate(assignment[name]) if a == acc)
        assert predicted * frames == pytest.approx(simulated, rel=1e-9, abs=1e-9)
    # Every group gets a prediction on every accelerator it can run on, and only there.
    assert set(wall) == set(standalone_ms(profile, names))


HEAVY = {"gpu": 60.0, "dla": 60.0}
LIGHT = {"gpu": 5.0, "dla": 5.0}


def test_heavier_groups_are_predicted_slower_beside_the_same_partner():
    # a runs on the GPU beside b on the DLA; the calibration then predicts c's groups: the one
    # with the larger DRAM demand is slowed more (same standalone time).
    profile = make_profile({
        "a": [group({"gpu": 2.0, "dla": 4.0}, HEAVY)],
        "b": [group({"gpu": 2.0, "dla": 2.0}, HEAVY)],
        "c": [group({"gpu": 1.0, "dla": 1.0}, HEAVY), group({"gpu": 1.0, "dla": 1.0}, LIGHT)],
    })
    names = list(profile.dnns)
    wall = calibrated_wall_ms(profile, names, {"a": ("gpu",), "b": ("dla",),
                                               "c": ("gpu", "gpu")}, "latency", 2)
    assert wall[((2, 0), "gpu")] > wall[((2, 1), "gpu")]
    assert wall[((2, 0), "dla")] > wall[((2, 1), "dla")]


def test_no_overlap_predicts_standalone_times():
    profile = make_profile({"a": [group({"gpu": 1.0, "dla": 2.0}, HEAVY)] * 2,
                            "b": [group({"gpu": 1.0, "dla": 2.0}, HEAVY)]})
    names = list(profile.dnns)
    gpu_only = {"a": ("gpu", "gpu"), "b": ("gpu",)}
    assert calibrated_wall_ms(profile, names, gpu_only, "latency", 2) == \
        standalone_ms(profile, names)


def test_other_than_two_accelerators_predicts_standalone_times():
    accs = ("gpu", "dla0", "dla1")
    times = {"gpu": 1.0, "dla0": 2.0, "dla1": 2.0}
    profile = make_profile({"a": [group(times, {a: 50.0 for a in accs})],
                            "b": [group(times, {a: 50.0 for a in accs})]},
                           accelerators=accs)
    names = list(profile.dnns)
    wall = calibrated_wall_ms(profile, names, {"a": ("gpu",), "b": ("dla0",)}, "latency", 2)
    assert wall == standalone_ms(profile, names)


def test_prediction_worked_out_by_hand():
    # Curves S = 1 + u (peak 100 GB/s). Simulated: a (GPU, 2 ms, 40 GB/s) and b (DLA, 1 ms,
    # 20 GB/s) start together, u = 0.6, both at S = 1.6: b ends at 1.6 ms having slowed a,
    # which has 1 ms of work left and ends alone at 2.6 ms; then c (GPU, 1 ms) runs alone to
    # 3.6 ms. GPU: busy 3.6 ms, 1.6 ms of it beside b (phi = 4/9), partner demand 20 GB/s.
    # DLA: busy 1.6 ms, all of it beside a (phi = 1), partner demand 40 GB/s.
    profile = make_profile({
        "a": [group({"gpu": 2.0, "dla": 3.0}, {"gpu": 40.0, "dla": 10.0})],
        "b": [group({"gpu": 1.0, "dla": 1.0}, {"gpu": 20.0, "dla": 20.0})],
        "c": [group({"gpu": 1.0, "dla": 1.0}, {"gpu": 10.0, "dla": 30.0})],
    })
    wall = calibrated_wall_ms(profile, list(profile.dnns),
                              {"a": ("gpu",), "b": ("dla",), "c": ("gpu",)}, "latency", 2)

    def stretch(phi, s):  # wall / work for a group slowed by s during a share phi of its run
        return 1.0 / ((1.0 - phi) + phi / s)

    phi = 1.6 / 3.6
    gpu_scale = 3.6 / (2.0 * stretch(phi, 1.6) + 1.0 * stretch(phi, 1.0 + (10 + 20) / 100))
    assert wall[((2, 0), "gpu")] == pytest.approx(stretch(phi, 1.3) * gpu_scale)
    assert wall[((0, 0), "gpu")] == pytest.approx(2.0 * stretch(phi, 1.6) * gpu_scale)
    assert wall[((1, 0), "gpu")] == pytest.approx(1.0 * stretch(phi, 1.4) * gpu_scale)
    # DLA: phi = 1, partner demand 40, scale 1.6 / (1 * 1.6) = 1.
    assert wall[((2, 0), "dla")] == pytest.approx(1.0 + (30 + 40) / 100)
    assert wall[((0, 0), "dla")] == pytest.approx(3.0 * (1.0 + (10 + 40) / 100))
    assert wall[((1, 0), "dla")] == pytest.approx(1.6)

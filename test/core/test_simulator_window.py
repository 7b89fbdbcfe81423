"""The throughput window of docs/timing-model.md version 1.1, and the bounds it must respect.

``W = 8 D`` warm-up and ``M = 32 D`` measured frame-sets for ``D`` frame-sets in flight, ``D``
an integer from 1 to 16 (anything else is refused, naming the value and the range). The figure
is never below the busiest accelerator's own work per frame-set: with a fixed ``W = 8,
M = 32`` it was (40 in flight: 0.2 ms per frame-set for a schedule whose GPU work is 3.5 ms).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, HealthCheck, settings, strategies as st

from hax_conn_core.errors import ScheduleError
from hax_conn_core.profile import load_profile
from hax_conn_core.schedule import Schedule
from hax_conn_core.simulator import (lockstep_orders, MAX_FRAMES_IN_FLIGHT, predict_ms,
                                     simulate, window)
from test.core.reference_simulator import reference_simulate
from test.core.strategies import assignments_for, group, make_profile, small_profiles

REPO = Path(__file__).resolve().parents[2]
HAX_CONN = str(Path(sys.executable).with_name("hax-conn"))
SHIPPED = REPO / "profiles" / "xavier_googlenet_alexnet.json"

ALL_DEPTHS = list(range(1, MAX_FRAMES_IN_FLIGHT + 1))
BAD_DEPTHS = [0, -1, 17, 24, 40, 100000, True, 2.0, "2", None]


def busiest_work_ms(profile, assignment) -> float:
    """The largest, over accelerators, sum of the standalone times of the groups on it: the
    least time per frame-set any stream can take (each accelerator runs one group at a time,
    and contention only slows groups down)."""
    work = {}
    for name, accs in assignment.items():
        for acc, g in zip(accs, profile.dnns[name].groups):
            work[acc] = work.get(acc, 0.0) + g.time_ms[acc]
    return max(work.values())


@pytest.mark.parametrize("depth", ALL_DEPTHS)
def test_window_scales_with_frames_in_flight(depth):
    profile = make_profile({"a": [group({"gpu": 1.0, "dla": 1.0}), group({"gpu": 1.0,
                                                                          "dla": 1.0})]})
    result = simulate(profile, Schedule("throughput", {"a": ("gpu", "dla")},
                                        frames_in_flight=depth))
    assert window(depth) == (8 * depth, 32 * depth)
    assert len(result.frame_set_finish_ms) == 40 * depth
    # A two-stage pipeline: 2 ms per frame-set alone, 1 ms (the GPU's work) once pipelined.
    assert result.predicted_ms == pytest.approx(2.0 if depth == 1 else 1.0)


@pytest.mark.parametrize("depth", BAD_DEPTHS)
def test_frames_in_flight_outside_1_to_16_is_refused(depth):
    profile = make_profile({"a": [group({"gpu": 1.0})]})
    expected = rf"frames_in_flight: expected an integer from 1 to 16, found {depth!r}"
    with pytest.raises(ScheduleError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        predict_ms(profile, {"a": ("gpu",)}, "throughput", depth)
    with pytest.raises(ScheduleError, match="expected an integer from 1 to 16"):
        simulate(profile, Schedule("throughput", {"a": ("gpu",)}, frames_in_flight=depth))
    with pytest.raises(ScheduleError, match="expected an integer from 1 to 16"):
        lockstep_orders(profile, Schedule("throughput", {"a": ("gpu",)},
                                          frames_in_flight=depth), 3)
    with pytest.raises(ValueError):
        if isinstance(depth, int) and not isinstance(depth, bool):
            reference_simulate(profile, {"a": ("gpu",)}, "throughput", depth)
        else:
            raise ValueError("not an integer: the reference takes only integers")


_SETTINGS = settings(max_examples=40, derandomize=True, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(st.data())
def test_throughput_is_never_below_the_busiest_accelerators_work(data):
    profile = data.draw(small_profiles(max_dnns=4))
    assignment = data.draw(assignments_for(profile))
    depth = data.draw(st.sampled_from(ALL_DEPTHS))
    floor = busiest_work_ms(profile, assignment)
    for contention in (True, False):
        ms = predict_ms(profile, assignment, "throughput", depth, contention)
        assert ms >= floor * (1.0 - 1e-9), (depth, contention, ms, floor)


@pytest.mark.parametrize("depth", ALL_DEPTHS)
def test_shipped_profile_every_depth_and_every_baseline(depth):
    from hax_conn_core.baselines import all_baselines

    profile = load_profile(SHIPPED)
    for baseline in all_baselines(profile, "throughput", depth):
        assignment = baseline.schedule.assignments
        floor = busiest_work_ms(profile, assignment)
        assert baseline.schedule.predicted_ms >= floor * (1.0 - 1e-9), (baseline.name, depth)
        # simulate and predict_ms agree on the longer window too.
        assert simulate(profile, baseline.schedule).predicted_ms == pytest.approx(
            baseline.schedule.predicted_ms, rel=1e-6)


@pytest.mark.parametrize("depth", [1, 2, 5, 8, 16])
def test_reference_agrees_on_long_windows(depth):
    # A three-stage pipeline with contention and a transition delay; exact reference.
    profile = make_profile({
        "a": [group({"gpu": 1.0, "dla": 1.5}, {"gpu": 40.0, "dla": 30.0},
                    {"gpu": 0.25, "dla": 0.25}), group({"dla": 1.5}, {"dla": 30.0}),
              group({"gpu": 0.5})],
        "b": [group({"gpu": 0.75, "dla": 2.0}, {"gpu": 50.0, "dla": 20.0})]})
    assign = {"a": ("gpu", "dla", "gpu"), "b": ("gpu",)}
    ref = reference_simulate(profile, assign, "throughput", depth)
    assert len(ref.frame_set_finish) == 40 * depth
    ours = predict_ms(profile, assign, "throughput", depth)
    assert ours == pytest.approx(float(ref.predicted), rel=1e-6)
    assert simulate(profile, Schedule("throughput", assign, frames_in_flight=depth)
                    ).predicted_ms == pytest.approx(float(ref.predicted), rel=1e-6)
    assert ours >= busiest_work_ms(profile, assign) * (1.0 - 1e-9)


# --- through the real command ----------------------------------------------------------------

def _run(*args):
    return subprocess.run([HAX_CONN, *args], capture_output=True, text=True, timeout=600,
                          cwd=REPO)


@pytest.mark.parametrize("depth", [1, 2, 3, 8, 16])
def test_plan_throughput_is_never_below_the_busiest_accelerator(depth, tmp_path):
    out = tmp_path / "s.json"
    done = _run("plan", "--profile", str(SHIPPED), "--objective", "throughput",
                "--frames-in-flight", str(depth), "--output", str(out), "--json")
    assert done.returncode == 0, done.stderr
    schedule = json.loads(out.read_text())
    profile = load_profile(SHIPPED)
    assignment = {n: tuple(d["assignment"]) for n, d in schedule["dnns"].items()}
    floor = busiest_work_ms(profile, assignment)
    assert schedule["frames_in_flight"] == depth
    assert schedule["predicted_ms"] >= floor * (1.0 - 1e-9)
    # hax-conn simulate reads the same schedule back and predicts the same figure.
    sim = _run("simulate", "--profile", str(SHIPPED), "--schedule", str(out), "--json")
    assert sim.returncode == 0, sim.stderr
    report = json.loads(sim.stdout)
    assert report["predicted_ms"] == pytest.approx(schedule["predicted_ms"], rel=1e-6)
    assert len(report["frame_set_finish_ms"]) == 40 * depth


@pytest.mark.parametrize("depth", ["0", "17", "24", "40", "100000", "-3"])
def test_plan_refuses_frames_in_flight_outside_the_range(depth):
    done = _run("plan", "--profile", str(SHIPPED), "--objective", "throughput",
                "--frames-in-flight", depth)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "1 to 16" in lines[0] and depth in lines[0], lines[0]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("depth", [0, 17, 40, 100000])
def test_simulate_refuses_a_schedule_with_frames_in_flight_outside_the_range(depth, tmp_path):
    schedule = {"format": "hax-conn-schedule/1", "objective": "throughput",
                "frames_in_flight": depth,
                "dnns": {"googlenet": {"assignment": ["gpu"] * 10},
                         "alexnet": {"assignment": ["gpu"] * 8}}}
    path = tmp_path / "s.json"
    path.write_text(json.dumps(schedule))
    done = _run("simulate", "--profile", str(SHIPPED), "--schedule", str(path))
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "frames_in_flight" in lines[0] and str(depth) in lines[0], lines[0]
    assert "Traceback" not in done.stderr

"""validation.predict: both figures of a schedule, with the contention model and without."""

import pytest
from hypothesis import given, settings

from hax_conn_core.schedule import Schedule
from hax_conn_core.simulator import simulate
from hax_conn_core.validation.predict import predict
from test.core.strategies import assignments_for, group, make_profile, small_profiles

FLAT = [[0.0, 1.0], [1.0, 1.0]]
STEEP = [[0.0, 1.0], [1.0, 3.0]]
# a: GPU then DLA, b: GPU only; both move a lot of bytes, so contention matters.
DNNS = {"a": [group({"gpu": 2.0, "dla": 4.0}, {"gpu": 60.0, "dla": 50.0}),
              group({"gpu": 3.0, "dla": 2.0}, {"gpu": 60.0, "dla": 50.0})],
        "b": [group({"gpu": 3.0}, {"gpu": 70.0})] * 2}
SPLIT = {"a": ("dla", "dla"), "b": ("gpu", "gpu")}


def test_latency_mode_gives_the_simulated_latency_for_both_figures():
    profile = make_profile(DNNS, curves={"gpu": STEEP, "dla": STEEP})
    schedule = Schedule("latency", SPLIT)
    p = predict(profile, schedule)
    assert p.latency_ms == simulate(profile, schedule).predicted_ms
    assert p.ms_per_frame_set == p.latency_ms
    assert p.frame_sets_per_s == pytest.approx(1e3 / p.latency_ms)


def test_without_contention_is_the_simulation_on_flat_curves():
    steep = make_profile(DNNS, curves={"gpu": STEEP, "dla": STEEP})
    flat = make_profile(DNNS, curves={"gpu": FLAT, "dla": FLAT})
    for objective in ("latency", "throughput"):
        schedule = Schedule(objective, SPLIT)
        assert predict(steep, schedule, contention=False) == predict(flat, schedule)
        # the DNNs overlap and move bytes: the model must make a difference here
        assert predict(steep, schedule).objective_ms(objective) > \
            predict(flat, schedule).objective_ms(objective)


def test_throughput_latency_is_the_time_a_frame_set_holds_its_slot():
    # Everything on one accelerator: frame-sets run one after another, so each holds its slot
    # for D periods of the whole work.
    profile = make_profile(DNNS, curves={"gpu": STEEP, "dla": STEEP})
    work = 2.0 + 3.0 + 3.0 + 3.0
    for d in (1, 2, 3):
        p = predict(profile, Schedule("throughput", {"a": ("gpu", "gpu"), "b": ("gpu", "gpu")},
                                      frames_in_flight=d))
        assert p.ms_per_frame_set == pytest.approx(work)
        assert p.latency_ms == pytest.approx(d * work)


@settings(max_examples=30, deadline=None)
@given(data=small_profiles().flatmap(lambda p: assignments_for(p).map(lambda a: (p, a))))
def test_throughput_figures_are_within_the_stream_bounds(data):
    profile, assignment = data
    schedule = Schedule("throughput", assignment, frames_in_flight=2)
    p = predict(profile, schedule)
    assert p.ms_per_frame_set == simulate(profile, schedule).predicted_ms
    # a frame-set holds its slot at least as long as its longest DNN chain takes alone (every
    # group at slowdown >= 1, plus the transitions it makes)
    chains = []
    for name, accs in assignment.items():
        groups = profile.dnns[name].groups
        chains.append(sum(g.time_ms[a] for g, a in zip(groups, accs))
                      + sum(g.transition_ms[a] for g, a, b in zip(groups, accs, accs[1:])
                            if a != b))
    assert p.latency_ms >= max(chains) - 1e-9

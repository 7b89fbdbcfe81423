"""Run plans: segments (groups run back to back as one engine) are exactly those the lockstep
order allows, and a fused run gives the outputs and order of one engine per group."""

import random

import numpy as np
import pytest

from hax_conn_core.runtime.backends.onnxrt import OnnxRuntimeBackend
from hax_conn_core.runtime.measure import seeded_frames
from hax_conn_core.runtime.plan import build_run_plan, fused_segments, segment_steps
from hax_conn_core.runtime.session import Runtime
from hax_conn_core.schedule import Schedule
from test.core.runtime.helpers import profile_for, tiny_model
from test.core.runtime.test_session import TINY, UNFUSED


def test_fused_segments_join_only_groups_run_back_to_back_in_every_frame_set():
    assignments = {"a": ("gpu", "gpu", "gpu", "dla", "dla"), "b": ("gpu", "gpu")}
    orders = {
        # frame-set 0: a0 a1 a2 b0 b1; frame-set 1: a0 b0 a1 a2 b1 (b0 splits a's 0-1)
        "gpu": [(0, "a", 0), (0, "a", 1), (0, "a", 2), (0, "b", 0), (0, "b", 1),
                (1, "a", 0), (1, "b", 0), (1, "a", 1), (1, "a", 2), (1, "b", 1)],
        "dla": [(0, "a", 3), (0, "a", 4), (1, "a", 3), (1, "a", 4)],
    }
    segments = fused_segments(orders, assignments)
    assert segments == {"a": [(0, 0), (1, 2), (3, 4)], "b": [(0, 0), (1, 1)]}
    steps = segment_steps(orders, segments)
    assert steps["dla"] == [(0, "a", 2), (1, "a", 2)]
    assert steps["gpu"][:4] == [(0, "a", 0), (0, "a", 1), (0, "b", 0), (0, "b", 1)]


def test_an_accelerator_change_always_cuts():
    orders = {"gpu": [(0, "a", 0), (0, "a", 2)], "dla": [(0, "a", 1)]}
    assert fused_segments(orders, {"a": ("gpu", "dla", "gpu")}) == {"a": [(0, 0), (1, 1),
                                                                          (2, 2)]}


@pytest.mark.parametrize("case", range(8))
def test_segments_are_the_longest_runs_the_order_keeps_together(case):
    """Random schedules of the runtime tests' tiny DNNs, both objectives, D 1-3: each
    segment's groups run consecutively in every frame-set, and every cut between segments
    has a reason (another accelerator, or another step between them in some frame-set)."""
    rng = random.Random(case)
    names = rng.sample(sorted(TINY), 2 + case % 2)
    models = {name: tiny_model(name, TINY[name], seed=case) for name in names}
    profile = profile_for(models, seed=case)
    assignments = {}
    for name in names:
        accs = [rng.choice(("gpu", "dla"))]
        for _ in range(len(profile.dnns[name].groups) - 1):
            accs.append(accs[-1] if rng.random() < 0.7 else
                        ("dla" if accs[-1] == "gpu" else "gpu"))
        assignments[name] = tuple(accs)
    schedule = Schedule(("latency", "throughput")[case % 2], assignments,
                        frames_in_flight=1 + case % 3, max_transitions=20)
    with OnnxRuntimeBackend(device=UNFUSED) as backend:
        plan = build_run_plan(backend, profile, schedule, models, epoch_frame_sets=12)
        where = {}
        for acc, order in plan.orders.items():
            for at, (local, dnn, group) in enumerate(order):
                where[(local, dnn, group)] = (acc, at)
        frame_sets = {local for local, _, _ in plan.orders["gpu"] + plan.orders["dla"]}
        for dnn, spans in plan.segments.items():
            assert spans[0][0] == 0 and spans[-1][1] == len(assignments[dnn]) - 1
            for (_, last), (first, _) in zip(spans, spans[1:]):
                assert first == last + 1
                apart = assignments[dnn][first] != assignments[dnn][last] or any(
                    where[(f, dnn, first)][1] != where[(f, dnn, last)][1] + 1
                    for f in frame_sets)
                assert apart, (dnn, last, first)
            for first, last in spans:
                for f in frame_sets:
                    accs_at = {where[(f, dnn, g)] for g in range(first, last + 1)}
                    assert len({a for a, _ in accs_at}) == 1
                    positions = sorted(at for _, at in accs_at)
                    assert positions == list(range(positions[0], positions[0] + len(positions)))
        assert len(plan.engines) == sum(len(s) for s in plan.segments.values())


def test_a_dnn_alone_on_its_accelerator_runs_as_one_engine_with_the_same_outputs():
    """Each DNN on its own accelerator: nothing comes between its groups, so each is one
    engine (one timing spanning all its groups), with the outputs of one engine per group.
    (Two DNNs on one accelerator interleave group by group: the simulator starts the group
    that became ready first, docs/timing-model.md, so those stay one engine per group.)"""
    models = {name: tiny_model(name, TINY[name]) for name in ("chain", "residual")}
    profile = profile_for(models)
    schedule = Schedule("latency", {name: (acc,) * len(profile.dnns[name].groups)
                                    for name, acc in zip(models, ("gpu", "dla"))})
    frames = list(seeded_frames(models, 3, 1))
    outputs, timings = {}, {}
    with OnnxRuntimeBackend(device=UNFUSED) as backend:
        for fuse in (True, False):
            with Runtime(backend, profile, schedule, models, fuse_groups=fuse) as runtime:
                results = runtime.run(frames)
                assert all(r.ok for r in results), [r.results for r in results]
                if fuse:
                    assert all(len(s) == 1 for s in runtime.plan.segments.values())
                outputs[fuse] = [r.results for r in results]
                timings[fuse] = [(t.dnn, t.group, t.last_group) for t in results[0].timings]
    for name in models:
        groups = len(profile.dnns[name].groups)
        assert (name, 0, groups - 1) in timings[True]
        alone = [t for t in timings[False] if t[0] == name]
        assert alone == [(name, g, g) for g in range(groups)]
    for fused, single in zip(outputs[True], outputs[False]):
        for name in models:
            for key, value in single[name].outputs.items():
                assert float(np.abs(fused[name].outputs[key] - value).max()) <= 1e-4

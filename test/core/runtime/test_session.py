"""The runtime on the onnxruntime backend: split runs equal the whole model, the executors
follow the simulator's order, swaps lose nothing, and faults stay in their frame."""

import os
import random
import threading

import numpy as np
import pytest

from hax_conn_core.errors import BackendError
from hax_conn_core.graph.onnx_export import export
from hax_conn_core.models import known_ids
from hax_conn_core.runtime.backends.onnxrt import OnnxRunner, OnnxRuntimeBackend
from hax_conn_core.runtime.device import RuntimeDevice
from hax_conn_core.runtime.measure import seeded_frames
from hax_conn_core.runtime.models import load_model
from hax_conn_core.runtime.session import Runtime
from hax_conn_core.schedule import Schedule
from hax_conn_core.simulator import lockstep_orders
from test.core.graph import nets
from test.core.runtime.helpers import profile_for, tiny_model

ALL = bool(os.environ.get("HAX_CONN_TEST_ALL"))
#: Basic optimisation for parts and whole alike, so that a split adds no arithmetic
#: (docs/execution.md: fused kernels alone move ResNet-152's probabilities by 4e-4).
UNFUSED = RuntimeDevice(id="cpu-unfused", accelerators=("gpu", "dla"), runtime={
    "onnxruntime": {"gpu": {"threads": 1, "optimize": False},
                    "dla": {"threads": 1, "optimize": False}}})
TOLERANCE = 1e-4


def whole_outputs(model, frames):
    runner = OnnxRunner(export(model.graph, model.weights), optimize=False)
    return [runner.run({model.input_name: f[model.name]}) for f in frames]


def check_equal_to_whole(models, results, frames):
    for name, model in models.items():
        expected = whole_outputs(model, frames)
        for result, reference in zip(results, expected):
            got = result.results[name]
            assert got.ok, got.error
            for key, value in reference.items():
                diff = float(np.abs(got.outputs[key] - value).max())
                assert diff <= TOLERANCE, (name, result.index, key, diff)


def alternating(groups: int, start: str):
    other = {"gpu": "dla", "dla": "gpu"}
    accs, acc = [], start
    for _ in range(groups):
        accs.append(acc)
        acc = other[acc]
    return tuple(accs)


def run(models, profile, schedule, frame_sets, device=UNFUSED, seed=0):
    frames = list(seeded_frames(models, frame_sets, seed))
    with OnnxRuntimeBackend(device=device) as backend, \
            Runtime(backend, profile, schedule, models) as runtime:
        results = runtime.run(frames)
        orders = {a: runtime.executed_order(a) for a in backend.accelerators}
    return frames, results, orders


CI_PAIRS = [("alexnet", "googlenet"), ("resnet18", "mobilenet_v1")]
ALL_PAIRS = list(zip(known_ids()[0::2], known_ids()[1::2]))


@pytest.mark.parametrize("pair", ALL_PAIRS if ALL else CI_PAIRS, ids="+".join)
def test_every_group_boundary_split_equals_the_whole(pair):
    """Each DNN changes accelerator at every group boundary, so one run crosses them all;
    three frame-sets with distinct frames, both objectives."""
    models = {name: load_model(name) for name in pair}
    profile = profile_for(models)
    assignments = {pair[0]: alternating(len(profile.dnns[pair[0]].groups), "gpu"),
                   pair[1]: alternating(len(profile.dnns[pair[1]].groups), "dla")}
    for objective in ("latency", "throughput"):
        schedule = Schedule(objective, assignments, frames_in_flight=2)
        frames, results, _ = run(models, profile, schedule, 3)
        assert [r.index for r in results] == [0, 1, 2]
        check_equal_to_whole(models, results, frames)


@pytest.mark.parametrize("pair", CI_PAIRS, ids="+".join)
def test_seeded_sample_of_single_transition_splits(pair):
    models = {name: load_model(name) for name in pair}
    profile = profile_for(models)
    rng = random.Random(hash(pair) & 0xFFFF)
    for _ in range(2):
        assignments = {}
        for name in pair:
            n = len(profile.dnns[name].groups)
            cut = rng.randrange(1, n)
            first = rng.choice(("gpu", "dla"))
            second = "dla" if first == "gpu" else "gpu"
            assignments[name] = (first,) * cut + (second,) * (n - cut)
        frames, results, _ = run(models, profile, Schedule("latency", assignments), 2,
                                 seed=rng.randrange(100))
        check_equal_to_whole(models, results, frames)


TINY = {"chain": nets.CHAIN, "residual": nets.RESIDUAL + nets.layer(
    "prob", "Softmax", ["head"], ["prob"]), "branches": nets.BRANCHES}


@pytest.mark.parametrize("case", range(12))
def test_executors_run_groups_in_the_predicted_order(case):
    """Random profiles and schedules of 2 and 3 DNNs, both objectives, 1-3 frame-sets in
    flight: each executor's order is the simulator's, and every output is the whole model's."""
    rng = random.Random(case)
    names = rng.sample(sorted(TINY), 2 + case % 2)
    models = {name: tiny_model(name, TINY[name], seed=case) for name in names}
    profile = profile_for(models, seed=case)
    assignments = {}
    for name in names:
        n = len(profile.dnns[name].groups)
        accs = [rng.choice(("gpu", "dla"))]
        for _ in range(n - 1):
            accs.append(accs[-1] if rng.random() < 0.6 else
                        ("dla" if accs[-1] == "gpu" else "gpu"))
        assignments[name] = tuple(accs)
    objective = ("latency", "throughput")[case % 2 == 0]
    schedule = Schedule(objective, assignments, frames_in_flight=1 + case % 3,
                        max_transitions=len(profile.dnns[names[0]].groups))
    frames, results, orders = run(models, profile, schedule, 5, seed=case)
    expected = lockstep_orders(profile, schedule, 5)
    assert orders == expected
    check_equal_to_whole(models, results, frames)


def test_a_swap_under_a_stream_of_frames_loses_and_mixes_nothing():
    models = {name: tiny_model(name, TINY[name]) for name in TINY}
    profile = profile_for(models, seed=3)
    first = Schedule("throughput", {"chain": ("gpu",) * len(profile.dnns["chain"].groups),
                                    "residual": ("dla",) * len(
        profile.dnns["residual"].groups)}, frames_in_flight=2)
    second_names = ("branches", "chain")
    second = Schedule("latency", {
        "branches": alternating(len(profile.dnns["branches"].groups), "dla"),
        "chain": alternating(len(profile.dnns["chain"].groups), "gpu")})
    count = 80
    frames = list(seeded_frames(models, count, seed=9))
    results, swapped_at = [], []
    with OnnxRuntimeBackend(device=UNFUSED) as backend, \
            Runtime(backend, profile, first, models, on_result=results.append) as runtime:
        def stream():
            for frame_set in frames:
                runtime.submit(frame_set)
                threading.Event().wait(0.01)  # a camera's pace: the swap lands mid-stream

        feeder = threading.Thread(target=stream)
        feeder.start()
        while runtime.completed < 10:
            threading.Event().wait(0.01)
        swapped_at.append(runtime.swap(second))
        feeder.join(60)
        runtime.drain(60)
    assert sorted(r.index for r in results) == list(range(count))
    start = swapped_at[0]
    assert 10 <= start < count
    for result in results:
        if result.index < start:
            assert result.schedule_id == 0
            assert set(n for n, r in result.results.items() if r.ok) == {"chain", "residual"}
            # branches has a frame but is not in the first schedule: refused, only that DNN
            assert "not in the current schedule" in result.results["branches"].error
        else:
            assert result.schedule_id == 1
            assert set(n for n, r in result.results.items() if r.ok) == set(second_names)
    for name, model in models.items():
        reference = whole_outputs(model, frames)
        for result in results:
            got = result.results[name]
            if got.ok:
                for key, value in reference[result.index].items():
                    np.testing.assert_allclose(got.outputs[key], value, atol=TOLERANCE)


def test_a_bad_frame_fails_only_its_dnn():
    models = {name: tiny_model(name, TINY[name]) for name in ("chain", "branches")}
    profile = profile_for(models)
    schedule = Schedule("latency", {"chain": ("gpu",) * len(profile.dnns["chain"].groups),
                                    "branches": ("dla",) * len(profile.dnns["branches"].groups)})
    good = next(seeded_frames(models, 1))
    bad_frames = [np.zeros((1, 3, 9, 9), np.float32), good["chain"].astype(np.float64),
                  good["chain"].tolist(), np.zeros((3, 8, 8), np.float32)]
    with OnnxRuntimeBackend() as backend, Runtime(backend, profile, schedule, models) as runtime:
        for bad in bad_frames:
            runtime.submit({"chain": bad, "branches": good["branches"]})
            result = runtime.get_result(30)
            assert result.results["branches"].ok
            error = result.results["chain"].error
            assert "chain" in error and "(1, 3, 8, 8)" in error and "float32" in error
        runtime.submit({"branches": good["branches"]})
        result = runtime.get_result(30)
        assert "no frame given" in result.results["chain"].error
        assert result.results["branches"].ok
        runtime.submit(good)
        assert runtime.get_result(30).ok


class FlakyBackend(OnnxRuntimeBackend):
    """The onnxruntime backend with a fault injected: the engine of one layer range raises on
    chosen runs (counted per engine), as a framework error would."""

    name = "onnxruntime"

    def __init__(self, fail_first_layer, fail_runs, **kwargs):
        super().__init__(**kwargs)
        self.fail_first_layer = fail_first_layer
        self.fail_runs = set(fail_runs)

    def _build_impl(self, spec, slots, inputs_from):
        engine = super()._build_impl(spec, slots, inputs_from)
        if spec.first_layer == self.fail_first_layer:
            real, calls = engine._run_impl, [0]

            def flaky(inputs, slot, wait_for):
                calls[0] += 1
                if calls[0] in self.fail_runs:
                    raise RuntimeError("injected fault: device lost")
                return real(inputs, slot, wait_for)

            engine._run_impl = flaky
        return engine


def test_an_engine_failing_mid_frame_fails_that_frame_and_the_next_succeeds():
    models = {name: tiny_model(name, TINY[name]) for name in ("chain", "residual")}
    profile = profile_for(models)
    chain_groups = profile.dnns["chain"].groups
    schedule = Schedule("throughput", {
        "chain": alternating(len(chain_groups), "gpu"),
        "residual": ("dla",) * len(profile.dnns["residual"].groups)},
        frames_in_flight=2, max_transitions=len(chain_groups))
    middle = chain_groups[1].layers[0]
    with FlakyBackend(middle, {2}) as backend, \
            Runtime(backend, profile, schedule, models) as runtime:
        results = runtime.run(seeded_frames(models, 4))
    assert [r.results["residual"].ok for r in results] == [True] * 4
    assert [r.results["chain"].ok for r in results] == [True, False, True, True]
    error = results[1].results["chain"].error
    assert "group 1" in error and "injected fault" in error and "chain" in error


def test_an_engine_that_cannot_be_built_is_one_clear_error():
    class Broken(OnnxRuntimeBackend):
        def _build_impl(self, spec, slots, inputs_from):
            raise MemoryError("out of workspace")

    models = {"chain": tiny_model("chain", TINY["chain"])}
    profile = profile_for(models)
    schedule = Schedule("latency", {"chain": ("gpu",) * len(profile.dnns["chain"].groups)})
    with Broken() as backend:
        with pytest.raises(BackendError, match=r"chain layers 0-\d+ on gpu \(fp32\): "
                                               r"onnxruntime could not build.*out of workspace"):
            Runtime(backend, profile, schedule, models)


def test_the_runtime_refuses_frames_before_it_starts_and_after_it_closes():
    models = {"chain": tiny_model("chain", TINY["chain"])}
    profile = profile_for(models)
    schedule = Schedule("latency", {"chain": ("gpu",) * len(profile.dnns["chain"].groups)})
    with OnnxRuntimeBackend() as backend:
        runtime = Runtime(backend, profile, schedule, models)
        from hax_conn_core.errors import ConfigError

        with pytest.raises(ConfigError, match="not started"):
            runtime.submit(next(seeded_frames(models, 1)))
        with runtime:
            runtime.submit(next(seeded_frames(models, 1)))
            assert runtime.get_result(30).ok
        with pytest.raises(ConfigError, match="not started"):
            runtime.submit(next(seeded_frames(models, 1)))


class AsyncBackend(FlakyBackend):
    """Engines whose launches finish a little after ``run`` returns, as on a GPU (the CPU
    backend's are done at once), so that the collector thread, not the executor, waits for
    them and copies the outputs."""

    def _build_impl(self, spec, slots, inputs_from):
        from hax_conn_core.runtime.backends.base import HostEvent, Launch

        engine = super()._build_impl(spec, slots, inputs_from)
        real = engine._run_impl

        def later(inputs, slot, wait_for):
            launch = real(inputs, slot, wait_for)
            done = HostEvent()
            threading.Timer(0.002, done.set).start()
            return Launch(launch.outputs, done, launch._elapsed)

        engine._run_impl = later
        return engine


@pytest.mark.parametrize("objective", ["latency", "throughput"])
def test_launches_that_finish_later_are_all_collected_and_a_late_fault_stays_in_its_frame(
        objective):
    models = {name: tiny_model(name, TINY[name]) for name in ("chain", "residual")}
    profile = profile_for(models)
    chain_groups = profile.dnns["chain"].groups
    schedule = Schedule(objective, {
        "chain": alternating(len(chain_groups), "gpu"),
        "residual": ("dla",) * len(profile.dnns["residual"].groups)},
        frames_in_flight=2, max_transitions=len(chain_groups))
    last = chain_groups[-1].layers[0]  # the chain's last segment fails in frame-set 2
    frames = list(seeded_frames(models, 5))
    with AsyncBackend(last, {2}, device=UNFUSED) as backend, \
            Runtime(backend, profile, schedule, models) as runtime:
        results = []
        for frame_set in frames:  # with deadlines: a launch never collected fails, not hangs
            runtime.submit(frame_set, timeout_s=30)
            while runtime.completed > len(results):
                results.append(runtime.get_result(timeout_s=30))
        runtime.flush()
        results += [runtime.get_result(timeout_s=30) for _ in range(len(frames) - len(results))]
        results.sort(key=lambda r: r.index)
        segments = {name: len(runtime.plan.segments[name]) for name in models}
    assert [r.results["residual"].ok for r in results] == [True] * 5
    assert [r.results["chain"].ok for r in results] == [True, False, True, True, True]
    assert "injected fault" in results[1].results["chain"].error
    good = [results[i] for i in (0, 2, 3, 4)]
    check_equal_to_whole(models, good, [frames[i] for i in (0, 2, 3, 4)])
    for result in good:  # every segment's time kept
        for name, count in segments.items():
            assert len([t for t in result.timings if t.dnn == name]) == count, name

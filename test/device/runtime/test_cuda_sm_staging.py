"""cuda-sm host staging (the default) against the path before it (``staging: false``): the
same outputs, whole and split, one and two buffer slots, engines alone and through the
executors; no frame mixed up across slots or across held frames; and the host round trip of
both paths, printed (run with ``-s`` to see it; no timing is asserted).

Needs torch with CUDA and cuda-python (the device tool's machine); elsewhere it is skipped:
``PYTHONPATH=. python3 -m pytest test/device/runtime/test_cuda_sm_staging.py -q -s``.

Both backends are built the same way from the same weights, so their outputs should be equal
(the tests print the largest difference; expected 0); the bound, SAME_RTOL, is the one between
two fp16 engines of the same range (test_cuda_sm.py's SPLIT_RTOL), should a kernel differ
between the two captures. A frame mixed up with another is caught by each output being nearer
its own frame's answer than any other frame's.
"""

import dataclasses
import statistics
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():  # pragma: no cover - CPU-only torch
    pytest.skip("no CUDA device", allow_module_level=True)
pytest.importorskip("cuda.bindings")

from hax_conn_core.runtime.backends import get_backend  # noqa: E402
from hax_conn_core.runtime.backends.cuda_sm import STAGED_FRAMES  # noqa: E402
from hax_conn_core.runtime.device import RuntimeDevice, default_device  # noqa: E402
from test.device.runtime.test_cuda_sm import (FP16_RTOL, SPLIT_RTOL, Net,  # noqa: E402
                                              split_point)

SAME_RTOL = SPLIT_RTOL


def unstaged_device() -> RuntimeDevice:
    """The default device with ``staging: false`` on every accelerator."""
    base = default_device("cuda-sm")
    settings = {acc: dict(base.settings("cuda-sm", acc), staging=False)
                for acc in base.accelerators}
    return RuntimeDevice(id=base.id, accelerators=base.accelerators,
                         runtime={"cuda-sm": settings}, path=base.path)


@pytest.fixture(scope="module")
def backends():
    with get_backend("cuda-sm") as staged, \
            get_backend("cuda-sm", device=unstaged_device()) as unstaged:
        assert staged.describe()["staging"] == {"gpu": True, "dla": True}
        assert unstaged.describe()["staging"] == {"gpu": False, "dla": False}
        yield {"staged": staged, "unstaged": unstaged}


@pytest.fixture(scope="module")
def googlenet():
    return Net("googlenet")


def frames_for(net, count, seed=0):
    return [np.random.default_rng([seed, i]).standard_normal(net.x.shape, dtype=np.float32)
            for i in range(count)]


def build(backend, net, layout, slots):
    """The engines of ``layout`` in order: whole on one partition (``whole:<acc>``, fp16, or
    ``whole-fp32:<acc>``), or split gpu -> dla with the hand-over in place (``split``) or
    copied (``split-copy``), at the middle cut or the last group boundary (``-late``)."""
    if layout.startswith("whole"):
        precision = "fp32" if layout.startswith("whole-fp32") else "fp16"
        return [backend.build(net.spec(0, net.last, layout.split(":")[1], precision),
                              slots=slots)]
    if layout.endswith("-late"):
        from hax_conn_core.graph.grouping import group_layers

        cut = [g.last for g in group_layers(net.graph)[:-1] if g.last < net.last][-1]
    else:
        cut = split_point(net)
    part_a = backend.build(net.spec(0, cut, "gpu"), slots=slots)
    bound = None if layout.startswith("split-copy") else part_a
    part_b = backend.build(net.spec(cut + 1, net.last, "dla"), slots=slots, inputs_from=bound)
    assert bool(any(part_b.bound)) == (bound is not None)
    return [part_a, part_b]


def run_frames(backend, net, layout, slots, frames):
    """Each frame's logits (and the first engine's first output where split), every slot's
    frame in flight before any is read."""
    engines = build(backend, net, layout, slots)
    got = []
    try:
        for start in range(0, len(frames), slots):
            launches = []
            for slot, frame in enumerate(frames[start:start + slots]):
                chain = []
                for engine in engines:
                    if not chain:
                        inputs = {net.input: backend.from_host(frame, engine.spec.accelerator)}
                        wait = ()
                    else:
                        inputs, wait = chain[-1].outputs, (chain[-1].done,)
                    chain.append(engine.run(inputs, slot=slot, wait_for=wait))
                launches.append(chain)
            for chain in launches:
                out = {"logits": backend.to_host(chain[-1].outputs[net.logits])}
                if len(chain) > 1:
                    name = engines[0].output_names[0]
                    out["cut"] = backend.to_host(chain[0].outputs[name])
                got.append(out)
    finally:
        for engine in reversed(engines):
            engine.release()
    return got


def rel(got, reference):
    return float(np.abs(got - reference).max()) / float(np.abs(reference).max())


def assert_own(got, answers, index):
    """``got`` is frame ``index``'s answer: within SAME_RTOL of it and nearer it than any
    other frame's that differs from it by more than twice that distance (answers that close
    cannot be told apart; with the expected exact match, any other answer that differs)."""
    own = rel(got, answers[index])
    assert own <= SAME_RTOL, (index, own)
    for other, answer in enumerate(answers):
        if other != index and rel(answer, answers[index]) > 2 * own \
                and not np.array_equal(answer, answers[index]):
            assert own < rel(got, answer), (index, other, own)


@pytest.mark.parametrize("slots", [1, 2])
@pytest.mark.parametrize("layout", ["whole:gpu", "whole:dla", "whole-fp32:gpu", "split",
                                    "split-copy", "split-late"])
def test_staged_outputs_equal_the_old_path(backends, googlenet, layout, slots):
    net = googlenet
    frames = frames_for(net, 2 * slots)
    staged = run_frames(backends["staged"], net, layout, slots, frames)
    unstaged = run_frames(backends["unstaged"], net, layout, slots, frames)
    worst = 0.0
    for new, old in zip(staged, unstaged):
        assert new.keys() == old.keys()
        for key in new:
            assert new[key].dtype == old[key].dtype == np.float32
            assert new[key].shape == old[key].shape
            worst = max(worst, rel(new[key], old[key]))
    print(f"\n{layout} slots={slots}: staged vs old path, max rel diff {worst:.2e}")
    for key in staged[0]:
        for index, new in enumerate(staged):
            assert_own(new[key], [old[key] for old in unstaged], index)


@pytest.mark.parametrize("slots", [2, 3])
def test_no_frame_mixed_across_slots(backends, googlenet, slots):
    """Every slot's run in flight at once, read in reverse order: each slot's logits are
    its own frame's (as the old path gives for that frame alone, one slot)."""
    net = googlenet
    frames = frames_for(net, slots, seed=7)
    alone = [run_frames(backends["unstaged"], net, "whole:gpu", 1, [f])[0]["logits"]
             for f in frames]
    backend = backends["staged"]
    engine = backend.build(net.spec(0, net.last, "gpu"), slots=slots)
    try:
        launches = [engine.run({net.input: backend.from_host(f, "gpu")}, slot=slot)
                    for slot, f in enumerate(frames)]
        got = [backend.to_host(launches[s].outputs[net.logits])
               for s in reversed(range(slots))][::-1]
    finally:
        engine.release()
    for slot in range(slots):
        assert_own(got[slot], alone, slot)


def test_frames_held_before_running_keep_their_data(backends, googlenet):
    """More frames placed than the pinned buffers kept (STAGED_FRAMES): each device tensor
    still holds its own frame, and an engine run on it later gives that frame's logits."""
    net = googlenet
    backend = backends["staged"]
    frames = frames_for(net, STAGED_FRAMES + 3, seed=11)
    placed = [backend.from_host(f, "gpu") for f in frames]
    for frame, tensor in zip(frames, placed):
        np.testing.assert_array_equal(backend.to_host(tensor), frame)
    expected = run_frames(backends["unstaged"], net, "whole:gpu", 1, frames[-2:])
    engine = backend.build(net.spec(0, net.last, "gpu"))
    try:
        answers = [want["logits"] for want in expected]
        for index, tensor in enumerate(placed[-2:]):
            launch = engine.run({net.input: tensor})
            assert_own(backend.to_host(launch.outputs[net.logits]), answers, index)
    finally:
        engine.release()


@pytest.mark.parametrize("frames_in_flight", [1, 2])
def test_through_the_executors_the_outputs_equal_the_old_path(backends, frames_in_flight):
    """googlenet + resnet101 under the measured plan of the emulated SoC (googlenet split
    dla -> gpu, resnet101 whole on gpu), D = 1 and 2: every frame-set's outputs as the old
    path's, and distinct frame-sets distinct."""
    from hax_conn_core.profile import load_profile
    from hax_conn_core.runtime.measure import seeded_frames
    from hax_conn_core.runtime.models import load_model
    from hax_conn_core.runtime.session import Runtime
    from hax_conn_core.schedule import load_schedule

    names = ["googlenet", "resnet101"]
    profile = load_profile("profiles/emulated-h200_12.json").subset(names)
    plan = load_schedule("docs/bench/bundles/emulated-h200/googlenet-resnet101.latency."
                         "hax-conn.json")
    plan = dataclasses.replace(plan, frames_in_flight=frames_in_flight)
    models = {n: load_model(n) for n in names}
    frames = list(seeded_frames(models, 6, 3))
    outputs = {}
    for label, backend in backends.items():
        with Runtime(backend, profile, plan, models) as runtime:
            results = runtime.run(frames)
        assert all(r.ok for r in results), [r.results for r in results if not r.ok]
        outputs[label] = [{n: r.results[n].outputs for n in names} for r in results]
    worst = 0.0
    for new, old in zip(outputs["staged"], outputs["unstaged"]):
        for name in names:
            assert new[name].keys() == old[name].keys()
            for key, value in new[name].items():
                assert value.shape == old[name][key].shape
                worst = max(worst, rel(value, old[name][key]))
    print(f"\nexecutors D={frames_in_flight}: staged vs old path, max rel diff {worst:.2e}")
    for name in names:
        for key in outputs["staged"][0][name]:
            answers = [old[name][key] for old in outputs["unstaged"]]
            for index, new in enumerate(outputs["staged"]):
                assert_own(new[name][key], answers, index)


def test_host_round_trip_of_both_paths_is_printed(backends, googlenet):
    """Median host time of from_host(frame) + to_host(logits) around one googlenet run on
    the gpu partition, and of the frame alone in and out, per path (printed, not asserted:
    speed is measured by scripts/device_overhead_probe.py)."""
    net = googlenet
    lines = []
    for label, backend in backends.items():
        engine = backend.build(net.spec(0, net.last, "gpu"))
        try:
            wall, frame_only = [], []
            for i in range(60):
                t0 = time.perf_counter()
                launch = engine.run({net.input: backend.from_host(net.x, "gpu")})
                launch.done.wait()
                logits = backend.to_host(launch.outputs[net.logits])
                wall.append((time.perf_counter() - t0) * 1e3 - launch.elapsed_ms())
                t0 = time.perf_counter()
                backend.to_host(backend.from_host(net.x, "gpu")[:, :1])
                frame_only.append((time.perf_counter() - t0) * 1e3)
            assert net.rel(logits) <= FP16_RTOL
        finally:
            engine.release()
        lines.append(f"{label}: wall minus event time {statistics.median(wall[10:]):.3f} ms, "
                     f"frame in + 1 channel out {statistics.median(frame_only[10:]):.3f} ms")
    print("\n" + "\n".join(lines))

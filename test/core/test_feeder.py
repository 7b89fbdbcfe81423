"""The executors' shared frame-set feeder, without ROS: newest image per DNN, refusals, swaps."""

import threading

import numpy as np
import pytest

from hax_conn_core import feeder as feeding
from hax_conn_core.preprocess import Image
from hax_conn_core.replan import PlanRequest, Replanner


def _image(encoding="rgb8", size=224, fill=100):
    channels = 1 if encoding == "mono8" else 3
    return Image(encoding, size, size, size * channels,
                 np.full(size * size * channels, fill, np.uint8).tobytes())


class _Collect:
    def __init__(self):
        self.outputs, self.cond = [], threading.Condition()

    def __call__(self, output):
        with self.cond:
            self.outputs.append(output)
            self.cond.notify_all()

    def wait(self, predicate, timeout_s=120):
        with self.cond:
            assert self.cond.wait_for(lambda: predicate(self.outputs), timeout=timeout_s), \
                f"waited {timeout_s} s; got {[(o.dnn, o.frame_set) for o in self.outputs]}"


@pytest.fixture
def feeder():
    shared = feeding.acquire("onnxruntime")
    assert feeding.acquire("onnxruntime") is shared  # one per process and backend
    feeding.release(shared)
    yield shared
    feeding.release(shared)


def test_images_in_results_out_and_a_swap_between_frame_sets(feeder):
    planner = Replanner()
    first = planner.plan(PlanRequest(dnns=("alexnet", "resnet18")))
    got = _Collect()
    feeder.add_listener(got)
    feeder.set_schedule(first.schedule, first.profile)
    feeder.offer("alexnet", _image(), tag="a0")
    feeder.offer("resnet18", _image("bgr8", 300), tag="r0")
    got.wait(lambda out: {o.dnn for o in out} == {"alexnet", "resnet18"})
    by_dnn = {o.dnn: o for o in got.outputs}
    assert by_dnn["alexnet"].tag == "a0" and by_dnn["resnet18"].tag == "r0"
    assert by_dnn["alexnet"].outputs["prob"].shape == (1, 1000)
    assert by_dnn["alexnet"].latency_ms > 0 and by_dnn["alexnet"].last_accelerator

    # a malformed image fails its DNN alone
    feeder.offer("alexnet", _image("rgba8"), tag="bad")
    feeder.offer("resnet18", _image(), tag="r1")
    got.wait(lambda out: any(o.tag == "r1" for o in out))
    assert not any(o.tag == "bad" for o in got.outputs)
    stats = feeder.stats()
    assert stats["alexnet"].frame_errors == 1 and "rgba8" in stats["alexnet"].last_error

    second = planner.plan(PlanRequest(dnns=("mobilenet_v1", "alexnet")))
    feeder.set_schedule(second.schedule, second.profile)
    for _ in range(50):
        feeder.offer("mobilenet_v1", _image("mono8"), tag="m")
        feeder.offer("alexnet", _image(), tag="a")
        feeder.offer("resnet18", _image(), tag="dropped")  # no longer run
        try:
            got.wait(lambda out: any(o.dnn == "mobilenet_v1" for o in out), timeout_s=2)
            break
        except AssertionError:
            continue
    got.wait(lambda out: any(o.dnn == "mobilenet_v1" for o in out))
    after = [o for o in got.outputs if o.dnn == "mobilenet_v1"]
    assert {o.schedule_id for o in after} == {after[0].schedule_id}
    assert not any(o.tag == "dropped" for o in got.outputs)
    assert len(feeder.timings) > 0


def test_results_go_to_the_callback_alone_with_hops_in_order(feeder):
    from hax_conn_core.errors import ConfigError

    first = Replanner().plan(PlanRequest(dnns=("alexnet", "resnet18")))
    got = _Collect()
    feeder.add_listener(got)
    feeder.set_schedule(first.schedule, first.profile)
    for round_ in range(3):  # several frame-sets: a queue, if there were one, would fill
        feeder.offer("alexnet", _image(), tag=f"a{round_}")
        feeder.offer("resnet18", _image(), tag=f"r{round_}")
        got.wait(lambda out: any(o.tag == f"r{round_}" for o in out))
    # The runtime hands results to the feeder's callback only: no queue to poll or drain.
    assert feeder.runtime.queue_results is False
    with pytest.raises(ConfigError, match="queue_results=False"):
        feeder.runtime.get_result(timeout_s=0)
    for output in got.outputs:
        hops = output.hops
        order = ["offered", "preprocess", "submit", "submitted", "result"]
        # submit() may return after the result came back (the runtime's threads run it):
        # then "submitted" is not stamped yet when the result is handed out
        timed = [h for h in order if h != "submitted"]
        assert set(timed) <= set(hops) <= set(order)
        assert all(hops[a] <= hops[b] for a, b in zip(timed, timed[1:]))
        assert hops.get("submitted", hops["submit"]) >= hops["submit"]


def test_a_runtime_without_queue_needs_a_callback():
    from hax_conn_core.errors import ConfigError
    from hax_conn_core.runtime.backends import get_backend
    from hax_conn_core.runtime.models import load_model
    from hax_conn_core.runtime.session import Runtime

    first = Replanner().plan(PlanRequest(dnns=("alexnet", "resnet18")))
    models = {n: load_model(n) for n in first.schedule.assignments}
    with get_backend("onnxruntime") as backend:
        with pytest.raises(ConfigError, match="on_result"):
            Runtime(backend, first.profile, first.schedule, models, queue_results=False)


def test_newest_image_wins_and_a_whole_frame_set_is_submitted_by_the_offering_thread():
    feeder = feeding.Feeder("onnxruntime", gather_s=60).start()  # gather: never times out here
    try:
        first = Replanner().plan(PlanRequest(dnns=("alexnet", "resnet18")))
        got = _Collect()
        feeder.add_listener(got)
        feeder.set_schedule(first.schedule, first.profile)
        for _ in range(600):
            if feeder.runtime is not None:
                break
            threading.Event().wait(0.1)
        feeder.offer("alexnet", _image(), tag="old")
        feeder.offer("alexnet", _image(), tag="new")  # replaces the one not yet used
        feeder.offer("resnet18", _image(), tag="r")
        got.wait(lambda out: len(out) == 2)
        assert sorted(o.tag for o in got.outputs) == ["new", "r"]
        assert feeder.stats()["alexnet"].dropped == 1
        assert feeder.stats()["resnet18"].dropped == 0

        # One camera image for both DNNs, offered while the runtime is idle: submitted in this
        # thread (the feeder thread may still be finishing the previous one: then it does it)
        inline = feeder.inline_frame_sets
        for round_ in range(10):
            for _ in range(600):
                if feeder.depth() == (0, 0):
                    break
                threading.Event().wait(0.01)
            feeder.offer_many(["alexnet", "resnet18"], _image(), tag=f"both{round_}")
            got.wait(lambda out: sum(o.tag == f"both{round_}" for o in out) == 2)
            if feeder.inline_frame_sets > inline:
                break
        assert feeder.inline_frame_sets > inline
        assert feeder.frame_sets == 1 + round_ + 1
        both = [o for o in got.outputs if o.tag == f"both{round_}"]
        assert len({o.frame_set for o in both}) == 1  # one frame-set, both DNNs
        assert feeder.stats()["alexnet"].received == 2 + round_ + 1
    finally:
        feeder.close()


def test_wait_idle_returns_once_the_frame_sets_are_out(feeder):
    first = Replanner().plan(PlanRequest(dnns=("alexnet", "resnet18")))
    got = _Collect()
    feeder.add_listener(got)
    feeder.set_schedule(first.schedule, first.profile)
    assert feeder.wait_idle(timeout_s=5)  # nothing submitted yet
    for _ in range(600):
        if feeder.runtime is not None:
            break
        threading.Event().wait(0.1)
    feeder.offer_many(["alexnet", "resnet18"], _image(), tag="x")
    for _ in range(600):  # submitted here or by the feeder thread
        if feeder.frame_sets:
            break
        threading.Event().wait(0.01)
    assert feeder.wait_idle(timeout_s=120)  # woken by the result, not by a timeout
    assert feeder.depth()[0] == 0
    got.wait(lambda out: len(out) == 2)


def test_unpublished_results_count_once_logged_and_all_in_diagnostics():
    unpublished = feeding.Unpublished()
    assert unpublished.add("alexnet", "top_k 10 above the 5 classes") is True
    assert unpublished.add("alexnet", "top_k 10 above the 5 classes") is False
    base = feeding.DnnStats(received=4, results=2, run_errors=1)
    stats = feeding.with_errors({"alexnet": base, "resnet18": feeding.DnnStats(results=3)},
                                unpublished, {"mynet": "no such file"})
    assert stats["alexnet"].run_errors == 3 and "top_k 10" in stats["alexnet"].last_error
    assert stats["alexnet"].received == 4 and base.run_errors == 1  # a copy; the input stays
    assert stats["resnet18"].run_errors == 0
    assert stats["mynet"].run_errors == 1
    assert stats["mynet"].last_error == "model mynet not loaded: no such file"

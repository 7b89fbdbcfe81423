"""The profiler's GPU path on cuda-sm (the GPU machine): memory streams on green-context
partitions, CUDA-event group times, a whole profile with PCCS calibration, marked runs for ncu.

Skipped without torch/CUDA/cuda-python. Run there with
``PYTHONPATH=. python3 -m pytest test/device/profiler -q``. What needs no GPU is tested in
test/core/profiler/.
"""

import time

import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():  # pragma: no cover - CPU-only torch
    pytest.skip("no CUDA device", allow_module_level=True)
pytest.importorskip("cuda.bindings")

from hax_conn_core.graph.grouping import group_layers  # noqa: E402
from hax_conn_core.graph.capabilities import load_device  # noqa: E402
from hax_conn_core.profile import parse_profile  # noqa: E402
from hax_conn_core.runtime.backends import get_backend  # noqa: E402
from hax_conn_core.runtime.backends.base import EngineSpec  # noqa: E402
from hax_conn_core.runtime.models import load_model  # noqa: E402


@pytest.fixture(scope="module")
def backend():
    with get_backend("cuda-sm") as opened:
        yield opened


def test_streams_run_on_each_partition_and_keep_to_a_target(backend):
    for acc in backend.accelerators:
        stream = backend.memory_stream(acc)
        try:
            stream.start()
            time.sleep(0.2)
            flat_out = stream.stop()
            assert flat_out > 0
            stream.target_gbps = flat_out / 2
            stream.start()
            time.sleep(0.2)
            paced = stream.stop()
            assert abs(paced - flat_out / 2) <= 0.25 * flat_out / 2, (acc, flat_out, paced)
            seconds = stream.transfer(16 << 30)
            assert (16 << 30) / seconds / 1e9 == pytest.approx(flat_out / 2, rel=0.25)
        finally:
            stream.close()


def test_a_stressor_above_what_it_reaches_is_refused_with_what_it_reached(backend):
    from hax_conn_core.profiler.contention import calibrate
    from hax_conn_core.profiler.stressor import StressorError

    with pytest.raises(StressorError, match="the stressor reached .* GB/s of the"):
        calibrate(backend.accelerators, 1e6, 1e5, max_stress_gbps=1e6,
                  streams=backend.memory_stream)


def test_launch_time_is_the_graph_on_the_gpu_not_the_wait_before_it(backend):
    model = load_model("googlenet")
    first, last = group_layers(model.graph, 10)[0].first, group_layers(model.graph, 10)[0].last
    spec = EngineSpec(dnn="googlenet", graph=model.graph, weights=model.weights,
                      weights_id=model.weights_id, first_layer=first, last_layer=last,
                      accelerator="gpu", precision="fp16")
    engine = backend.build(spec)
    inputs = engine.input_buffers(0)
    alone = [engine.run(inputs).elapsed_ms() for _ in range(5)][-1]
    stream = backend.stream("gpu")
    with torch.cuda.stream(stream):
        torch.cuda._sleep(200_000_000)  # ~0.1 s of spinning queued before the engine
    started = time.perf_counter()
    queued = engine.run(inputs)
    behind = queued.elapsed_ms()
    wall_ms = (time.perf_counter() - started) * 1e3
    assert behind < 0.1 * wall_ms  # the events bracket the graph only
    assert behind < 3 * alone + 0.05
    engine.release()


def test_a_profile_on_cuda_sm_is_valid_calibrated_and_sum_checked(backend, tmp_path):
    from hax_conn_core.profiler import profile_dnns

    run = profile_dnns(backend, ["googlenet"], repeats=50, warmup=5, progress=False,
                       target_groups=6, contention=True, cache_root=tmp_path,
                       note=lambda line: None)
    profile = run.profile
    assert "googlenet" in profile.dnns
    doc = run.document
    meta = doc["profiler"]["contention"]
    assert meta["calibrated"]
    for acc in backend.accelerators:
        info = meta["accelerators"][acc]
        assert info["stressor_on"] != acc and info["u_range"][1] > info["u_range"][0]
    # The small partition suffers from the big one's traffic (docs/bench/emulated-soc-h200.md).
    assert max(s for _, s in doc["contention"]["dla"]) > 1.0
    checks = doc["profiler"]["dnns"]["googlenet"]["sum_check"]
    for acc, check in checks.items():
        assert check["engines_ms"] > 0 and check["deviation"] is not None
    if not run.within_tolerance["googlenet"]:
        assert any("NOT within" in line for line in run.notes)
    assert "cuda" in doc["device"]["peak_bandwidth_source"] or \
        "partition" in doc["device"]["peak_bandwidth_source"]
    parse_profile(doc)


def test_marked_runs_list_every_group_on_every_accelerator_that_runs_it(backend):
    from hax_conn_core.profiler.dram_counters import closing_marker, marked_runs

    model = load_model("googlenet")
    caps = load_device("emulated-h200")
    from hax_conn_core.profiler.groups import initial_groups

    groups = initial_groups(model.graph, caps, backend.accelerators, 6)
    rows = marked_runs(backend, model, [g.range for g in groups],
                       [g.accelerators for g in groups], "fp16")
    closing_marker(backend)
    expected = [["googlenet", acc, i] for acc in backend.accelerators
                for i, g in enumerate(groups) if acc in g.accelerators]
    assert rows == expected

"""Memory streams through the backend interface (the profiler never asks which backend it has):
the onnxruntime backend's host copy loop, pacing, bad targets, a backend without streams, and
the cuda-sm pacing arithmetic (the GPU side itself is tested in test/device/profiler)."""

import pytest

from hax_conn_core.errors import BackendError, ConfigError
from hax_conn_core.runtime.backends import get_backend
from hax_conn_core.runtime.backends.base import Backend, MemoryStream


def test_onnxruntime_streams_run_on_each_accelerator_and_keep_to_a_target():
    with get_backend("onnxruntime") as backend:
        for acc in backend.accelerators:
            stream = backend.memory_stream(acc)
            assert isinstance(stream, MemoryStream) and stream.accelerator == acc
            seconds = stream.transfer(64 << 20)
            flat_out = (64 << 20) / seconds / 1e9
            paced = backend.memory_stream(acc, target_gbps=flat_out / 4)
            paced.start()
            import time

            time.sleep(0.2)
            achieved = paced.stop()
            # Paced: well under flat out, not stopped (a quarter, within pacing jitter).
            assert 0 < achieved < flat_out / 2
            assert "copy" in paced.describe()
            paced.close()


@pytest.mark.parametrize("target", [0, -1.0, "fast", True])
def test_a_bad_target_is_a_config_error(target):
    with get_backend("onnxruntime") as backend:
        with pytest.raises(ConfigError, match="memory stream target"):
            backend.memory_stream("gpu", target)


def test_a_closed_backend_or_one_without_streams_is_a_backend_error():
    backend = get_backend("onnxruntime")
    with pytest.raises(BackendError, match="not open"):
        backend.memory_stream("gpu")

    class NoStreams(type(backend)):
        def _memory_stream_impl(self, accelerator, target_gbps):
            return Backend._memory_stream_impl(self, accelerator, target_gbps)

    with NoStreams() as bare:
        with pytest.raises(BackendError, match="has no memory stream"):
            bare.memory_stream("gpu")


def test_peak_and_calibration_go_through_the_backend(monkeypatch):
    from hax_conn_core.profiler import contention
    from hax_conn_core.profiler.stressor import measure_peak

    monkeypatch.setattr(contention, "PROBE_S", 0.03)
    monkeypatch.setattr(contention, "LEVELS", (0.0, 1.0))
    made = []
    with get_backend("onnxruntime") as backend:
        def factory(acc, target):
            made.append(acc)
            return backend.memory_stream(acc, target)

        peak = measure_peak(duration_s=0.1, factory=factory, accelerators=backend.accelerators)
        assert set(peak.alone_gbps) == set(backend.accelerators)
        assert peak.peak_gbps >= max(peak.alone_gbps.values()) > 0
        result = contention.calibrate(backend.accelerators, peak.peak_gbps, peak.single_gbps,
                                      streams=factory, alone_gbps=peak.alone_gbps)
    assert set(made) == set(backend.accelerators)
    for acc in backend.accelerators:
        info = result.info[acc]
        assert info["stressor_on"] != acc and "above u" in info["extrapolated"]
        assert info["u_range"][1] >= info["u_range"][0] > 0


def test_cuda_pacing_spins_for_the_rest_of_each_period():
    from hax_conn_core.runtime.backends.cuda_memory import sleep_cycles

    # 32 MiB moved per chunk at 1000 GB/s: a period of 33.5 us; the copy takes 10 us.
    period = (32 << 20) / 1000e9
    cycles = sleep_cycles(period, 10e-6, 1.98e9)
    assert cycles == round((period - 10e-6) * 1.98e9)
    assert sleep_cycles(period, 2 * period, 1.98e9) == 0  # slower than the target: flat out

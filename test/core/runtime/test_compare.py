"""runtime.compare: schedules measured side by side keep both figures of every round, and the
plan is judged against the best other schedule with ties from the spread."""

import statistics

import pytest

from hax_conn_core.errors import BackendError
from hax_conn_core.runtime.backends.onnxrt import OnnxRuntimeBackend
from hax_conn_core.runtime.compare import compare_schedules, versus_best
from hax_conn_core.schedule import Schedule
from test.core.graph import nets
from test.core.runtime.helpers import profile_for, tiny_model
from test.core.runtime.test_session import FlakyBackend


def test_both_figures_of_every_round_whatever_the_objective():
    models = {"chain": tiny_model("chain", nets.CHAIN)}
    profile = profile_for(models)
    groups = len(profile.dnns["chain"].groups)
    schedules = {"lat": Schedule("latency", {"chain": ("gpu",) * groups}),
                 "thr": Schedule("throughput", {"chain": ("dla",) * groups},
                                 frames_in_flight=2)}
    with OnnxRuntimeBackend() as backend:
        out = compare_schedules(backend, profile, schedules, models, rounds=3, frames=4,
                                warmup=1)
    for label, result in out.items():
        assert len(result["latency_rounds_ms"]) == len(result["ms_per_frame_set_rounds"]) == 3
        assert all(v > 0 for v in result["latency_rounds_ms"] + result[
            "ms_per_frame_set_rounds"])
    # the objective's figure is the one the median is taken of
    assert out["lat"]["rounds_ms"] == out["lat"]["latency_rounds_ms"]
    assert out["thr"]["rounds_ms"] == out["thr"]["ms_per_frame_set_rounds"]
    assert out["thr"]["median_ms"] == statistics.median(out["thr"]["ms_per_frame_set_rounds"])


def test_a_frame_set_failing_while_measuring_is_a_backend_error_naming_the_schedule():
    models = {"chain": tiny_model("chain", nets.CHAIN)}
    profile = profile_for(models)
    groups = len(profile.dnns["chain"].groups)
    schedules = {"lat": Schedule("latency", {"chain": ("gpu",) * groups})}
    with FlakyBackend(fail_first_layer=0, fail_runs={3}) as backend:
        expected = "lat: frame-sets failed while measuring.*injected fault"
        with pytest.raises(BackendError, match=expected):
            compare_schedules(backend, profile, schedules, models, rounds=2, frames=4,
                              warmup=1)


def _m(median, low, high):
    return {"median_ms": median, "min_ms": low, "max_ms": high}


@pytest.mark.parametrize("ours, best, gain, tie", [
    (_m(8.0, 7.5, 8.5), _m(10.0, 9.5, 10.5), 0.2, False),
    (_m(9.8, 9.0, 10.2), _m(10.0, 9.9, 10.1), 0.02, True),  # best inside our spread
    (_m(10.4, 10.3, 10.5), _m(10.0, 9.0, 11.0), -0.04, True),  # ours inside the best's
    (_m(12.0, 11.5, 12.5), _m(10.0, 9.5, 10.5), -0.2, False),
])
def test_versus_best(ours, best, gain, tie):
    measured = {"plan": ours, "worse": _m(20.0, 19.0, 21.0), "best": best}
    label, got_gain, got_tie = versus_best(measured, "plan")
    assert label == "best"
    assert got_gain == pytest.approx(gain)
    assert got_tie is tie

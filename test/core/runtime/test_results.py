"""results.summarize: the time per frame-set as docs/timing-model.md defines it."""

import math

import pytest

from hax_conn_core.runtime.results import DnnResult, FrameSetResult, summarize


def _finished(times_ms):
    """Frame-sets that finished at ``times_ms`` (released when the one D before finished:
    the released times do not matter to the time per frame-set)."""
    out = []
    for index, t in enumerate(times_ms):
        result = DnnResult(dnn="a", frame_set=index, outputs={}, finished_s=t / 1e3)
        out.append(FrameSetResult(index=index, schedule_id=0, results={"a": result},
                                  released_s=0.0, finished_s=t / 1e3))
    return out


def test_bursts_of_two_give_the_period_not_the_gap_inside_a_burst():
    # Two in flight finishing 0.5 ms apart every 7 ms: the median gap is 0.5 or 6.5 ms;
    # the steady-state time per frame-set is 3.5 ms.
    times = [t for k in range(40) for t in (7.0 * k, 7.0 * k + 0.5)]
    summary = summarize(_finished(times), frames_in_flight=2)
    assert summary["ms_per_frame_set"] == pytest.approx(3.5)
    assert summary["frame_sets_per_s"] == pytest.approx(1e3 / 3.5)


def test_a_stall_moves_the_run_mean_but_not_the_median():
    times, t = [], 0.0
    for k in range(200):
        t += 100.0 if k == 100 else 3.0  # one garbage-collector-sized pause
        times.append(t)
    summary = summarize(_finished(times), frames_in_flight=1)
    assert summary["ms_per_frame_set"] == pytest.approx(3.0)
    assert summary["mean_ms_per_frame_set"] == pytest.approx((times[-1] - times[0]) / 199)
    assert summary["mean_ms_per_frame_set"] > 3.4


def test_without_frames_in_flight_it_is_the_run_average():
    times = [0.0, 1.0, 5.0, 6.0]
    summary = summarize(_finished(times))
    assert summary["ms_per_frame_set"] == pytest.approx(2.0)
    assert summary["ms_per_frame_set"] == summary["mean_ms_per_frame_set"]


def test_warmup_is_left_out():
    times = [0.0, 50.0, 51.0, 52.0, 53.0]
    assert summarize(_finished(times), warmup=1, frames_in_flight=1)["ms_per_frame_set"] \
        == pytest.approx(1.0)


def test_one_frame_set_has_no_time_per_frame_set():
    summary = summarize(_finished([3.0]), frames_in_flight=2)
    assert math.isnan(summary["ms_per_frame_set"]) and math.isnan(summary["frame_sets_per_s"])


def test_frames_in_flight_below_one_is_refused():
    with pytest.raises(ValueError, match="frames_in_flight"):
        summarize(_finished([0.0, 1.0, 2.0]), frames_in_flight=0)

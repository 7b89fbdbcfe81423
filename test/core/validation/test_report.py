"""validation.report and validation.plot: the error summary, the page, the chart, and a report
file read back (or refused) for drawing elsewhere."""

import json
import statistics

import pytest

from hax_conn_core.errors import ConfigError
from hax_conn_core.validation import report as rep
from hax_conn_core.validation.plot import draw_report


def entry(predicted, flat, measured, same_as=None):
    """A schedule's entry: latency mode, so both figures are the same number."""
    def figures(ms):
        return {"latency_ms": ms, "ms_per_frame_set": ms, "frame_sets_per_s": 1e3 / ms}

    spread = {"median": measured, "min": measured * 0.9, "max": measured * 1.1,
              "rounds": [measured]}
    err = predicted / measured - 1
    err_flat = flat / measured - 1
    return {"assignment": {"a": ["gpu"]}, "transitions": 0, "same_as": same_as,
            "predicted": figures(predicted), "predicted_no_contention": figures(flat),
            "measured": {"latency_ms": spread, "ms_per_frame_set": spread,
                         "frame_sets_per_s": 1e3 / measured},
            "error": {"latency": err, "ms_per_frame_set": err, "objective": err},
            "error_no_contention": {"latency": err_flat, "ms_per_frame_set": err_flat,
                                    "objective": err_flat}}


ROWS = [
    {"dnns": ["a", "b"], "objective": "latency", "frames_in_flight": 1,
     "schedules": {"HaX-CoNN": entry(10.0, 9.0, 10.5), "GPU-only": entry(20.0, 20.0, 19.0),
                   "GPU&DLA": entry(20.0, 20.0, 19.0, same_as="GPU-only"),
                   "Herald": entry(12.0, 10.0, 13.0)},
     "best_baseline": "Herald", "gain_over_best_baseline": 1 - 10.5 / 13.0, "tie": False},
    {"dnns": ["a", "b"], "objective": "throughput", "frames_in_flight": 2,
     "schedules": {"HaX-CoNN": entry(8.0, 6.0, 8.8), "GPU-only": entry(15.0, 15.0, 15.5)},
     "best_baseline": "GPU-only", "gain_over_best_baseline": 1 - 8.8 / 15.5, "tie": False},
]


def make():
    return rep.make_report(ROWS, command="hax-conn validate ...", backend={"backend": "x"},
                           profile_path="p.json", profile_sha256="f" * 64, rounds=3, frames=4,
                           warmup=1, seed=0, precision=None)


def test_summary_counts_each_measured_schedule_once_and_finds_the_worst():
    summary = make()["summary"]
    errors = {(row["objective"], label): e["error"]["objective"]
              for row in ROWS for label, e in row["schedules"].items() if not e["same_as"]}
    assert summary["all"]["schedules"] == len(errors) == 5
    assert summary["latency"]["schedules"] == 3
    assert summary["all"]["error"]["median_abs"] == pytest.approx(
        statistics.median(abs(e) for e in errors.values()))
    worst = max(errors, key=lambda k: abs(errors[k]))
    assert summary["all"]["error"]["worst"] == pytest.approx(errors[worst])
    assert summary["all"]["error"]["worst_at"].endswith(f"{worst[0]} {worst[1]}")
    flat = [e["error_no_contention"]["objective"] for row in ROWS
            for e in row["schedules"].values() if not e["same_as"]]
    assert summary["all"]["error_no_contention"]["median_abs"] == pytest.approx(
        statistics.median(abs(e) for e in flat))


def test_the_page_has_every_schedule_the_summary_and_the_verdict():
    text = rep.markdown(make(), chart="v.png")
    for row in ROWS:
        for label in row["schedules"]:
            assert f"| {label}" in text
    assert "GPU&DLA (= GPU-only)" in text
    assert text.count("median |error|") == 6  # with and without, for all/latency/throughput
    assert "best measured baseline (Herald)" in text
    assert "`v.png`" in text


def test_written_report_reads_back_and_draws(tmp_path):
    paths = rep.write_report(make(), tmp_path / "v")
    assert [p.name for p in paths] == ["v.json", "v.md"]
    again = rep.load_report(tmp_path / "v.json")
    assert again["rows"] == json.loads(json.dumps(ROWS))
    assert again["summary"] == make()["summary"]
    png = draw_report(again, tmp_path / "v.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(format="hax-conn-validate/2"), "version"),
    (lambda d: d.update(rows=[]), "rows: expected a non-empty list"),
    (lambda d: d["rows"][0]["schedules"]["Herald"]["measured"].pop("latency_ms"),
     r"rows\[0\]\.schedules\.Herald\.measured\.latency_ms: required key is missing"),
    (lambda d: d["rows"][1]["schedules"]["HaX-CoNN"]["predicted"].update(latency_ms="x"),
     r"predicted\.latency_ms: expected a finite number"),
])
def test_a_bad_report_is_one_clear_error(tmp_path, change, message):
    rep.write_report(make(), tmp_path / "v")
    doc = json.loads((tmp_path / "v.json").read_text())
    change(doc)
    (tmp_path / "v.json").write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=message):
        rep.load_report(tmp_path / "v.json")

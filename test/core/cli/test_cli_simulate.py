"""`hax-conn simulate`: figures from the simulator, JSON report, refused schedules."""

import json

from hax_conn_core.cli.main import main
from hax_conn_core.profile import parse_profile
from hax_conn_core.schedule import parse_schedule
from hax_conn_core.simulator import simulate
from test.core.strategies import group, profile_doc

# Hand-computed: a GPU 0-1 then DLA 1-2 (1 ms each), b GPU 1-3: latency 3 ms.
DOC = profile_doc({"a": [group({"gpu": 1.0, "dla": 1.0}), group({"gpu": 1.0, "dla": 1.0})],
                   "b": [group({"gpu": 2.0})]})
SCHEDULE = {"format": "hax-conn-schedule/1", "objective": "latency",
            "dnns": {"a": {"assignment": ["gpu", "dla"]}, "b": {"assignment": ["gpu"]}}}


def _files(tmp_path, schedule=SCHEDULE):
    p, s = tmp_path / "p.json", tmp_path / "s.json"
    p.write_text(json.dumps(DOC))
    s.write_text(json.dumps(schedule))
    return str(p), str(s)


def test_human_output(tmp_path, capsys):
    p, s = _files(tmp_path)
    assert main(["simulate", "--profile", p, "--schedule", s]) == 0
    out = capsys.readouterr().out
    assert "Predicted latency: 3.000 ms" in out
    assert "a  2.000 ms" in out and "b  3.000 ms" in out


def test_json_report(tmp_path, capsys):
    p, s = _files(tmp_path)
    assert main(["simulate", "--profile", p, "--schedule", s, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format"] == "hax-conn-simulation/1"
    assert report["predicted_ms"] == 3.0
    assert report["dnn_finish_ms"] == {"a": 2.0, "b": 3.0}


def test_throughput_schedule(tmp_path, capsys):
    p, s = _files(tmp_path, dict(SCHEDULE, objective="throughput"))
    assert main(["simulate", "--profile", p, "--schedule", s, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    expected = simulate(parse_profile(DOC), parse_schedule(dict(SCHEDULE,
                                                                objective="throughput")))
    assert report["predicted_ms"] == expected.predicted_ms
    assert report["frame_sets_per_s"] == 1000.0 / expected.predicted_ms


def test_plan_then_simulate_agree(tmp_path, capsys):
    p, s = _files(tmp_path)
    assert main(["plan", "--profile", p, "--output", s, "--json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert main(["simulate", "--profile", p, "--schedule", s, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["predicted_ms"] == planned["predicted_ms"]


def test_schedule_for_another_profile_is_refused(tmp_path, capsys):
    p, s = _files(tmp_path, dict(SCHEDULE, profile_sha256="0" * 64))
    assert main(["simulate", "--profile", p, "--schedule", s]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "planned on another profile" in err


def test_schedule_that_does_not_fit(tmp_path, capsys):
    bad = {"format": "hax-conn-schedule/1", "objective": "latency",
           "dnns": {"b": {"assignment": ["dla"]}}}
    p, s = _files(tmp_path, bad)
    assert main(["simulate", "--profile", p, "--schedule", s]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'dla' cannot run group 0 of b" in err


def test_malformed_schedule(tmp_path, capsys):
    p, s = _files(tmp_path)
    (tmp_path / "s.json").write_text("{")
    assert main(["simulate", "--profile", p, "--schedule", s]) == 2
    assert "malformed JSON" in capsys.readouterr().err

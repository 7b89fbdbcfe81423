"""`hax-conn plan`: the real command, its outputs, and one clear line for each bad input."""

import copy
import re
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hax_conn_core.cli.main import main
from hax_conn_core.resources import data_dir
from hax_conn_core.schedule import parse_schedule
from hax_conn_core.simulator import simulate
from hax_conn_core.profile import load_profile
from test.core.strategies import group, profile_doc

HAX_CONN = Path(sys.executable).with_name("hax-conn")
SHIPPED = data_dir("profiles") / "xavier_googlenet_alexnet.json"
# a's groups: GPU-fast then DLA-fast; b runs on the GPU only.
DOC = profile_doc({"a": [group({"gpu": 1.0, "dla": 3.0}), group({"gpu": 3.0, "dla": 1.0})],
                   "b": [group({"gpu": 1.0})] * 2})


def _write(tmp_path, doc, name="p.json"):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return str(path)


def test_real_command_human_output():
    out = subprocess.run([str(HAX_CONN), "plan", "--profile", str(SHIPPED)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for dnn in ("googlenet", "alexnet"):
        assert any(line.strip().startswith(dnn) for line in text.splitlines()), text
    for name in ("HaX-CoNN", "GPU-only", "GPU&DLA", "Herald", "H2H", "Latency (ms)"):
        assert name in text
    assert "Improvement over the best baseline" in text


def test_json_is_only_the_schedule(tmp_path, capsys):
    profile_path = _write(tmp_path, DOC)
    assert main(["plan", "--profile", profile_path, "--json", "--max-transitions", "1"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    schedule = parse_schedule(doc)
    profile = load_profile(profile_path)
    assert doc["format"] == "hax-conn-schedule/1"
    assert doc["profile_sha256"] == profile.sha256
    assert doc["max_transitions"] == 1
    assert {"time_s", "status"} <= set(doc["solver"])
    assert schedule.assignments["a"] == ("gpu", "dla")
    assert doc["predicted_ms"] == simulate(profile, schedule).predicted_ms


def test_throughput_output_and_files(tmp_path, capsys):
    profile_path = _write(tmp_path, DOC)
    plot, out = tmp_path / "gantt.png", tmp_path / "s.json"
    assert main(["plan", "--profile", profile_path, "--objective", "throughput",
                 "--plot", str(plot), "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Time per frame-set (ms)" in text and "Frame-sets/s" in text
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert parse_schedule(json.loads(out.read_text())).objective == "throughput"


def test_dnns_selects_and_orders(tmp_path, capsys):
    profile_path = _write(tmp_path, DOC)
    assert main(["plan", "--profile", profile_path, "--dnns", "b,a", "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out)["dnns"]) == ["b", "a"]


def test_timeout_warns_on_stderr_and_still_plans(tmp_path, capsys):
    profile_path = _write(tmp_path, DOC)
    assert main(["plan", "--profile", profile_path, "--timeout", "1e-9", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["solver"]["status"] == "timeout"
    assert captured.err.startswith("hax-conn plan: warning: the search stopped at the time limit")


def _without_accelerators(doc):
    del doc["device"]["accelerators"]


def _negative_time(doc):
    doc["dnns"]["a"]["groups"][0]["time_ms"]["gpu"] = -1.0


def _nobody_runs_a_group(doc):
    doc["dnns"]["a"]["groups"][0].update(time_ms={}, demand_gbps={}, transition_ms={})


@pytest.mark.parametrize("change, extra, match", [
    (None, ["--dnns", "a,zebra"], "DNN 'zebra' is not in the profile: expected one of a, b"),
    (None, ["--max-transitions", "-1"], "--max-transitions: expected an integer >= 0"),
    (None, ["--timeout", "0"], "--timeout: expected a finite number of seconds > 0"),
    (_without_accelerators, [], "device.accelerators: required key is missing"),
    (_negative_time, [], r"dnns.a.groups\[0\].time_ms.gpu: expected a finite number >= 1e-06"),
    (_nobody_runs_a_group, [], r"dnns.a.groups\[0\].time_ms: expected at least one accelerator"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, change, extra, match):
    doc = copy.deepcopy(DOC)
    if change is not None:
        change(doc)
    status = main(["plan", "--profile", _write(tmp_path, doc)] + extra)
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("hax-conn plan: error: ") and err.count("\n") == 1, err
    assert re.search(match, err), err


def test_malformed_json_via_the_real_command(tmp_path):
    path = _write(tmp_path, '{"format": "hax-conn-profile/1",')
    out = subprocess.run([str(HAX_CONN), "plan", "--profile", path], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert "malformed JSON" in out.stderr and path in out.stderr


def test_missing_profile_file(capsys):
    assert main(["plan", "--profile", "/no/such/profile.json"]) == 2
    assert "profile file not found" in capsys.readouterr().err


def test_no_prove_stops_at_the_refinement(tmp_path, capsys):
    profile_path = _write(tmp_path, DOC)
    assert main(["plan", "--profile", profile_path, "--no-prove", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["solver"]["status"] == "converged"
    assert "lower_bound_ms" not in doc["solver"]
    assert main(["plan", "--profile", profile_path, "--no-prove"]) == 0
    text = capsys.readouterr().out
    assert "converged" in text and "not proven" in text
    assert main(["plan", "--profile", profile_path, "--prove", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["solver"]["status"] == "optimal"


def test_prove_and_no_prove_together_is_a_usage_error(tmp_path):
    out = subprocess.run([str(HAX_CONN), "plan", "--profile", _write(tmp_path, DOC),
                          "--prove", "--no-prove"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert "not allowed with argument" in out.stderr

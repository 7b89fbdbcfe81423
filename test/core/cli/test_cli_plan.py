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


# --- output a person reads (issue 14) ----------------------------------------------------------

def _plan(capsys, argv):
    status = main([str(a) for a in argv])
    out = capsys.readouterr()
    assert status == 0, out.err
    return out.out, out.err


@pytest.mark.parametrize("extra", [["--timeout", "1e-6"], [], ["--no-prove"],
                                   ["--objective", "throughput", "--timeout", "1e-6"]])
def test_search_line_is_a_sentence_for_every_status(capsys, extra):
    from hax_conn_core.cli.plan import SEARCH_SENTENCES

    out, _ = _plan(capsys, ["plan", "--profile", SHIPPED] + extra)
    line = next(x for x in out.splitlines() if x.startswith("Search: "))
    assert any(line.startswith(f"Search: {sentence} (") for sentence in SEARCH_SENTENCES.values())
    # a raw status would read "Search: timeout (0 Z3 checks, ...)"
    assert not re.match(r"Search: [a-z-]+ \(\d", line), line


def test_counts_are_singular_for_one(tmp_path, capsys):
    one = profile_doc({"a": [group({"gpu": 1.0})]})
    out, _ = _plan(capsys, ["plan", "--profile", _write(tmp_path, one)])
    line = next(x for x in out.splitlines() if x.startswith("Search: "))
    assert re.search(r"\b1 schedule simulated", line), line
    assert "1 schedules" not in out and "1 Z3 checks" not in out


def test_the_comparison_column_says_what_it_is(capsys):
    out, _ = _plan(capsys, ["plan", "--profile", SHIPPED])
    assert "vs it" not in out
    assert "HaX-CoNN saves" in out
    assert re.search(r"HaX-CoNN saves: how much shorter the plan's time is", out)


def _no_dla_for_last_groups(doc):
    for dnn in doc["dnns"].values():
        last = dnn["groups"][-1]
        for key in ("time_ms", "demand_gbps", "transition_ms"):
            last.get(key, {}).pop("dla", None)
    return doc


@pytest.mark.parametrize("dnns", [None, "alexnet", "googlenet,alexnet"])
def test_gpu_dla_equal_to_gpu_only_says_why(tmp_path, capsys, dnns):
    doc = _no_dla_for_last_groups(json.loads(SHIPPED.read_text()))
    argv = ["plan", "--profile", _write(tmp_path, doc)] + (["--dnns", dnns] if dnns else [])
    out, _ = _plan(capsys, argv)
    assert re.search(r"Note: GPU&DLA is the same mapping as GPU-only .*no DNN can run whole on "
                     r"DLA \(DLA cannot run \w+'s group \d+", out), out


def test_gpu_dla_with_a_split_needs_no_note(tmp_path, capsys):
    doc = profile_doc({"a": [group({"gpu": 1.0, "dla": 1.5})] * 2,
                       "b": [group({"gpu": 1.0, "dla": 1.5})] * 2})
    out, _ = _plan(capsys, ["plan", "--profile", _write(tmp_path, doc)])
    assert "GPU&DLA is the same mapping" not in out


@pytest.mark.parametrize("name, written", [("mychart", "mychart.png"), ("c.svg", "c.svg"),
                                           ("c.PDF", "c.PDF"), ("a.b/c", "a.b/c.png")])
def test_plot_reports_the_file_it_wrote(tmp_path, capsys, name, written):
    (tmp_path / "a.b").mkdir()
    out, _ = _plan(capsys, ["plan", "--profile", SHIPPED, "--plot", tmp_path / name])
    assert f"Gantt chart written to {tmp_path / written}\n" in out
    assert (tmp_path / written).stat().st_size > 0


@pytest.mark.parametrize("command", ["plan", "simulate"])
def test_plot_refuses_a_directory_and_a_missing_folder_before_any_work(tmp_path, capsys,
                                                                       command):
    schedule = tmp_path / "s.json"
    assert main(["plan", "--profile", str(SHIPPED), "--output", str(schedule), "--json"]) == 0
    capsys.readouterr()
    extra = ["--schedule", schedule] if command == "simulate" else []
    for target, pattern in ((tmp_path, "is a directory; expected a chart file name"),
                            (f"{tmp_path}/", "is a directory"),
                            (tmp_path / "none" / "g.png", "does not exist"),
                            (tmp_path / "g.xyz", "unknown image format '.xyz'")):
        status = main([command, "--profile", str(SHIPPED), *map(str, extra), "--plot",
                       str(target)])
        err = capsys.readouterr().err
        assert status == 2 and err.count("\n") == 1 and re.search(pattern, err), err
    assert not (tmp_path.parent / f"{tmp_path.name}.png").exists()


def _svg(tmp_path, capsys, objective):
    path = tmp_path / f"{objective}.svg"
    _plan(capsys, ["plan", "--profile", SHIPPED, "--objective", objective, "--plot", path])
    return path.read_text()


@pytest.mark.parametrize("objective", ["latency", "throughput"])
def test_gantt_labels_every_run_and_keeps_colours_under_hatching(tmp_path, capsys, objective):
    from hax_conn_core.gantt import FRAME_SETS_SHOWN
    from hax_conn_core.simulator import simulate as simulate_schedule

    svg = _svg(tmp_path, capsys, objective)
    profile = load_profile(SHIPPED)
    status = main(["plan", "--profile", str(SHIPPED), "--objective", objective, "--json"])
    schedule = parse_schedule(json.loads(capsys.readouterr().out))
    assert status == 0
    runs = [r for r in simulate_schedule(profile, schedule).runs if r.frame < FRAME_SETS_SHOWN]
    for run in runs:  # matplotlib's SVG keeps each text as a comment beside its glyphs
        frame = f"#{run.frame}" if objective == "throughput" else ""
        label = f"{run.dnn}[{run.group}]{frame}"
        assert f"<!-- {label} -->" in svg, label
    # contention is drawn as hatching over the DNN's colour, never as a dark fill over it
    assert "hatch" in svg or "<pattern" in svg
    assert not re.search(r"fill: ?#000000; ?fill-opacity: ?0\.\d", svg)


def test_throughput_gantt_title_says_what_it_shows(tmp_path, capsys):
    svg = _svg(tmp_path, capsys, "throughput")
    assert "<!-- shown: the first 3 frame-sets of the stream from time 0" in svg
    assert "steady state" in svg and "#0 done" in svg


def test_example_charts_in_the_repository_root_are_ignored_by_git():
    root = Path(__file__).resolve().parents[3]
    names = ["gantt.png", "mychart.png", "gantt.svg", "s.json"]
    out = subprocess.run(["git", "check-ignore", *names], cwd=root, capture_output=True,
                         text=True, timeout=60)
    assert sorted(out.stdout.split()) == sorted(names), out.stdout + out.stderr
    readme = (root / "README.md").read_text()
    assert "--plot gantt.png`" not in readme

"""`hax-conn profile` through the real command: measured on onnxruntime, resumed, estimated."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hax_conn_core.models import known_ids
from hax_conn_core.profile import load_profile
from test.core.profiler.nets import SMALL, SOFTMAX_ONLY, write

HAX_CONN = str(Path(sys.executable).parent / "hax-conn")


def run(args, env, timeout=300):
    return subprocess.run([HAX_CONN, "profile", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


@pytest.fixture()
def env(tmp_path):
    return dict(os.environ, HAX_CONN_CACHE=str(tmp_path / "cache"), HAX_CONN_ORT_THREADS="1")


@pytest.fixture()
def nets(tmp_path):
    return [write(tmp_path, "small_a", SMALL), write(tmp_path, "small_b", SMALL)]


def test_two_small_dnns_profile_validly_and_resume(tmp_path, env, nets):
    out = tmp_path / "p.json"
    args = ["--backend", "onnxruntime", "--dnns", ",".join(nets), "--out", str(out),
            "--groups", "4", "--no-contention"]
    # Interrupted: killed once the first DNN's runs are cached.
    process = subprocess.Popen([HAX_CONN, "profile", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env)
    cache = tmp_path / "cache" / "profiles"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if len(list(cache.rglob("*.json"))) >= 4:
            break
        time.sleep(0.05)
    killed = process.poll() is None
    if killed:
        process.send_signal(signal.SIGKILL)
    process.wait(30)
    kept = len(list(cache.rglob("*.json")))
    assert kept >= 1
    done = run(args, env)
    assert done.returncode == 0, done.stderr
    reused = int(done.stdout.split("Measured in")[1].split(";")[1].split()[0])
    assert killed, "the first run ended before it could be interrupted"
    assert reused >= 1, done.stdout
    profile = load_profile(out)
    assert list(profile.dnns) == ["small_a", "small_b"]
    doc = json.loads(out.read_text())
    assert doc["profiler"]["contention"]["calibrated"] is False
    assert "demand_source" in doc and "measured" in doc["device"]["peak_bandwidth_source"]
    for name, info in doc["profiler"]["dnns"].items():
        # Within the tolerance, or the output says it is not.
        if not info["within_tolerance"]:
            assert f"{name}: group times do not sum" in done.stdout
            assert "NOT within 3%" in done.stderr
        for check in info["sum_check"].values():
            assert check["engines_ms"] > 0
    for dnn in profile.dnns.values():
        last = dnn.groups[-1]
        assert not last.runs_on("dla")  # Softmax: not on Xavier's DLA rules
        assert all(g.runs_on("gpu") for g in dnn.groups)
    # A third run measures nothing: everything is cached.
    again = run(args, env)
    assert again.returncode == 0
    assert load_profile(out).sha256 != "" and "0 cached" not in again.stdout


def test_plain_profile_plans_and_reads_back_unchanged(tmp_path, env, nets):
    from hax_conn_core.profile import dump_profile

    out = tmp_path / "plain.json"
    done = run(["--backend", "onnxruntime", "--dnns", nets[0], "--out", str(out), "--groups",
                "3", "--no-contention", "--plain"], env)
    assert done.returncode == 0, done.stderr
    assert dump_profile(load_profile(out)) == out.read_text()
    plan = subprocess.run([HAX_CONN, "plan", "--profile", str(out)], capture_output=True,
                          text=True, timeout=120)
    assert plan.returncode == 0, plan.stderr


def test_a_corrupt_cache_entry_is_measured_again(tmp_path, env, nets):
    args = ["--backend", "onnxruntime", "--dnns", nets[0], "--out", str(tmp_path / "p.json"),
            "--groups", "3", "--no-contention"]
    assert run(args, env).returncode == 0
    entries = sorted((tmp_path / "cache").rglob("*.json"))
    entries[-1].write_text('{"format": "hax-conn-profiler-cache/1", "samples": [1, 2', "utf-8")
    again = run(args, env)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("corrupt profiler cache entry") == 1
    assert "1 corrupt one(s) measured again" in again.stdout


@pytest.mark.parametrize("case, expected", [
    ("softmax_only", r"the dla of device 'cpu' cannot run any of its 1 layer group"),
    ("stressor", r"the stressor reached .* GB/s of the 100000.00 GB/s asked for"),
    ("repeats", r"repeats: expected an integer >= 50"),
    ("estimate_without_device", r"--estimate needs --device"),
    ("unknown_dnn", r"unknown DNN 'nosuchnet'"),
])
def test_bad_input_is_one_clear_line(tmp_path, env, nets, case, expected):
    import re

    args = {"softmax_only": ["--backend", "onnxruntime", "--dnns",
                             write(tmp_path, "soft", SOFTMAX_ONLY)],
            "stressor": ["--backend", "onnxruntime", "--dnns", nets[0], "--groups", "2",
                         "--stress-gbps", "100000"],
            "repeats": ["--backend", "onnxruntime", "--dnns", nets[0], "--repeats", "5"],
            "estimate_without_device": ["--estimate", "--dnns", "alexnet"],
            "unknown_dnn": ["--backend", "onnxruntime", "--dnns", "nosuchnet"]}[case]
    done = run(args + ["--out", str(tmp_path / "x.json")], env)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.startswith("hax-conn")]
    assert len(lines) == 1 and re.search(expected, lines[0]), done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("device", ["xavier-agx", "orin-agx"])
def test_estimate_for_all_twelve_dnns(tmp_path, device):
    out = tmp_path / f"{device}.json"
    done = subprocess.run([HAX_CONN, "profile", "--estimate", "--device", device, "--dnns",
                           ",".join(known_ids()), "--out", str(out)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    profile = load_profile(out)
    assert list(profile.dnns) == list(known_ids())
    assert profile.device.peak_bandwidth_gbps == {"xavier-agx": 136.5,
                                                  "orin-agx": 204.8}[device]
    doc = json.loads(out.read_text())
    assert doc["estimated"] is True and doc["source"].startswith("estimated")
    for dnn in profile.dnns.values():
        assert any(g.runs_on("dla") for g in dnn.groups)

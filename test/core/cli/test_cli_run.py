"""`hax-conn run`: the real command on the onnxruntime backend, its report, refusals, Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hax_conn_core.profile import write_profile
from hax_conn_core.runtime.models import load_model
from test.core.runtime.helpers import profile_for

HAX_CONN = str(Path(sys.executable).with_name("hax-conn"))
PAIR = ("alexnet", "resnet18")


@pytest.fixture(scope="module")
def profile_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "p.json"
    write_profile(profile_for({name: load_model(name) for name in PAIR}, seed=4), path)
    return str(path)


def hax_conn(*args, env=None, timeout=300):
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([HAX_CONN, *args], capture_output=True, text=True, timeout=timeout,
                          env=full_env)


def test_run_plans_runs_and_reports_beside_the_prediction(profile_path, tmp_path):
    done = hax_conn("run", "--profile", profile_path, "--dnns", ",".join(PAIR), "--frames",
                    "6", "--warmup", "1", "--json", env={"HAX_CONN_CACHE": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["frame_sets"] == 6 and report["failed_frame_sets"] == 0
    assert list(report["schedule"]["dnns"]) == list(PAIR)
    assert report["backend"]["backend"] == "onnxruntime"
    assert report["backend"]["device"] == "cpu"
    assert report["predicted_ms"] > 0 and report["measured_ms"] > 0
    for name in PAIR:
        assert report["dnns"][name]["errors"] == 0
        assert report["dnns"][name]["latency_ms"]["count"] == 6
    assert list(tmp_path.glob("engines/*.bin"))  # engines went to the cache


def test_run_a_schedule_file_and_print_a_table(profile_path, tmp_path):
    schedule = tmp_path / "s.json"
    planned = hax_conn("plan", "--profile", profile_path, "--dnns", ",".join(PAIR),
                       "--objective", "throughput", "--output", str(schedule))
    assert planned.returncode == 0, planned.stderr
    done = hax_conn("run", "--profile", profile_path, "--schedule", str(schedule),
                    "--frames", "4", "--no-cache")
    assert done.returncode == 0, done.stderr
    assert "objective throughput" in done.stdout
    assert "frame-set latency" in done.stdout and "alexnet latency" in done.stdout
    assert "Measured time per frame-set" in done.stdout and "predicted" in done.stdout


@pytest.mark.parametrize("args, message", [
    (["--backend", "tpu"], "unknown backend 'tpu'; expected one of onnxruntime, cuda-sm, "
                           "tensorrt"),
    (["--backend", "tensorrt"], "TensorRT"),
    (["--frames", "0"], "--frames: expected an integer >= 1"),
    (["--dnns", "alexnet,vgg16"], "vgg16"),
    (["--precision", "int8"], "int8"),
])
def test_bad_options_are_one_line_and_exit_2(profile_path, args, message):
    done = hax_conn("run", "--profile", profile_path, "--dnns", ",".join(PAIR), "--frames", "2",
                    "--no-cache", *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_ctrl_c_during_a_run_ends_cleanly(profile_path, tmp_path):
    cache = tmp_path / "cache"
    process = subprocess.Popen(
        [HAX_CONN, "run", "--profile", profile_path, "--dnns", ",".join(PAIR), "--frames",
         "100000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, HAX_CONN_CACHE=str(cache)))
    deadline = time.monotonic() + 120
    while not list(cache.glob("engines/*.bin")) and time.monotonic() < deadline:
        time.sleep(0.2)  # engines are built (and cached) just before frames start
    time.sleep(1.5)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err

"""A user's ONNX model through the commands, for real on onnxruntime: `hax-conn profile`
measures it (`--model PATH`, named in `--dnns` by its name) and estimates it beside a paper DNN
(by path in `--dnns`), `plan` and `run` take that profile, and `validate` loads it with
`--model PATH` (docs/own-models.md). The model is the demos' detector (example_models)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hax_conn_core.example_models import write_detector
from hax_conn_core.profile import load_profile

HAX_CONN = str(Path(sys.executable).with_name("hax-conn"))
SHAPE = ["--input-shape", "1x3x64x64"]


def hax_conn(*args, cache):
    env = dict(os.environ, HAX_CONN_CACHE=str(cache))
    return subprocess.run([HAX_CONN, *map(str, args)], capture_output=True, text=True,
                          timeout=600, env=env)


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """The detector (dynamic batch) and a profile measured on onnxruntime."""
    folder = tmp_path_factory.mktemp("own")
    model = write_detector(folder / "Own-Detector.onnx")  # named own_detector
    profile = folder / "own.json"
    done = hax_conn("profile", "--backend", "onnxruntime", "--model", model, *SHAPE,
                    "--dnns", "own_detector", "--groups", "3", "--no-progress", "--out",
                    profile, cache=folder / "cache")
    assert done.returncode == 0, done.stderr
    return folder, model, profile


def test_profile_measures_a_model_given_by_path_and_named_in_dnns(measured):
    _, _, path = measured
    profile = load_profile(path)
    assert list(profile.dnns) == ["own_detector"]  # --dnns named the --model: one DNN
    assert profile.source.startswith("measured by hax-conn profile")
    groups = profile.dnns["own_detector"].groups
    assert groups and all(g.time_ms["gpu"] > 0 for g in groups)


def test_plan_run_and_validate_take_the_profile_and_the_model(measured):
    folder, model, profile = measured
    cache = folder / "cache"
    planned = hax_conn("plan", "--profile", profile, "--json", cache=cache)
    assert planned.returncode == 0, planned.stderr
    assert list(json.loads(planned.stdout)["dnns"]) == ["own_detector"]
    ran = hax_conn("run", "--profile", profile, "--model", model, *SHAPE, "--frames", 3,
                   "--json", cache=cache)
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    assert report["failed_frame_sets"] == 0 and report["frame_sets"] == 3
    assert report["weights"]["own_detector"].startswith("file:Own-Detector.onnx:")
    out = folder / "validate"
    checked = hax_conn("validate", "--profile", profile, "--dnns", "own_detector", "--model",
                       model, *SHAPE, "--objectives", "latency", "--rounds", 1, "--frames",
                       3, "--warmup", 1, "--out-dir", out, cache=cache)
    assert checked.returncode == 0, checked.stderr
    rows = json.loads((out / "validate-onnxruntime.json").read_text())["rows"]
    assert [row["dnns"] for row in rows] == [["own_detector"]]
    for entry in rows[0]["schedules"].values():
        assert entry["measured"]["latency_ms"]["median"] > 0


def test_validate_without_the_model_path_says_so(measured):
    folder, _, profile = measured
    done = hax_conn("validate", "--profile", profile, "--dnns", "own_detector", "--rounds", 1,
                    "--frames", 3, "--out-dir", folder / "v2", cache=folder / "cache")
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "unknown DNN 'own_detector'" in line


def test_estimate_names_the_model_by_path_or_by_name_beside_a_paper_dnn(measured, tmp_path):
    folder, model, _ = measured
    by_path, by_name = tmp_path / "a.json", tmp_path / "b.json"
    for args, out in ((["--dnns", f"{model},alexnet"], by_path),
                      (["--dnns", "alexnet,own_detector", "--model", model], by_name)):
        done = hax_conn("profile", "--estimate", "--device", "cpu", *args, *SHAPE, "--out",
                        out, cache=folder / "cache")
        assert done.returncode == 0, done.stderr
    assert list(load_profile(by_path).dnns) == ["own_detector", "alexnet"]
    assert list(load_profile(by_name).dnns) == ["alexnet", "own_detector"]
    assert "estimate" in load_profile(by_path).source

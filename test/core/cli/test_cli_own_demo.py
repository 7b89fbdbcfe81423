"""`hax-conn demo --own-model`: the users' demo run for real (few frames): it writes the
example detector, estimates, plans and runs it beside a paper DNN on onnxruntime."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

HAX_CONN = str(Path(sys.executable).with_name("hax-conn"))


def hax_conn(*args, cache):
    env = dict(os.environ, HAX_CONN_CACHE=str(cache))
    return subprocess.run([HAX_CONN, *args], capture_output=True, text=True, timeout=600,
                          env=env)


@pytest.mark.parametrize("paper_dnn", ["mobilenet_v1"])
def test_own_model_demo_plans_and_runs_the_model_beside_a_paper_dnn(tmp_path, paper_dnn):
    from hax_conn_core.graph.resolve import resolve_model
    from hax_conn_core.profile import load_profile

    work = tmp_path / "work"
    done = hax_conn("demo", "--own-model", "--paper-dnn", paper_dnn, "--frames", "3",
                    "--workdir", str(work), cache=tmp_path / "cache")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    model = work / "own_detector.onnx"
    # each step is printed as its command, in the flow's order
    steps = [line for line in out.splitlines() if line.startswith("$ hax-conn ")]
    assert [s.split()[2] for s in steps] == ["profile", "plan", "run"]
    assert f"--model {model}" in steps[2] and "--input-shape 1x3x64x64" in steps[2]
    # the profile it planned holds both, and the run used the model's own weights
    profile = load_profile(work / "own_profile.json")
    assert list(profile.dnns) == [paper_dnn, "own_detector"]
    assert f"HaX-CoNN plan for {paper_dnn} + own_detector" in out
    assert f"Ran {paper_dnn} + own_detector on onnxruntime" in out
    assert "own_detector file:own_detector.onnx:" in out
    assert "3 frame-sets measured" in out
    rows = [line for line in out.splitlines() if line.strip().startswith("own_detector latency")]
    assert rows and rows[0].split("│")[-1].strip() == "0"  # no failed frames
    # the file is the documented model: dynamic batch, read with the demo's input shape
    with pytest.raises(Exception, match="dynamic"):
        resolve_model(model).load_graph()
    graph = resolve_model(model, input_shape="1x3x64x64").load_graph()
    assert graph.shape(graph.outputs[0])[0] == 1


def test_own_model_demo_refuses_another_paper_dnn(tmp_path):
    done = hax_conn("demo", "--own-model", "--paper-dnn", "vgg16", cache=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "hax-conn demo: error: --paper-dnn vgg16: expected one of alexnet, mobilenet_v1"]
    assert done.stdout == ""

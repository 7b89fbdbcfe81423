"""`hax-conn run --weights DNN=FILE`: the run uses the file's weights and says so; bad entries
and a caffemodel unlike the prototxt are one line and exit status 2."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hax_conn_core.graph.caffemodel import write_caffemodel
from hax_conn_core.profile import write_profile
from hax_conn_core.runtime.models import load_model
from test.core.runtime.helpers import profile_for

HAX_CONN = str(Path(sys.executable).with_name("hax-conn"))
DNN = "mobilenet_v1"  # the smallest registered DNN (4.2 M weights)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    model = load_model(DNN, seed=2)
    write_profile(profile_for({DNN: model}, target_groups=3), folder / "p.json")
    write_caffemodel(folder / "m.caffemodel", model.weights, model.graph)
    wrong = dict(model.weights)
    first = next(name for name, blobs in wrong.items() if blobs[0].ndim == 4)
    wrong[first] = [np.zeros(wrong[first][0].shape[::-1], np.float32)] + wrong[first][1:]
    write_caffemodel(folder / "wrong.caffemodel", wrong, model.graph)
    return folder, first


def hax_conn(folder, *args):
    return subprocess.run([HAX_CONN, "run", "--profile", str(folder / "p.json"), "--dnns", DNN,
                           "--frames", "2", "--warmup", "0", "--no-cache", *args],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ))


def test_the_report_names_the_weights_file_or_the_seed(files):
    folder, _ = files
    done = hax_conn(folder, "--weights", f"{DNN}={folder / 'm.caffemodel'}", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["weights"][DNN].startswith("file:m.caffemodel:")
    done = hax_conn(folder, "--seed", "4")
    assert done.returncode == 0, done.stderr
    assert f"Weights: {DNN} seeded:4" in done.stdout


@pytest.mark.parametrize("entry, message", [
    ("m.caffemodel", "expected DNN=FILE"),
    ("vgg16=m.caffemodel", "vgg16 is not run; expected one of mobilenet_v1"),
    (f"{DNN}=nope.caffemodel", "no such weights file"),
])
def test_bad_weights_entries_are_one_line_and_exit_2(files, entry, message):
    folder, _ = files
    done = hax_conn(folder, "--weights", entry)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr


def test_a_caffemodel_unlike_the_prototxt_names_the_layer(files):
    folder, layer = files
    done = hax_conn(folder, "--weights", f"{DNN}={folder / 'wrong.caffemodel'}")
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"layer {layer!r}" in lines[0] and "does not match" in lines[0]

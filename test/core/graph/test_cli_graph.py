"""`hax-conn graph`, run as the real command."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from . import nets

REPO = Path(__file__).resolve().parents[3]


def _run(*args):
    return subprocess.run([sys.executable, "-m", "hax_conn_core.cli.main", "graph", *args],
                          capture_output=True, text=True, timeout=120, cwd=REPO)


@pytest.fixture
def chain_file(tmp_path):
    path = tmp_path / "Tiny-Net.prototxt"
    path.write_text(nets.CHAIN)
    return path


def test_json_output_of_a_prototxt_path(chain_file):
    out = _run(str(chain_file), "--groups", "3", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["format"] == "hax-conn-graph/1"
    assert doc["model"] == "tiny_net"
    assert [layer["name"] for layer in doc["layers"]] == [
        "data", "conv1", "relu1", "conv2", "pool", "fc", "prob"]
    assert doc["layers"][4]["output_shape"] == [1, 4, 4, 4]
    assert [cut["after"] for cut in doc["valid_cuts"]] == [2, 3, 4, 5]
    assert len(doc["groups"]) == 3
    assert doc["groups"][-1]["dla_ok"] is False  # Softmax, Xavier rules
    assert doc["layers"][6]["dla_unsupported"] == "dla does not run Softmax layers"
    assert doc["totals"]["params"] == sum(layer["params"] for layer in doc["layers"])
    assert doc["totals"]["bytes_moved"] == sum(g["bytes_moved"] for g in doc["groups"])
    assert doc["groups"][0]["input_bytes"] == 3 * 8 * 8 * 4


def test_tables_for_a_prototxt(chain_file):
    out = _run(str(chain_file), "--device", "orin-agx")
    assert out.returncode == 0, out.stderr
    for text in ("Layers", "Layer groups", "orin-agx", "Valid cuts (4)", "conv2"):
        assert text in out.stdout


def test_registered_id_is_accepted():
    if not (REPO / "prototxts" / "alexnet.prototxt").is_file():
        pytest.skip("prototxts/alexnet.prototxt not generated in this checkout")
    out = _run("alexnet", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["model"] == "alexnet"


@pytest.mark.parametrize("args,pattern", [
    (["no_such_dnn"], "neither a prototxt file nor a known DNN; expected a path or one of"),
    (["missing.prototxt"], "missing.prototxt: no such prototxt file"),
    (["{chain}", "--groups", "0"], "--groups 0; expected an integer >= 1"),
    (["{chain}", "--device", "tx2"], "unknown device 'tx2'"),
])
def test_user_mistakes_exit_2_with_one_line(chain_file, args, pattern):
    out = _run(*[a.replace("{chain}", str(chain_file)) for a in args])
    assert out.returncode == 2
    assert pattern in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_broken_prototxt_is_one_line_with_file_line_and_column(tmp_path):
    path = tmp_path / "bad.prototxt"
    path.write_text(nets.CHAIN + "layer {\n  nme: 1 }\n")
    out = _run(str(path))
    assert out.returncode == 2
    assert f"{path}:9:3:" in out.stderr and "Traceback" not in out.stderr

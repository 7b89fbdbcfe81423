"""`hax-conn demo`: plans the shipped pair with no GPU and no ROS, prints the table."""

import json
import subprocess
import sys
from pathlib import Path

from hax_conn_core.cli.main import main

HAX_CONN = Path(sys.executable).with_name("hax-conn")


def test_demo_prints_the_plan_and_the_baselines():
    out = subprocess.run([str(HAX_CONN), "demo"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(line.strip().startswith("googlenet ") for line in lines), out.stdout
    assert any(line.strip().startswith("alexnet ") for line in lines), out.stdout
    for name in ("HaX-CoNN", "GPU-only", "GPU&DLA", "Herald", "H2H"):
        assert any(line.split("│")[0].strip() == name for line in lines if "│" in line), name
    assert "Improvement over the best baseline" in out.stdout
    # No ROS, no GPU framework needed or loaded.
    probe = subprocess.run(
        [sys.executable, "-c",
         "import sys; from hax_conn_core.cli.main import main; main(['demo']);"
         "bad = [m for m in ('rclpy', 'torch', 'tensorrt') if m in sys.modules];"
         "sys.exit(1 if bad else 0)"],
        capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr


def test_demo_json_and_options(capsys):
    assert main(["demo", "--json", "--objective", "throughput", "--max-transitions", "2"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["objective"] == "throughput" and doc["max_transitions"] == 2
    assert list(doc["dnns"]) == ["googlenet", "alexnet"]


def test_demo_bad_option(capsys):
    assert main(["demo", "--dnns", "googlenet,resnet9"]) == 2
    assert "resnet9" in capsys.readouterr().err

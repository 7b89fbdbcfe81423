"""`hax-conn bringup` as a real subprocess: it comes up, runs, and SIGINT / SIGTERM end it
cleanly (exit status 0, no traceback)."""

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.ros

ROOT = Path(__file__).resolve().parents[2]
HAX_CONN = Path(sys.executable).parent / "hax-conn"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_ends_bringup_without_a_traceback(signum):
    env = dict(os.environ, ROS_DOMAIN_ID=str(random.Random().randint(101, 200)),
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1")
    process = subprocess.Popen([str(HAX_CONN), "bringup", "--config",
                                str(ROOT / "config" / "perception.yaml")], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if any("[gpu_executor]: running" in line for line in lines):
                break
            time.sleep(0.2)
        output = "".join(lines)
        assert process.poll() is None, f"bringup ended early:\n{output}"
        assert "[planner]: schedule 1" in output and "running" in output, output
        process.send_signal(signum)
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reader.join(timeout=10)
    output = "".join(lines)
    assert code == 0, output
    assert "Traceback" not in output, output
    assert "hax-conn bringup: stopped" in output


def test_a_bad_config_is_one_line_and_status_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("planner: [not, a, mapping]\n")
    out = subprocess.run([str(HAX_CONN), "bringup", "--config", str(bad)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert "ros__parameters" in out.stderr and "Traceback" not in out.stderr

"""Linters are tests: flake8 at 99 columns, and nothing newer than Python 3.10 (the Jetson's)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SOURCES = ["hax_conn_core", "hax_conn_ros", "test", "bench", "scripts"]


def _existing(paths):
    return [p for p in paths if (ROOT / p).exists()]


def test_flake8_is_clean():
    out = subprocess.run([str(BIN / "flake8"), *_existing(SOURCES)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"flake8 found problems:\n{out.stdout}{out.stderr}"


def test_code_runs_on_python_310():
    # ROS 2 Humble on JetPack 6 is Python 3.10 (conventions.md, "Target platforms").
    out = subprocess.run([str(BIN / "vermin"), "-q", "--no-tips", "-t=3.10-", "--violations",
                          "--eval-annotations", *_existing(["hax_conn_core", "hax_conn_ros",
                                                            "scripts"])],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and not out.stdout.strip(), (
        f"needs a Python newer than 3.10:\n{out.stdout}{out.stderr}")

"""`make setup` in a broken environment: one line saying which step failed, why, what to do.

These run the real Makefile and scripts/setup.sh against a fresh venv path in a temporary
directory, with the environment broken the way a user's machine can be.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.setup

ROOT = Path(__file__).resolve().parents[2]


def _make_setup(env_overrides, tmp_path, path=None):
    env = dict(os.environ)
    env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)
    env.update(env_overrides)
    if path is not None:
        env["PATH"] = path
    return subprocess.run(["make", "-s", "setup", f"VENV={tmp_path / 'venv'}"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)


def _the_reason(result):
    """The setup script's failure line; make adds its own 'Error 1' line after it."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("setup:")]
    assert len(lines) == 1, f"expected one 'setup:' error line, got:\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


def _path_without(tool, tmp_path):
    """A PATH with every command of the current PATH except `tool`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            target = os.path.join(directory, name)
            if name != tool and not (bin_dir / name).exists() and os.access(target, os.X_OK):
                (bin_dir / name).symlink_to(target)
    assert shutil.which(tool, path=str(bin_dir)) is None
    return str(bin_dir)


def test_missing_cmake(tmp_path):
    result = _make_setup({"HAX_CONN_PYTHON": sys.executable}, tmp_path,
                         path=_path_without("cmake", tmp_path))
    assert result.returncode != 0
    line = _the_reason(result)
    assert line.startswith("setup: step 1 (tools) failed: cmake not found")
    assert "install cmake" in line
    assert not (tmp_path / "venv").exists()  # failed before touching anything


def _python_310(tmp_path):
    """A real Python 3.10 if the machine has one; otherwise an interpreter that reports 3.10."""
    for candidate in (shutil.which("python3.10"), "/usr/bin/python3.10"):
        if candidate and os.path.exists(candidate):
            probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"],
                                   capture_output=True, text=True)
            if probe.returncode == 0 and probe.stdout.strip() == "(3, 10)":
                return candidate
    fake = tmp_path / "python3.10"
    fake.write_text("#!/bin/sh\necho 3.10\n")
    fake.chmod(0o755)
    return str(fake)


def test_unsupported_python(tmp_path):
    result = _make_setup({"HAX_CONN_PYTHON": _python_310(tmp_path)}, tmp_path)
    assert result.returncode != 0
    line = _the_reason(result)
    assert line.startswith("setup: step 1 (tools) failed: Python 3.10")
    assert "3.11 and 3.12" in line


def test_no_network_for_pip(tmp_path):
    # A package index nobody listens on, no local wheels, no cache: what a machine offline sees.
    offline = {
        "HAX_CONN_PYTHON": sys.executable,
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "PIP_EXTRA_INDEX_URL": "",
        "PIP_FIND_LINKS": "",
        "PIP_NO_CACHE_DIR": "1",
        "PIP_RETRIES": "0",
        "PIP_DEFAULT_TIMEOUT": "3",
    }
    result = _make_setup(offline, tmp_path)
    assert result.returncode != 0
    line = _the_reason(result)
    assert line.startswith("setup: step 3 (Python packages")
    assert "could not reach the package index (no network?)" in line
    assert "pip.log" in line

"""scripts/device_profile.py's flow on the CPU (the same code the GPU machine runs, with
``--backend onnxruntime``): a time budget stops it cleanly (status 3), the rerun with the cache
finishes; the ncu pass without ncu says so in each file; merge makes one profile."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from hax_conn_core.profile import load_profile
from test.core.profiler.nets import SMALL, write

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = str(ROOT / "scripts" / "device_profile.py")


def script(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(ROOT), HAX_CONN_ORT_THREADS="1")
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=ROOT)


def test_budget_stop_resume_ncu_fallback_and_merge(tmp_path):
    nets = ",".join(write(tmp_path, name, SMALL) for name in ("small_a", "small_b"))
    cache, out = tmp_path / "cache", tmp_path / "profiles"
    common = ["--backend", "onnxruntime", "--device", "cpu", "--dnns", nets]
    first = script("profile", *common, "--cache", str(cache), "--out", str(out),
                   "--groups", "3", "--time-budget-s", "8")
    assert first.returncode in (0, 3), first.stderr
    if first.returncode == 3:
        assert "INCOMPLETE: time budget of 8 s reached" in first.stderr
        assert "rerun the same command" in first.stderr
    kept = len(list(cache.rglob("*.json")))
    second = script("profile", *common, "--cache", str(cache), "--out", str(out),
                    "--groups", "3", "--time-budget-s", "300", "--log", str(tmp_path / "log"))
    assert second.returncode == 0, second.stderr
    assert "done: 2 profile(s)" in (tmp_path / "log").read_text()
    paths = sorted(out.glob("cpu_small_*.json"))
    assert [p.name for p in paths] == ["cpu_small_a.json", "cpu_small_b.json"]
    for path in paths:
        doc = json.loads(path.read_text())
        assert doc["profiler"]["contention"]["calibrated"]
        assert "device_profile.py profile" in doc["profiler"]["command"]
        load_profile(path)
    if first.returncode == 3 and kept:
        assert len(list(cache.rglob("*.json"))) >= kept  # nothing measured was thrown away

    ncu = script("ncu", *common, "--profiles", str(out))
    assert ncu.returncode == 0, ncu.stderr
    if shutil.which("ncu") is None:
        for path in paths:
            doc = json.loads(path.read_text())
            assert "no DRAM counters: ncu not found" in doc["demand_source"]
            load_profile(path)
    merged = tmp_path / "all.json"
    done = script("merge", *common, "--profiles", str(out), "--out", str(merged))
    assert done.returncode == 0, done.stderr
    assert list(load_profile(merged).dnns) == ["small_a", "small_b"]
    plain = tmp_path / "plain.json"
    done = script("merge", *common, "--profiles", str(out), "--out", str(plain), "--plain")
    assert done.returncode == 0, done.stderr
    from hax_conn_core.profile import dump_profile

    shipped = load_profile(plain)
    assert dump_profile(shipped) == plain.read_text()  # the shipped profiles' layout
    assert "group sum vs engines" in json.loads(plain.read_text())["source"]

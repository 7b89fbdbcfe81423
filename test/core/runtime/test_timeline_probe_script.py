"""scripts/device_timeline_probe.py on the CPU (``--backend onnxruntime``: the host steps, no GPU
times): every executor step, upload and download is stamped in the order the runtime makes
them, for the pair and for each DNN alone, beside the simulator's timeline."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PROFILE = ROOT / "profiles" / "cpu_alexnet_googlenet_resnet18_mobilenet_v1.json"


def test_the_probe_stamps_each_step_in_order(tmp_path):
    schedule = tmp_path / "plan.json"
    schedule.write_text(json.dumps({
        "format": "hax-conn-schedule/1", "objective": "latency",
        "dnns": {"resnet18": {"assignment": ["gpu"] * 10},
                 "mobilenet_v1": {"assignment": ["dla"] * 4 + ["gpu"]}}}))
    out, stats = tmp_path / "timeline.json", tmp_path / "cprofile.txt"
    env = dict(os.environ, PYTHONPATH=str(ROOT), HAX_CONN_ORT_THREADS="1")
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "device_timeline_probe.py"), "--backend",
         "onnxruntime", "--profile", str(PROFILE), "--schedule", str(schedule), "--alone",
         "--frames", "3", "--warmup", "1", "--out", str(out), "--cprofile", str(stats)],
        capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    cases = json.loads(out.read_text())["cases"]
    assert set(cases) == {"plan.json", "plan.json resnet18 alone", "plan.json mobilenet_v1 alone"}
    pair = cases["plan.json"]
    m = pair["measured_median_ms"]
    for dnn, acc in (("resnet18", "gpu"), ("mobilenet_v1", "dla")):
        step = f"{dnn}:0@{acc}"
        assert m[f"{step} step in"] <= m[f"{step} from_host in"] <= m[f"{step} from_host out"] \
            <= m[f"{step} step out"] <= m[f"to_host {dnn} in"] <= m[f"to_host {dnn} out"] \
            <= m["finished"]
    for dnn, groups in (("resnet18", 10), ("mobilenet_v1", 5)):  # segments cover the groups
        ranges = sorted(r for key, r in pair["segments"].items() if key.startswith(dnn + ":"))
        assert [g for first, last in ranges for g in range(first, last + 1)] == \
            list(range(groups)), (dnn, ranges)
    assert "mobilenet_v1 group 4@gpu" in pair["simulated_ms"]
    assert not any(key.endswith("gpu start") for key in m)  # no GPU events on the CPU
    assert "executors" in stats.read_text()

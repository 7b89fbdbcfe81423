"""`hax-conn validate`: the real command (a Z3 plan, the baselines, onnxruntime through the
executors) on the shipped CPU profile, the bundle path without z3, and one clear line for each
bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hax_conn_core.profile import load_profile
from hax_conn_core.resources import data_dir
from hax_conn_core.schedule import Schedule
from hax_conn_core.simulator import simulate

HAX_CONN = str(Path(sys.executable).with_name("hax-conn"))
CPU = str(data_dir("profiles") / "cpu_alexnet_googlenet_resnet18_mobilenet_v1.json")
XAVIER = str(data_dir("profiles") / "xavier_googlenet_alexnet.json")
PAIR = "resnet18,mobilenet_v1"
LABELS = ["HaX-CoNN", "GPU-only", "GPU&DLA", "Herald", "H2H"]
SMALL = ["--rounds", "1", "--frames", "3", "--warmup", "1"]


def hax_conn(*args, cache, timeout=600):
    env = dict(os.environ, HAX_CONN_CACHE=str(cache))
    return subprocess.run([HAX_CONN, "validate", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    out = tmp_path_factory.mktemp("validate")
    done = hax_conn("--profile", CPU, "--dnns", PAIR, *SMALL, "--out-dir", str(out),
                    cache=out / "cache")
    assert done.returncode == 0, done.stderr
    return out, done


def test_table_json_and_chart_come_out(measured):
    out, done = measured
    for suffix in ("json", "md", "png"):
        assert (out / f"validate-onnxruntime.{suffix}").stat().st_size > 0
    assert (out / "validate-onnxruntime.png").read_bytes()[:4] == b"\x89PNG"
    for heading in ("resnet18 + mobilenet_v1, latency", "resnet18 + mobilenet_v1, throughput",
                    "latency pred (ms)", "frame-sets/s pred", "error no-cont."):
        assert heading in done.stdout
    assert "Error, all (" in done.stdout and "without contention: median |error|" in done.stdout
    page = (out / "validate-onnxruntime.md").read_text()
    for label in LABELS:
        assert f"| {label}" in page


def test_the_json_holds_predictions_that_are_the_simulators_and_real_measurements(measured):
    out, _ = measured
    report = json.loads((out / "validate-onnxruntime.json").read_text())
    assert report["format"] == "hax-conn-validate/1"
    assert report["backend"]["backend"] == "onnxruntime"
    assert report["machine_load"]["cores"] >= 1  # how busy the machine was is on record
    profile = load_profile(CPU).subset(PAIR.split(","))
    assert [row["objective"] for row in report["rows"]] == ["latency", "throughput"]
    for row in report["rows"]:
        assert list(row["schedules"]) == LABELS
        assert row["best_baseline"] in LABELS[1:]
        for label, entry in row["schedules"].items():
            schedule = Schedule(row["objective"], {k: tuple(v) for k, v in
                                                   entry["assignment"].items()},
                                frames_in_flight=max(1, row["frames_in_flight"]))
            figure = "ms_per_frame_set" if row["objective"] == "throughput" else "latency_ms"
            assert entry["predicted"][figure] == pytest.approx(
                simulate(profile, schedule).predicted_ms)
            assert entry["predicted_no_contention"][figure] == pytest.approx(
                simulate(profile, schedule, contention=False).predicted_ms)
            measured_ms = entry["measured"][figure]["median"]
            assert measured_ms > 0
            assert entry["error"]["objective"] == pytest.approx(
                entry["predicted"][figure] / measured_ms - 1)
    assert report["summary"]["all"]["schedules"] >= 2


def test_the_report_draws_again_from_its_json(measured, tmp_path):
    out, _ = measured
    done = hax_conn("--from-json", str(out / "validate-onnxruntime.json"), "--out-dir",
                    str(tmp_path), "--name", "again", cache=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "again.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "again.md").read_text().startswith("# Validation")


BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("z3", "rclpy", "hax_conn_ros"):
            raise ImportError(f"blocked: {name}")
sys.meta_path.insert(0, Block())
from hax_conn_core.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_bundle_planned_here_is_measured_where_there_is_no_z3(tmp_path):
    bundle = tmp_path / "bundle"
    done = hax_conn("--profile", CPU, "--dnns", PAIR, "--objectives", "latency",
                    "--write-schedules", str(bundle), cache=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (bundle / "bundle.json").exists() and not list(tmp_path.glob("validate-*"))
    # drop a baseline: it is computed where the bundle is read, without z3
    manifest = json.loads((bundle / "bundle.json").read_text())
    del manifest["sets"][0]["schedules"]["H2H"]
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    env = dict(os.environ, HAX_CONN_CACHE=str(tmp_path))
    run = subprocess.run([sys.executable, "-c", BLOCK, "validate", "--profile", CPU,
                          "--schedules", str(bundle), *SMALL, "--out-dir", str(tmp_path),
                          "--json"], capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert [row["objective"] for row in report["rows"]] == ["latency"]
    assert list(report["rows"][0]["schedules"]) == LABELS


@pytest.fixture(scope="module")
def cpu_bundle(tmp_path_factory):
    where = tmp_path_factory.mktemp("bundle")
    done = hax_conn("--profile", CPU, "--dnns", PAIR, "--objectives", "latency",
                    "--write-schedules", str(where), cache=where)
    assert done.returncode == 0, done.stderr
    return where


@pytest.mark.parametrize("args, message", [
    (["--profile", CPU, "--dnns", "foonet,resnet18"], "unknown DNN 'foonet'"),
    (["--profile", CPU, "--dnns", "vgg19,resnet18"], "'vgg19' is not in the profile"),
    (["--profile", CPU, "--dnns", PAIR, "--objectives", "latency,speed"],
     "--objectives: 'speed'"),
    (["--profile", XAVIER, "--schedules", "{bundle}"], "is not in the profile"),
    (["--profile", CPU, "--schedules", "{bundle}", "--dnns", "alexnet,googlenet"],
     "the bundle has no schedules for alexnet+googlenet"),
    (["--profile", CPU, "--schedules", "{bundle}", "--objectives", "throughput"],
     "the bundle has no throughput schedules"),
    (["--profile", CPU, "--dnns", PAIR, "--rounds", "0"], "--rounds >= 1"),
    (["--profile", CPU], "--dnns: required unless --schedules"),
    (["--dnns", PAIR], "--profile: required"),
    (["--profile", CPU, "--dnns", PAIR, "--out-dir", CPU], "--out-dir "),
    (["--from-json", CPU], "format: expected \"hax-conn-validate/1\""),
])
def test_bad_input_is_one_clear_line_and_exit_2(args, message, cpu_bundle, tmp_path):
    args = [a.replace("{bundle}", str(cpu_bundle)) for a in args]
    if "--out-dir" not in args:
        args += ["--out-dir", str(tmp_path)]
    done = hax_conn(*args, cache=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hax-conn validate: error: "), lines
    assert message in lines[0]
    assert not list(tmp_path.glob("validate-*"))


def test_a_tampered_schedule_file_is_refused(cpu_bundle, tmp_path):
    bundle = tmp_path / "b"
    bundle.mkdir()
    for f in cpu_bundle.glob("*.json"):
        (bundle / f.name).write_text(f.read_text())
    path = bundle / "resnet18-mobilenet_v1.latency.herald.json"
    doc = json.loads(path.read_text())
    doc["dnns"]["mobilenet_v1"]["assignment"][-1] = "npu"
    path.write_text(json.dumps(doc))
    done = hax_conn("--profile", CPU, "--schedules", str(bundle), cache=tmp_path)
    assert done.returncode == 2
    assert "herald.json: dnns.mobilenet_v1.assignment[4]: unknown accelerator 'npu'" in \
        done.stderr


DEVICE_LIKE = """
import runpy, sys
class Block:  # what the GPU machine lacks
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("z3", "rclpy", "hax_conn_ros", "rich", "matplotlib"):
            raise ImportError(f"blocked: {name}")
sys.meta_path.insert(0, Block())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_the_device_script_measures_a_bundle_without_z3_rich_or_matplotlib(
        cpu_bundle, tmp_path):
    script = Path(__file__).resolve().parents[3] / "scripts" / "device_validate.py"
    env = dict(os.environ, HAX_CONN_CACHE=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", DEVICE_LIKE, str(script), "--profile", CPU,
                           "--schedules", str(cpu_bundle), "--out", str(tmp_path / "out"),
                           "--backend", "onnxruntime", "--rounds", "1", "--frames", "2",
                           "--warmup", "1"], capture_output=True, text=True, timeout=600,
                          env=env)
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["validate-onnxruntime-resnet18-mobilenet_v1.json",
                     "validate-onnxruntime-resnet18-mobilenet_v1.md",
                     "validate-onnxruntime.json", "validate-onnxruntime.md"]
    assert "needs matplotlib" in done.stderr  # the chart is left to a machine that has it
    joined = json.loads((tmp_path / "out" / "validate-onnxruntime.json").read_text())
    assert joined["command"].startswith("PYTHONPATH=. python3 scripts/device_validate.py")
    assert [row["objective"] for row in joined["rows"]] == ["latency"]
    # plain-text table in place of rich's
    assert "HaX-CoNN" in done.stdout and "latency pred (ms)" in done.stdout

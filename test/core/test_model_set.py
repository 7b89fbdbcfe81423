"""ModelSet: users' models registered and read once; a bad or unknown one is reported once and
left out of schedules while the others run."""

import onnx

from hax_conn_core.model_set import ModelSet
from hax_conn_core.profile import load_profile
from hax_conn_core.schedule import Schedule
from test.core.graph.onnx_nets import classifier_net

PROFILE = "profiles/cpu_alexnet_googlenet_resnet18_mobilenet_v1.json"


def test_a_good_model_registers_and_a_truncated_one_is_kept_with_its_reason(tmp_path):
    good = tmp_path / "ms_classifier.onnx"
    onnx.save(classifier_net(), str(good))
    bad = tmp_path / "ms_truncated.onnx"
    bad.write_bytes(good.read_bytes()[:200])
    lines = []
    models = ModelSet(log=lines.append)
    name = models.name_of(str(good))
    assert name == "ms_classifier"
    assert models.register(str(good))
    models.load([name])
    assert models.runnable(name) and not models.bad
    # Named and registered by path without reading it; reading it at load fails.
    assert models.name_of(str(bad)) == "ms_truncated" and models.register(str(bad))
    models.load(["ms_truncated"])
    assert list(models.bad) == ["ms_truncated"] and "not an ONNX model" in models.bad[
        "ms_truncated"]
    assert not models.runnable("ms_truncated") and models.runnable(name)
    assert len(lines) == 1 and "ms_truncated not loaded" in lines[0]


def test_trim_drops_what_cannot_run_and_keeps_the_rest():
    profile = load_profile(PROFILE)
    groups = {n: len(profile.dnns[n].groups) for n in ("alexnet", "resnet18")}
    schedule = Schedule("latency", {"alexnet": ("gpu",) * groups["alexnet"],
                                    "nosuch": ("gpu",),
                                    "resnet18": ("dla",) * groups["resnet18"]},
                        profile_sha256="ab" * 32)
    lines = []
    models = ModelSet(log=lines.append)
    trimmed, part, dropped = models.trim(schedule, profile)
    assert dropped == ["nosuch"] and list(trimmed.assignments) == ["alexnet", "resnet18"]
    assert trimmed.profile_sha256 is None and list(part.dnns) == ["alexnet", "resnet18"]
    assert "nosuch" in models.bad and len(lines) == 1
    # Reported once: the next schedule naming it logs nothing new.
    models.trim(schedule, profile)
    assert len(lines) == 1
    only_bad = Schedule("latency", {"nosuch": ("gpu",)})
    assert models.trim(only_bad, profile)[0] is None
    untouched = Schedule("latency", {"alexnet": ("gpu",) * groups["alexnet"]})
    assert models.trim(untouched, profile) == (untouched, profile, [])

"""Every profile shipped in profiles/ validates, hashes stably and holds its published numbers."""

import json

import pytest

from hax_conn_core.errors import ScheduleError
from hax_conn_core.profile import dump_profile, load_profile, parse_profile
from hax_conn_core.resources import data_dir
from hax_conn_core.schedule import check_schedule_fits, describe_assignment, Schedule

PROFILES = sorted(data_dir("profiles").glob("*.json"))
PROFILE_PATH = data_dir("profiles") / "xavier_googlenet_alexnet.json"


def test_there_are_shipped_profiles():
    assert any(p.name == "xavier_googlenet_alexnet.json" for p in PROFILES)


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_validates_and_hash_is_stable(path):
    profile = load_profile(path)
    assert load_profile(path).sha256 == profile.sha256
    # Re-indented, keys reversed: the same content, the same hash.
    doc = json.loads(path.read_text())
    doc = {k: doc[k] for k in reversed(list(doc))}
    relaid = parse_profile(json.loads(json.dumps(doc, indent=7, sort_keys=True)))
    assert relaid.sha256 == profile.sha256
    for dnn in profile.dnns.values():
        assert dnn.groups[0].layers[0] == 0


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_is_written_in_the_writers_layout(path):
    # Shipped files look like what write_profile produces (one group per line), so that a
    # re-written profile shows only real changes in a diff.
    assert dump_profile(load_profile(path)) == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_groups_end_at_valid_cuts_of_our_prototxts(path):
    # A profile's group boundaries are the only places a schedule can transition, so each must
    # be a valid cut of the DNN as we ship it (conventions.md, "Layer indices and cuts").
    from hax_conn_core.graph.cuts import valid_cuts
    from hax_conn_core.graph.prototxt import load_prototxt

    checked = 0
    for name, dnn in load_profile(path).dnns.items():
        prototxt = data_dir("prototxts") / f"{name}.prototxt"
        if not prototxt.exists():
            continue
        graph = load_prototxt(prototxt)
        assert dnn.groups[-1].layers[1] == len(graph.layers) - 1, name
        cuts = set(valid_cuts(graph))
        bad = [g.layers[1] for g in dnn.groups[:-1] if g.layers[1] not in cuts]
        assert not bad, f"{name}: groups end at layers {bad}, which are not valid cuts"
        checked += 1
    assert checked, "no DNN of this profile has a shipped prototxt to check against"


def test_xavier_googlenet_alexnet_holds_the_artifacts_numbers():
    # HaX-CoNN artifact, src/z3_solver_multi_dnn.py: nn1_times_acc1/2 (GoogleNet GPU/DLA),
    # nn2_times_acc1/2 (AlexNet), nn1_trans_acc1/2 (transition costs, "dummy").
    profile = load_profile(PROFILE_PATH)
    googlenet, alexnet = profile.dnns["googlenet"], profile.dnns["alexnet"]
    assert [g.time_ms["gpu"] for g in googlenet.groups] == [
        0.35, 0.15, 0.20, 0.11, 0.12, 0.13, 0.15, 0.19, 0.12, 0.20]
    # The last groups hold Softmax `prob`, which Xavier's DLA cannot run: the artifact's DLA
    # figures for them (0.36 and 0.13 ms) are left out of the profile (conventions.md).
    assert [g.time_ms["dla"] for g in googlenet.groups[:-1]] == [
        0.75, 0.34, 0.45, 0.37, 0.31, 0.33, 0.31, 0.35, 0.27]
    assert [g.time_ms["gpu"] for g in alexnet.groups] == [
        0.15, 0.06, 0.22, 0.08, 0.16, 0.70, 0.32, 0.10]
    assert [g.time_ms["dla"] for g in alexnet.groups[:-1]] == [
        0.41, 0.20, 0.45, 0.22, 0.41, 1.91, 0.68]
    assert not googlenet.groups[-1].runs_on("dla") and not alexnet.groups[-1].runs_on("dla")
    assert [g.transition_ms["gpu"] for g in googlenet.groups[:-1]] == [
        0.05, 0.07, 0.06, 0.01, 0.05, 0.02, 0.06, 0.03, 0.02]
    assert profile.device.peak_bandwidth_gbps == 136.5
    # GoogleNet: 143 layers (prototxt order, Input = 0); AlexNet: 24.
    assert googlenet.groups[-1].layers[1] == 142 and alexnet.groups[-1].layers[1] == 23
    # The artifact's expected schedule (README, step 7): GoogleNet GPU -> DLA after its 4th
    # group (inception_4a), AlexNet DLA -> GPU after its first group (conv1 + relu1).
    # It ends GoogleNet on the DLA (TensorRT ran `prob` on the GPU behind its back, a hidden
    # second transition); with GPU fallback off it does not fit this profile, and says why.
    expected = Schedule("latency", {"googlenet": ("gpu",) * 4 + ("dla",) * 6,
                                    "alexnet": ("dla",) + ("gpu",) * 7})
    with pytest.raises(ScheduleError, match=r"googlenet.*group 9.*dla|googlenet.*dla.*9"):
        check_schedule_fits(expected, profile)
    assert describe_assignment(googlenet, expected.assignments["googlenet"]) == \
        "googlenet starts on GPU, transitions to DLA after layer 53"
    assert describe_assignment(alexnet, expected.assignments["alexnet"]) == \
        "alexnet starts on DLA, transitions to GPU after layer 2"

"""validation.bundle: schedules planned here (real Z3), written, read back where z3 is not
needed, and every way a bundle can disagree with the profile refused with the file named."""

import json

import pytest

from hax_conn_core.baselines import all_baselines, BASELINE_NAMES
from hax_conn_core.errors import ScheduleError
from hax_conn_core.profile import load_profile
from hax_conn_core.resources import data_dir
from hax_conn_core.validation import bundle

CPU = data_dir("profiles") / "cpu_alexnet_googlenet_resnet18_mobilenet_v1.json"
XAVIER = data_dir("profiles") / "xavier_googlenet_alexnet.json"
PAIR = ("resnet18", "mobilenet_v1")


@pytest.fixture(scope="module")
def profile():
    return load_profile(CPU)


@pytest.fixture(scope="module")
def planned(profile):
    return bundle.plan_sets(profile, [PAIR], ["latency", "throughput"], frames_in_flight=3)


@pytest.fixture
def written(tmp_path, profile, planned):
    bundle.write_bundle(tmp_path / "b", profile, planned, command="test")
    return tmp_path / "b"


def test_plans_and_baselines_round_trip(written, profile, planned):
    loaded = bundle.load_bundle(written, profile)
    assert [(s.dnns, s.objective) for s in loaded] == [(PAIR, "latency"), (PAIR, "throughput")]
    for before, after in zip(planned, loaded):
        assert list(after.schedules)[0] == bundle.PLAN_LABEL
        assert set(after.schedules) == {bundle.PLAN_LABEL, *BASELINE_NAMES}
        for label, schedule in before.schedules.items():
            again = after.schedules[label]
            assert dict(again.assignments) == dict(schedule.assignments), label
            assert again.objective == schedule.objective
            assert again.frames_in_flight == schedule.frames_in_flight
    assert loaded[1].schedules[bundle.PLAN_LABEL].frames_in_flight == 3
    # the manifest itself is readable as documented
    manifest = json.loads((written / bundle.MANIFEST).read_text())
    assert manifest["format"] == bundle.BUNDLE_FORMAT
    assert manifest["profile_sha256"] == profile.sha256


def test_the_manifest_file_itself_can_be_named(written, profile):
    assert len(bundle.load_bundle(written / bundle.MANIFEST, profile)) == 2


def test_a_bundle_of_a_subset_profile_loads_on_the_whole_one(tmp_path, profile):
    sub = profile.subset(list(PAIR))
    sets = bundle.plan_sets(sub, [PAIR], ["latency"])
    bundle.write_bundle(tmp_path, sub, sets)
    assert bundle.load_bundle(tmp_path, profile)[0].dnns == PAIR


def test_another_profile_is_refused_naming_the_file(written):
    with pytest.raises(ScheduleError, match=r"resnet18-mobilenet_v1\.latency\.hax-conn\.json"
                                            r".*not in the profile"):
        bundle.load_bundle(written, load_profile(XAVIER))


def test_a_schedule_that_does_not_fit_the_profile_is_refused(written, profile):
    path = written / "resnet18-mobilenet_v1.latency.herald.json"
    doc = json.loads(path.read_text())
    doc["dnns"]["resnet18"]["assignment"].pop()
    doc.pop("profile_sha256")
    path.write_text(json.dumps(doc))
    with pytest.raises(ScheduleError, match=r"herald\.json: dnns\.resnet18\.assignment: "
                                            r"expected 10 accelerators"):
        bundle.load_bundle(written, profile)


def test_a_schedule_planned_on_another_profile_is_refused(written, profile):
    path = written / "resnet18-mobilenet_v1.throughput.h2h.json"
    doc = json.loads(path.read_text())
    doc["profile_sha256"] = "0" * 64
    path.write_text(json.dumps(doc))
    with pytest.raises(ScheduleError, match="planned on another profile"):
        bundle.load_bundle(written, profile)


def test_a_schedule_listed_under_the_wrong_objective_is_refused(written, profile):
    manifest = json.loads((written / bundle.MANIFEST).read_text())
    manifest["sets"][0]["schedules"]["H2H"] = "resnet18-mobilenet_v1.throughput.h2h.json"
    (written / bundle.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ScheduleError, match="a throughput schedule of resnet18\\+mobilenet_v1; "
                                            "the bundle lists it as latency"):
        bundle.load_bundle(written, profile)


@pytest.mark.parametrize("change, message", [
    (lambda m: m["sets"][0]["schedules"].pop("HaX-CoNN"), "expected a 'HaX-CoNN' schedule"),
    (lambda m: m.update(format="hax-conn-schedule-bundle/9"), "version"),
    (lambda m: m["sets"][0].update(objective="speed"), "objective: expected latency or"),
    (lambda m: m.update(sets=[]), "sets: expected a non-empty list"),
])
def test_a_bad_manifest_is_one_clear_error(written, profile, change, message):
    manifest = json.loads((written / bundle.MANIFEST).read_text())
    change(manifest)
    (written / bundle.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ScheduleError, match=message):
        bundle.load_bundle(written, profile)


def test_no_bundle_there(tmp_path, profile):
    with pytest.raises(ScheduleError, match="no bundle.json there"):
        bundle.load_bundle(tmp_path, profile)


def test_missing_baselines_are_computed_without_the_planner(profile, planned):
    only_plan = bundle.ScheduleSet(PAIR, "throughput",
                                   {bundle.PLAN_LABEL: planned[1].schedules[bundle.PLAN_LABEL]})
    full = bundle.with_baselines(profile, only_plan)
    expected = all_baselines(profile.subset(list(PAIR)), "throughput", frames_in_flight=3)
    assert list(full.schedules) == [bundle.PLAN_LABEL] + [b.name for b in expected]
    for b in expected:
        assert dict(full.schedules[b.name].assignments) == dict(b.schedule.assignments)


def test_select_picks_sets_and_names_what_is_missing(planned):
    assert bundle.select(planned, [], ["throughput"]) == [planned[1]]
    assert bundle.select(planned, [PAIR], ["latency"]) == [planned[0]]
    assert bundle.select(planned, [PAIR]) == planned  # every objective it has
    with pytest.raises(ScheduleError, match="no schedules for alexnet\\+resnet18: it "
                                            "has resnet18\\+mobilenet_v1 latency"):
        bundle.select(planned, [("alexnet", "resnet18")], ["latency"])
    with pytest.raises(ScheduleError, match="no throughput schedules for resnet18"):
        bundle.select(planned[:1], [PAIR], ["throughput"])


def test_parse_sets():
    assert bundle.parse_sets("a,b; c,d,e") == [("a", "b"), ("c", "d", "e")]
    with pytest.raises(Exception, match="expected comma-separated DNN names"):
        bundle.parse_sets("a,,b")

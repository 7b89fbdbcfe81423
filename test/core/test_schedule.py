"""Reading, validating and writing hax-conn-schedule/1; fitting a schedule to a profile."""

import copy
import json

import pytest

from hax_conn_core.errors import ProfileError, ScheduleError
from hax_conn_core.schedule import (check_schedule_fits, describe_assignment, dump_schedule,
                                    load_schedule, parse_schedule, Schedule, schedule_to_dict,
                                    write_schedule)
from test.core.strategies import group, make_profile

SPEC_EXAMPLE = {  # the example of docs/formats.md
    "format": "hax-conn-schedule/1", "objective": "latency",
    "dnns": {"googlenet": {"assignment": ["gpu"] * 4 + ["dla"] * 6},
             "alexnet": {"assignment": ["dla"] + ["gpu"] * 7}},
    "predicted_ms": 1.93}


def _doc():
    return copy.deepcopy(SPEC_EXAMPLE)


def _profile():
    both = {"gpu": 1.0, "dla": 2.0}
    return make_profile({"googlenet": [group(both) for _ in range(10)],
                         "alexnet": [group(both) for _ in range(7)] + [group({"gpu": 1.0})]},
                        layers_per_group=3)


def test_reads_the_spec_example_keeping_priority_order():
    s = parse_schedule(_doc())
    assert list(s.assignments) == ["googlenet", "alexnet"]
    assert s.assignments["alexnet"] == ("dla",) + ("gpu",) * 7
    assert s.predicted_ms == 1.93 and s.frames_in_flight == 2 and s.max_transitions is None
    assert s.transitions("googlenet") == 1 and s.max_transitions_used() == 1


def test_round_trip():
    s = Schedule("throughput", {"b": ("gpu", "dla", "gpu"), "a": ("dla",)}, predicted_ms=2.5,
                 max_transitions=2, frames_in_flight=3, profile_sha256="ab" * 32,
                 solver={"status": "optimal", "time_s": 0.5})
    doc = json.loads(json.dumps(schedule_to_dict(s)))
    assert list(doc["dnns"]) == ["b", "a"]
    again = parse_schedule(doc)
    assert again == s and list(again.assignments) == ["b", "a"]
    assert s.with_prediction(1.0).predicted_ms == 1.0


def test_dump_and_write(tmp_path):
    s = Schedule("throughput", {"b": ("gpu", "dla"), "a": ("dla",)}, predicted_ms=2.5,
                 solver={"status": "optimal"})
    text = dump_schedule(s)
    assert parse_schedule(json.loads(text)) == s
    assert '"b": {"assignment": ["gpu", "dla"]}' in text.splitlines()[4]
    write_schedule(s, tmp_path / "s.json")
    assert load_schedule(tmp_path / "s.json") == s
    with pytest.raises(ScheduleError, match="objective: expected"):
        dump_schedule(Schedule("fast", {"a": ("gpu",)}))


BAD = [
    (lambda d: d.update(format="hax-conn-schedule/9"),
     r'format: version "hax-conn-schedule/9" is not supported: this hax_conn reads '
     r'"hax-conn-schedule/1" only'),
    (lambda d: d.update(objective="speed"), r'objective: expected "latency" or "throughput"'),
    (lambda d: d.pop("objective"), r"objective: required key is missing"),
    (lambda d: d.update(dnns={}), r"dnns: expected at least one DNN"),
    (lambda d: d["dnns"]["alexnet"].update(assignment=[]),
     r"dnns.alexnet.assignment: expected a non-empty list"),
    (lambda d: d["dnns"]["alexnet"].update(assignment=["dla", 3]),
     r"dnns.alexnet.assignment\[1\]: expected an accelerator name"),
    (lambda d: d["dnns"]["alexnet"].update(assigment=d["dnns"]["alexnet"].pop("assignment")),
     r'dnns.alexnet.assignment: required key is missing \(found "assigment": misspelled\?\)'),
    (lambda d: d.update(max_transitions=-1), r"max_transitions: expected an integer >= 0"),
    (lambda d: d.update(frames_in_flight=0),
     r"frames_in_flight: expected an integer from 1 to 16"),
    (lambda d: d.update(frames_in_flight=17),
     r"frames_in_flight: expected an integer from 1 to 16, found the number 17"),
    (lambda d: d.update(predicted_ms="fast"), r"predicted_ms: expected a finite number >= 0"),
    (lambda d: d.update(profile_sha256="abc"), r"profile_sha256: expected 64 lowercase hex"),
    (lambda d: d.update(solver=3), r"solver: expected an object"),
]


@pytest.mark.parametrize("edit, message", BAD)
def test_bad_schedules_name_the_json_path(edit, message):
    doc = _doc()
    edit(doc)
    with pytest.raises(ScheduleError, match=r"^<schedule>: " + message):
        parse_schedule(doc)


def test_malformed_file(tmp_path):
    path = tmp_path / "s.json"
    path.write_text("{\n\n  oops}")
    with pytest.raises(ScheduleError, match=r"s.json:3:3: malformed JSON"):
        load_schedule(path)
    path.write_text(json.dumps(_doc()))
    assert load_schedule(path) == parse_schedule(_doc())


def test_fits_its_profile():
    profile = _profile()
    schedule = parse_schedule(_doc())
    subset = check_schedule_fits(schedule, profile)
    assert list(subset.dnns) == ["googlenet", "alexnet"]


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["dnns"].update(vgg16={"assignment": ["gpu"]}),
     r"dnns.vgg16: DNN 'vgg16' is not in the profile: expected one of googlenet, alexnet"),
    (lambda d: d["dnns"]["alexnet"]["assignment"].pop(),
     r"dnns.alexnet.assignment: expected 8 accelerators \(one per layer group of alexnet"),
    (lambda d: d["dnns"]["alexnet"]["assignment"].__setitem__(7, "dla"),
     r"dnns.alexnet.assignment\[7\]: 'dla' cannot run group 7 of alexnet \(layers 21-23\): "
     r"expected one of gpu"),
    (lambda d: d["dnns"]["alexnet"]["assignment"].__setitem__(2, "npu"),
     r"dnns.alexnet.assignment\[2\]: unknown accelerator 'npu': expected one of gpu, dla"),
    (lambda d: d.update(profile_sha256="0" * 64),
     r"profile_sha256: the schedule was planned on another profile"),
    (lambda d: d.update(max_transitions=0),
     r"dnns.googlenet.assignment: expected at most max_transitions = 0 changes"),
    # a misspelt accelerator adds changes of accelerator: it is named as what it is
    (lambda d: d.update(max_transitions=1) or d["dnns"]["alexnet"]["assignment"].__setitem__(
        2, "npu"), r"dnns.alexnet.assignment\[2\]: unknown accelerator 'npu'"),
])
def test_does_not_fit(edit, message):
    doc = _doc()
    edit(doc)
    with pytest.raises(ScheduleError, match=r"^<schedule>: " + message):
        check_schedule_fits(parse_schedule(doc), _profile())


def test_sha_of_the_profile_or_of_its_subset_is_accepted():
    profile = _profile()
    for sha in (profile.sha256, profile.subset(["alexnet", "googlenet"]).sha256):
        doc = _doc()
        doc["profile_sha256"] = sha
        check_schedule_fits(parse_schedule(doc), profile)
    doc = _doc()
    doc["profile_sha256"] = profile.subset(["alexnet"]).sha256
    with pytest.raises(ScheduleError, match="another profile"):
        check_schedule_fits(parse_schedule(doc), profile)


def test_subset_errors_are_profile_errors():
    with pytest.raises(ProfileError):
        _profile().subset(["nope"])


def test_describe_assignment_in_the_artifacts_words():
    dnn = _profile().dnns["googlenet"]  # groups of 3 layers: group i = layers 3i..3i+2
    assert describe_assignment(dnn, ["gpu"] * 4 + ["dla"] * 6) == \
        "googlenet starts on GPU, transitions to DLA after layer 11"
    assert describe_assignment(dnn, ["dla"] * 10) == "googlenet runs on DLA only"
    assert describe_assignment(dnn, ["gpu"] * 2 + ["dla"] * 3 + ["gpu"] * 5) == \
        "googlenet starts on GPU, transitions to DLA after layer 5, then to GPU after layer 14"

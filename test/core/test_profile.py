"""Reading, validating and writing hax-conn-profile/1."""

import copy
import dataclasses
import json

import pytest

from hax_conn_core.errors import ProfileError
from hax_conn_core.profile import (dump_profile, load_profile, parse_profile, profile_to_dict,
                                   write_profile)

SPEC_EXAMPLE = {  # the example of docs/formats.md, with a second group and a second DNN
    "format": "hax-conn-profile/1",
    "device": {"name": "xavier-agx", "accelerators": ["gpu", "dla"],
               "peak_bandwidth_gbps": 136.5},
    "contention": {"gpu": [[0.0, 1.0], [0.5, 1.05], [1.0, 1.6], [1.5, 2.2]],
                   "dla": [[0.0, 1.0], [0.3, 1.0], [1.0, 1.4], [1.5, 1.9]]},
    "dnns": {
        "googlenet": {"groups": [
            {"layers": [0, 9], "time_ms": {"gpu": 0.35, "dla": 0.75},
             "demand_gbps": {"gpu": 41.0, "dla": 34.0},
             "transition_ms": {"gpu": 0.05, "dla": 0.08}},
            {"layers": [10, 24], "time_ms": {"gpu": 0.15},
             "demand_gbps": {"gpu": 20.0}}]},
        "alexnet": {"groups": [
            {"layers": [0, 3], "time_ms": {"gpu": 0.2, "dla": 0.4},
             "demand_gbps": {"gpu": 10, "dla": 5}, "transition_ms": {"gpu": 0, "dla": 0.1}}]},
    },
}


def _doc():
    return copy.deepcopy(SPEC_EXAMPLE)


def test_reads_the_spec_example():
    profile = parse_profile(_doc())
    assert profile.device.accelerators == ("gpu", "dla")
    assert profile.device.peak_bandwidth_gbps == 136.5
    assert list(profile.dnns) == ["googlenet", "alexnet"]
    g0, g1 = profile.dnns["googlenet"].groups
    assert g0.layers == (0, 9) and g0.time_ms == {"gpu": 0.35, "dla": 0.75}
    assert g0.runs_on("dla") and not g1.runs_on("dla")
    assert g1.transition_ms == {"gpu": 0.0}  # left out on the last group: 0
    assert profile.contention["dla"][1] == (0.3, 1.0)


def test_round_trip_and_sha_are_stable():
    profile = parse_profile(_doc())
    again = parse_profile(json.loads(json.dumps(profile_to_dict(profile))))
    assert again == profile and again.sha256 == profile.sha256
    assert len(profile.sha256) == 64


def test_sha_ignores_layout_and_unknown_optional_keys_but_not_numbers():
    doc = _doc()
    doc["note"] = "optional keys are allowed"
    doc["dnns"] = dict(reversed(list(doc["dnns"].items())))
    assert parse_profile(doc).sha256 == parse_profile(_doc()).sha256
    doc["dnns"]["alexnet"]["groups"][0]["time_ms"]["gpu"] = 0.21
    assert parse_profile(doc).sha256 != parse_profile(_doc()).sha256


def test_last_group_transition_cost_is_ignored():
    doc = _doc()
    doc["dnns"]["googlenet"]["groups"][1]["transition_ms"] = {"gpu": 0.5}
    profile = parse_profile(doc)
    assert profile.dnns["googlenet"].groups[1].transition_ms == {"gpu": 0.0}
    assert profile.sha256 == parse_profile(_doc()).sha256
    assert "transition_ms" not in profile_to_dict(profile)["dnns"]["googlenet"]["groups"][1]


def test_dump_and_write(tmp_path):
    profile = parse_profile(_doc())
    text = dump_profile(profile)
    assert parse_profile(json.loads(text)) == profile
    # One group per line, for people reading diffs.
    assert sum(1 for line in text.splitlines() if line.strip().startswith('{"layers"')) == 3
    write_profile(profile, tmp_path / "p.json")
    assert load_profile(tmp_path / "p.json").sha256 == profile.sha256
    broken = dataclasses.replace(profile, dnns={})
    with pytest.raises(ProfileError, match="dnns: expected at least one DNN"):
        dump_profile(broken)


def test_provenance_is_kept_but_not_hashed():
    doc = _doc()
    doc["source"] = "measured on xavier-01, 2026-11-25"
    doc["device"]["peak_bandwidth_source"] = "datasheet"
    profile = parse_profile(doc)
    assert profile.source == "measured on xavier-01, 2026-11-25"
    assert profile.device.peak_bandwidth_source == "datasheet"
    assert profile.sha256 == parse_profile(_doc()).sha256
    again = parse_profile(profile_to_dict(profile))
    assert again.source == profile.source
    assert again.device.peak_bandwidth_source == "datasheet"
    assert profile.subset(["alexnet"]).source == profile.source
    assert "source" not in profile_to_dict(parse_profile(_doc()))
    doc["source"] = 3
    with pytest.raises(ProfileError, match=r"^<profile>: source: expected a string"):
        parse_profile(doc)


def test_subset_keeps_the_order_asked_for():
    profile = parse_profile(_doc())
    sub = profile.subset(["alexnet", "googlenet"])
    assert list(sub.dnns) == ["alexnet", "googlenet"]
    assert profile.subset(["alexnet"]).sha256 != profile.sha256
    with pytest.raises(ProfileError, match="'vgg16' is not in the profile: expected one of "
                                           "googlenet, alexnet"):
        profile.subset(["vgg16"])
    with pytest.raises(ProfileError, match="twice"):
        profile.subset(["alexnet", "alexnet"])


def _set(path, value):
    def edit(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        if value is _DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    return edit


_DELETE = object()
_G0 = ["dnns", "googlenet", "groups", 0]
G0P = r"dnns.googlenet.groups\[0\]."

BAD = [
    (_set(["format"], "hax-conn-profile/2"),
     r'format: version "hax-conn-profile/2" is not supported: this hax_conn reads '
     r'"hax-conn-profile/1" only'),
    (_set(["format"], "something"), r'format: expected "hax-conn-profile/1"'),
    (_set(["format"], _DELETE), r"format: required key is missing"),
    (_set(["device", "accelerators"], []), r"device.accelerators: expected a non-empty list"),
    (_set(["device", "accelerators"], ["gpu", "gpu"]),
     r"device.accelerators\[1\]: .*listed twice"),
    (_set(["device", "accelerators"], ["GPU", "dla"]),
     r"device.accelerators\[0\]: expected an accelerator name matching"),
    (_set(["device", "peak_bandwidth_gbps"], 0), r"device.peak_bandwidth_gbps: expected a finite "
                                                 r"number >= 0.001 and <= 1e\+06 \(GB/s\)"),
    (_set(["device", "peak_bandwidth_gbps"], True),
     r"device.peak_bandwidth_gbps: .*found the boolean"),
    (_set(["contention", "dla"], _DELETE), r"contention.dla: required key is missing"),
    (_set(["contention", "npu"], [[0, 1]]), r"contention.npu: unknown accelerator 'npu'"),
    (_set(["contention", "gpu"], [[0.5, 1.0], [0.2, 1.1]]),
     r"contention.gpu\[1\]\[0\]: expected u > 0.5 .*found 0.2"),
    (_set(["contention", "gpu"], [[0.0, 0.9]]),
     r"contention.gpu\[0\]\[1\]: expected a finite number >= 1"),
    (_set(["contention", "gpu"], [[0.0]]), r"contention.gpu\[0\]: expected a breakpoint \[u, s\]"),
    (_set(["contention", "gpu"], []), r"contention.gpu: expected a non-empty list"),
    (_set(["dnns"], {}), r"dnns: expected at least one DNN"),
    (_set(["dnns", "GoogleNet"], {"groups": []}),
     r'dnns.GoogleNet: expected a DNN name matching \[a-z\]\[a-z0-9_\]\*, found the key'),
    (_set(["dnns", "googlenet", "groups"], []), r"dnns.googlenet.groups: expected a non-empty"),
    (_set(_G0 + ["time_ms"], [0.35]),
     G0P + r"time_ms: expected an object of accelerator -> ms, found a list"),
    (_set(_G0 + ["time_ms"], {}), G0P + r"time_ms: expected at least one accelerator"),
    (_set(_G0 + ["time_ms", "gpu"], 0),
     G0P + r"time_ms.gpu: expected a finite number >= 1e-06 and <= 1e\+06 \(ms\), found the "
           r"number 0"),
    (_set(_G0 + ["time_ms", "gpu"], -1.0),
     G0P + r"time_ms.gpu: expected a finite number >= 1e-06"),
    (_set(_G0 + ["time_ms", "gpu"], "0.3"), G0P + r"time_ms.gpu: .*found the string"),
    (_set(_G0 + ["time_ms", "npu"], 1.0), G0P + r"time_ms.npu: unknown accelerator 'npu'"),
    (_set(_G0 + ["demand_gbps", "gpu"], -1),
     G0P + r"demand_gbps.gpu: expected a finite number >= 0"),
    (_set(_G0 + ["demand_gbps", "dla"], _DELETE),
     G0P + r"demand_gbps.dla: required key is missing"),
    (_set(_G0 + ["transition_ms", "dla"], _DELETE),
     G0P + r"transition_ms.dla: required key is missing"),
    (_set(["dnns", "googlenet", "groups", 1, "demand_gbps", "dla"], 1.0),
     r"dnns.googlenet.groups\[1\].demand_gbps.dla: accelerator 'dla' has no time_ms entry"),
    (_set(_G0 + ["time_msec"], {"gpu": 1.0}), None),  # unknown optional key: fine
    (lambda d: d["dnns"]["googlenet"]["groups"][0].update(
        time_msec=d["dnns"]["googlenet"]["groups"][0].pop("time_ms")),
     G0P + r'time_ms: required key is missing \(found "time_msec": misspelled\?\)'),
    (_set(_G0 + ["layers"], [9, 0]),
     G0P + r"layers\[1\]: expected an integer from 9 to 1000000000, found the number 0"),
    (_set(_G0 + ["layers"], [0, 8]),
     r"dnns.googlenet.groups\[1\].layers: expected the range to start at layer 9 .*found 10"),
    (_set(_G0 + ["layers"], [0, 9.0]), G0P + r"layers\[1\]: expected an integer .*found the "
                                             r"number 9.0"),
    (_set(_G0 + ["layers"], [0.5, 9]), G0P + r"layers\[0\]: expected an integer from 0 .*found "
                                             r"the number 0.5"),
    (_set(_G0 + ["layers"], [0]), G0P + r"layers: expected an inclusive layer range"),
    (_set(["device"], [1]), r"device: expected an object"),
]


@pytest.mark.parametrize("edit, message", BAD)
def test_bad_profiles_name_the_json_path(edit, message):
    doc = _doc()
    edit(doc)
    if message is None:
        parse_profile(doc)
        return
    with pytest.raises(ProfileError, match=r"^<profile>: " + message):
        parse_profile(doc)


def test_not_an_object():
    with pytest.raises(ProfileError, match=r"^<profile>: expected a JSON object .*found a list"):
        parse_profile([])


def test_file_errors(tmp_path):
    path = tmp_path / "p.json"
    with pytest.raises(ProfileError, match="p.json: profile file not found"):
        load_profile(path)
    path.write_text('{"format": "hax-conn-profile/1",\n  "device": {,}}')
    with pytest.raises(ProfileError, match=r"p.json:2:14: malformed JSON: Expecting"):
        load_profile(path)
    path.write_text('{"format": "hax-conn-profile/1", "dnns": {"a": {}, "a": {}}}')
    with pytest.raises(ProfileError,
                       match='p.json: dnns.a: the key "a" appears twice in one object'):
        load_profile(path)
    path.write_text('{"format": NaN}')
    with pytest.raises(ProfileError, match="NaN is not valid JSON"):
        load_profile(path)
    doc = _doc()
    doc["dnns"]["alexnet"]["groups"][0]["time_ms"]["gpu"] = -2
    path.write_text(json.dumps(doc))
    with pytest.raises(ProfileError, match=r"p.json: dnns.alexnet.groups\[0\].time_ms.gpu: "):
        load_profile(path)
    path.write_text(json.dumps(_doc()))
    assert load_profile(path) == parse_profile(_doc())

"""A profile's groups must be valid cuts of the DNN's graph before anything runs."""

import pytest

from hax_conn_core.errors import ProfileError
from hax_conn_core.graph.prototxt import load_prototxt
from hax_conn_core.models import get_model
from hax_conn_core.profile import load_profile, parse_profile
from hax_conn_core.resources import data_dir
from hax_conn_core.runtime.segments import group_ranges
from test.core.graph import nets
from test.core.runtime.helpers import profile_for, tiny_model


def dnn_profile(ranges):
    groups = [{"layers": list(r), "time_ms": {"gpu": 1.0}, "demand_gbps": {"gpu": 1.0},
               "transition_ms": {"gpu": 0.1}} for r in ranges]
    return parse_profile({"format": "hax-conn-profile/1",
                          "device": {"name": "d", "accelerators": ["gpu"],
                                     "peak_bandwidth_gbps": 10.0},
                          "contention": {"gpu": [[0, 1]]},
                          "dnns": {"chain": {"groups": groups}}}).dnns["chain"]


def test_the_groups_of_a_matching_profile_are_its_ranges():
    model = tiny_model("chain", nets.CHAIN)
    profile = profile_for({"chain": model})
    ranges = group_ranges(profile.dnns["chain"], model.graph)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(model.graph.layers) - 1


@pytest.mark.parametrize("ranges, message", [
    ([(1, 6)], "starts at layer 1; expected 0"),
    ([(0, 4)], "end at layer 4 but the graph 'chain'"),
    ([(0, 8)], "end at layer 8"),
    ([(0, 1), (2, 6)], "group 0 \\(layers 0-1\\) ends where the graph 'chain' cannot be cut: "
                       "would separate in-place layer 'relu1'"),
])
def test_ranges_that_are_not_cuts_are_refused_naming_the_range(ranges, message):
    with pytest.raises(ProfileError, match=message):
        group_ranges(dnn_profile(ranges), tiny_model("chain", nets.CHAIN).graph)


def test_the_artifact_profile_fits_our_prototxts_and_not_another_model():
    """The Xavier profile transcribed from the artifact has groups that are valid cuts of our
    GoogleNet and AlexNet (docs/profiles.md); given another DNN's graph it is refused."""
    profile = load_profile(data_dir("profiles") / "xavier_googlenet_alexnet.json")
    for name in ("googlenet", "alexnet"):
        graph = load_prototxt(get_model(name).prototxt, name=name)
        assert len(group_ranges(profile.dnns[name], graph)) == len(profile.dnns[name].groups)
    resnet = load_prototxt(get_model("resnet18").prototxt, name="resnet18")
    with pytest.raises(ProfileError, match="profile DNN 'googlenet'.*'resnet18'"):
        group_ranges(profile.dnns["googlenet"], resnet)

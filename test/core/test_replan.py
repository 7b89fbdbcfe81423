"""The planner node's logic without ROS: checking a parameter change, planning, the cache."""

import pytest

from hax_conn_core.errors import ConfigError
from hax_conn_core.replan import PlanRequest, Replanner, resolve_profile

PAIR = ("alexnet", "resnet18")


@pytest.fixture(scope="module")
def replanner():
    return Replanner()


def test_plans_the_default_pair_and_describes_it(replanner):
    got = replanner.plan(PlanRequest(dnns=PAIR))
    assert list(got.schedule.assignments) == list(PAIR)
    assert got.schedule.profile_sha256 == got.profile.sha256
    assert not got.cached and got.status == "optimal"
    assert got.words[0].startswith("alexnet ") and got.words[1].startswith("resnet18 ")
    assert got.profile_path.endswith("cpu_alexnet_googlenet_resnet18_mobilenet_v1.json")


def test_switching_back_comes_from_the_cache(replanner):
    first = replanner.plan(PlanRequest(dnns=("alexnet", "mobilenet_v1")))
    other = replanner.plan(PlanRequest(dnns=PAIR))
    back = replanner.plan(PlanRequest(dnns=("alexnet", "mobilenet_v1")))
    assert back.cached and back.schedule == first.schedule
    assert other.schedule != first.schedule
    # objective, K and D are part of the key; priority order too
    assert not replanner.plan(PlanRequest(dnns=PAIR, objective="throughput")).cached
    assert not replanner.plan(PlanRequest(dnns=PAIR, max_transitions=0)).cached
    assert not replanner.plan(PlanRequest(dnns=tuple(reversed(PAIR)))).cached
    assert replanner.cached(PlanRequest(dnns=PAIR)) is not None


@pytest.mark.parametrize("change, match", [
    (dict(dnns=()), r"dnns: the list is empty; expected one or more of alexnet, googlenet"),
    (dict(dnns=("alexnet", "yolo")), r"unknown DNN 'yolo'; expected one of alexnet, .*resnet18"),
    (dict(dnns=("alexnet", "alexnet")), r"alexnet listed twice"),
    (dict(dnns=("alexnet", "vgg16")), r"vgg16 not in the profile .*; it has alexnet, googlenet, "
                                      r"resnet18, mobilenet_v1"),
    (dict(objective="fast"), r"objective: 'fast' is not one of latency, throughput"),
    (dict(max_transitions=-1), r"max_transitions: -1 is out of range; expected an integer "
                               r"from 0 to 8"),
    (dict(max_transitions=True), r"max_transitions: True"),
    (dict(frames_in_flight=17), r"frames_in_flight: 17 .* from 1 to 16"),
    (dict(solver_timeout_s=0.0), r"solver_timeout_s: 0.0 is out of range"),
    (dict(solver_timeout_s=float("nan")), r"solver_timeout_s: nan"),
    (dict(profile="/nonexistent/p.json"), r"profile '/nonexistent/p.json': no such file .*"
                                          r"cpu_alexnet_googlenet_resnet18_mobilenet_v1.json"),
    (dict(profile=""), r"profile: expected a path"),
])
def test_bad_changes_are_refused_with_a_reason(replanner, change, match):
    request = PlanRequest(**{"dnns": PAIR, **change})
    with pytest.raises(ConfigError, match=match):
        replanner.check(request)
    with pytest.raises(ConfigError, match=match):
        replanner.plan(request)


def test_a_malformed_profile_file_is_a_config_error(replanner, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ConfigError, match=r"profile '.*bad.json': "):
        replanner.check(PlanRequest(profile=str(bad)))


def test_shipped_profile_by_name_and_by_path():
    by_name = resolve_profile("xavier_googlenet_alexnet.json")
    assert resolve_profile(str(by_name)) == by_name


def test_a_one_dnn_change_reuses_the_unchanged_dnns_assignment():
    three = ("alexnet", "googlenet", "resnet18")
    changed = ("alexnet", "googlenet", "mobilenet_v1")
    warm = Replanner()
    before = warm.plan(PlanRequest(dnns=three))
    assert before.reused == ()  # nothing planned before it
    after = warm.plan(PlanRequest(dnns=changed))
    assert after.reused == ("alexnet", "googlenet") and not after.cached
    cold = Replanner(reuse=False).plan(PlanRequest(dnns=changed))
    assert cold.reused == ()
    # A hint only seeds the search: the plan is proven the same way, to the same figure.
    assert after.status == cold.status == "optimal"
    assert after.schedule.predicted_ms == pytest.approx(cold.schedule.predicted_ms, rel=0.01)


def test_planner_hints_seed_the_search_and_unfit_ones_are_ignored():
    from hax_conn_core.planner import plan

    profile = Replanner().check(PlanRequest(dnns=("alexnet", "resnet18")))
    best = plan(profile)
    groups = {n: len(d.groups) for n, d in profile.dnns.items()}
    unfit = [{"alexnet": ("gpu",) * (groups["alexnet"] + 1)},  # one group too many
             {"resnet18": ("gpu", "dla") * groups["resnet18"]},  # wrong length, transitions
             {"not-a-dnn": ("gpu",)}]
    assert plan(profile, hints=unfit).schedule.assignments == best.schedule.assignments
    hinted = plan(profile, hints=[dict(best.schedule.assignments)])
    assert hinted.status == "optimal"
    assert hinted.predicted_ms == pytest.approx(best.predicted_ms, rel=0.01)

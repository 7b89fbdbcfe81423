"""The profiler's pure parts: curve fit, merging, split assignments, cache integrity."""

import json

import pytest

from hax_conn_core.profiler.cache import MeasurementCache
from hax_conn_core.profiler.contention import fit_piecewise
from hax_conn_core.profiler.groups import merge_small, ProfGroup
from hax_conn_core.profiler.transitions import split_assignment, transition_figures


def test_fit_recovers_a_piecewise_linear_curve():
    points = [(u / 10, 1.0 if u <= 5 else 1.0 + (u - 5) / 10) for u in range(0, 16)]
    curve, rms, worst = fit_piecewise(points)
    assert curve[0][0] == 0.0 and all(s >= 1 for _, s in curve)
    assert [s for _, s in curve] == sorted(s for _, s in curve)
    assert rms < 0.03 and worst < 0.08


def test_small_groups_merge_only_with_neighbours_of_the_same_accelerators():
    both, gpu = ("gpu", "dla"), ("gpu",)
    groups = [ProfGroup(0, 1, both), ProfGroup(2, 3, both), ProfGroup(4, 5, both),
              ProfGroup(6, 6, gpu)]
    merged, ranges = merge_small(groups, [5.0, 0.1, 4.0, 0.05], floor_ms=1.0)
    assert [g.range for g in merged] == [(0, 1), (2, 5), (6, 6)]  # the smaller neighbour
    assert ranges == [(2, 5)] and merged[-1].accelerators == gpu


def test_split_runs_keep_other_hand_overs_few_and_figures_subtract_them():
    both, gpu = ("gpu", "dla"), ("gpu",)
    groups = [ProfGroup(0, 0, both), ProfGroup(1, 1, both), ProfGroup(2, 2, gpu)]
    assert split_assignment(groups, 0, "dla", "gpu") == ("dla", "gpu", "gpu")
    assert split_assignment(groups, 0, "gpu", "dla") == ("gpu", "dla", "gpu")
    assert split_assignment(groups, 1, "gpu", "dla") is None
    figures, raw = transition_figures(groups, {(1, "dla"): (("dla", "dla", "gpu"), 0.2),
                                               (0, "gpu"): (("gpu", "dla", "gpu"), 0.5),
                                               (0, "dla"): (("dla", "gpu", "gpu"), -0.1)})
    assert figures[(1, "dla")] == pytest.approx(0.2)
    assert figures[(0, "gpu")] == pytest.approx(0.3)  # 0.5 less the known 0.2
    assert figures[(0, "dla")] == 0.0 and raw[(0, "dla")] == pytest.approx(-0.1)
    assert figures[(1, "gpu")] == 0.0  # group 2 runs on the GPU only: no hand-over


@pytest.mark.parametrize("damage", ["truncate", "edit", "garbage"])
def test_damaged_cache_entries_are_reported_and_dropped(tmp_path, damage):
    lines = []
    cache = MeasurementCache(tmp_path, "cpu", "onnxruntime-1", "m", "fp32", warn=lines.append)
    descriptor = {"kind": "run", "ranges": [[0, 3]]}
    cache.store(descriptor, [[1.0, [1.0]]], True)
    assert cache.load(descriptor)["samples"] == [[1.0, [1.0]]]
    path = cache.path(descriptor)
    text = path.read_text()
    path.write_text({"truncate": text[:20], "garbage": "\x00\x01",
                     "edit": text.replace("1.0", "9.0", 1)}[damage])
    assert cache.load(descriptor) is None
    assert len(lines) == 1 and "corrupt profiler cache entry" in lines[0]
    assert not path.exists() and cache.rebuilt == 1
    cache.store(descriptor, [], False)
    assert json.loads(path.read_text())["complete"] is False

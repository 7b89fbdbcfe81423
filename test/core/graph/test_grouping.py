"""Layer groups: contiguous, ending at valid cuts, FLOP-balanced, deterministic."""

import itertools

import numpy as np
import pytest

from hax_conn_core.errors import ConfigError
from hax_conn_core.graph.cuts import cut_tensor, valid_cuts
from hax_conn_core.graph.grouping import group_layers, group_of
from hax_conn_core.graph.prototxt import parse_prototxt

from . import nets


def _chain(widths, channels=3):
    text = nets.input_layer((1, channels, 16, 16))
    bottom = "data"
    for i, width in enumerate(widths):
        text += nets.conv(f"c{i}", bottom, num_output=width)
        bottom = f"c{i}"
    return parse_prototxt(text)


def _check_partition(graph, groups):
    cuts = set(valid_cuts(graph))
    assert groups[0].first == 0 and groups[-1].last == len(graph.layers) - 1
    for before, after in zip(groups, groups[1:]):
        assert after.first == before.last + 1
        assert before.last in cuts
    assert [g.index for g in groups] == list(range(len(groups)))
    stats = graph.layer_stats()
    for group in groups:
        assert group.flops == sum(s.flops for s in stats[group.first:group.last + 1])


def test_groups_partition_the_graph_at_valid_cuts():
    graph = _chain([4, 8, 16, 8, 4, 32, 8, 8, 16, 4, 4, 8])
    groups = group_layers(graph, 4)
    assert len(groups) == 4
    _check_partition(graph, groups)


def test_largest_group_is_as_small_as_any_split_allows():
    widths = [4, 32, 8, 16, 4, 64, 8, 8, 4, 16]
    graph = _chain(widths)
    cuts = valid_cuts(graph)
    flops = [s.flops for s in graph.layer_stats()]
    last = len(flops) - 1

    def largest(chosen):
        return max(sum(flops[a + 1:b + 1]) for a, b in zip((-1,) + chosen, chosen + (last,)))

    for target in (2, 3, 4):
        best = min(largest(chosen) for chosen in itertools.combinations(cuts, target - 1))
        groups = group_layers(graph, target)
        assert max(g.flops for g in groups) == best


def test_grouping_is_deterministic_and_respects_the_target():
    graph = _chain([8] * 12, channels=8)
    assert group_layers(graph, 5) == group_layers(graph, 5)
    assert len(group_layers(graph, 1)) == 1
    # more groups than cuts + 1: one group per stretch between cuts
    assert len(group_layers(graph, 50)) == len(valid_cuts(graph)) + 1
    equal = group_layers(graph, 3)
    assert len({g.flops for g in equal}) == 1  # 12 equal convs -> 4 + 4 + 4


def test_among_equal_largest_groups_the_rest_are_balanced():
    # one dominant layer fixes the largest group; the other groups still share the rest evenly
    graph = _chain([8, 8, 8, 8, 64, 8, 8, 8, 8, 8, 8], channels=8)
    groups = group_layers(graph, 4)
    cuts = valid_cuts(graph)
    flops = [s.flops for s in graph.layer_stats()]

    def sizes(chosen):
        return [sum(flops[a + 1:b + 1]) for a, b in zip((-1,) + chosen,
                                                        chosen + (len(flops) - 1,))]

    splits = [sizes(c) for c in itertools.combinations(cuts, 3)]
    best_max = min(max(s) for s in splits)
    best_squares = min(sum(x * x for x in s) for s in splits if max(s) == best_max)
    assert [g.flops for g in groups] in [s for s in splits if max(s) == best_max and
                                         sum(x * x for x in s) == best_squares]


@pytest.mark.parametrize("target", [0, -1, 2.5, True, "3"])
def test_bad_target_is_a_config_error(target):
    with pytest.raises(ConfigError, match="target_groups"):
        group_layers(_chain([4, 4]), target)


def test_dla_ok_follows_the_device_rules():
    graph = parse_prototxt(nets.CHAIN)  # ends with Softmax: not on Xavier's DLA, fine on Orin
    xavier = group_layers(graph, 10, "xavier-agx")
    assert [g.dla_ok for g in xavier] == [True] * (len(xavier) - 1) + [False]
    assert group_of(xavier, 6).dla_ok is False
    assert all(g.dla_ok for g in group_layers(graph, 10, "orin-agx"))
    assert group_layers(graph, 10, "emulated-h100") == xavier
    assert group_layers(graph, 10) == xavier  # default: Xavier's DLA rules


def test_layers_the_dla_cannot_run_are_fenced_into_their_own_group():
    graph = parse_prototxt(nets.CHAIN)  # ... fc (5), prob (6: Softmax, not on Xavier's DLA)
    fenced = group_layers(graph, 2)
    assert [(g.first, g.last, g.dla_ok) for g in fenced] == [(0, 5, True), (6, 6, False)]
    plain = group_layers(graph, 2, isolate_unsupported=False)
    assert plain[-1].last == 6 and plain[-1].first < 6
    assert all(g.dla_ok for g in group_layers(graph, 2, "orin-agx"))


def test_fence_in_the_middle_and_fences_beyond_the_target():
    text = (nets.input_layer((1, 3, 8, 8)) + nets.conv("c1", "data") + nets.conv("c2", "c1") +
            nets.layer("flat", "Flatten", ["c2"], ["flat"]) +                       # 3
            nets.layer("fc1", "InnerProduct", ["flat"], ["fc1"],
                       "inner_product_param { num_output: 8 }") +
            nets.layer("fc2", "InnerProduct", ["fc1"], ["fc2"],
                       "inner_product_param { num_output: 8 }"))
    graph = parse_prototxt(text)
    groups = group_layers(graph, 3)
    assert (3, 3, False) in [(g.first, g.last, g.dla_ok) for g in groups]
    _check_partition(graph, groups)
    # a target of 1 cannot hold the fences: the fences win
    assert [g.dla_ok for g in group_layers(graph, 1)] == [True, False, True]


def test_group_costs_add_up_and_count_the_handed_over_tensors():
    from hax_conn_core.graph.grouping import group_costs

    graph = parse_prototxt(nets.CHAIN)  # conv2 (3) -> pool (4) 1x4x4x4 -> fc (5) -> prob (6)
    groups = group_layers(graph, 3, "orin-agx")
    costs = group_costs(graph, groups, dtype_bytes=2)
    stats = graph.layer_stats(2)
    assert sum(c.flops for c in costs) == sum(s.flops for s in stats)
    assert sum(c.bytes_moved for c in costs) == sum(s.bytes_moved for s in stats)
    assert sum(c.params for c in costs) == graph.param_count()
    assert costs[0].input_bytes == 3 * 8 * 8 * 2            # the image
    assert costs[-1].output_bytes == 10 * 2                 # the probabilities
    for before, after, group in zip(costs, costs[1:], groups):
        handed = graph.tensors[cut_tensor(graph, group.last)].shape
        assert before.output_bytes == after.input_bytes == np.prod(handed) * 2

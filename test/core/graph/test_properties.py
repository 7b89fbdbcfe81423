"""Properties of cuts, subgraphs and groups on random DAG-shaped nets (hypothesis)."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hax_conn_core.graph.cuts import cut_tensor, valid_cuts
from hax_conn_core.graph.grouping import group_layers
from hax_conn_core.graph.prototxt import parse_prototxt
from hax_conn_core.graph.subgraph import subgraph

from . import nets


@st.composite
def random_nets(draw):
    """A net of same-shape layers: convs, in-place ReLUs, Eltwise joins, Concat+conv merges."""
    text = nets.input_layer((1, 4, 6, 6))
    blobs = ["data"]
    for i in range(draw(st.integers(1, 14))):
        kind = draw(st.sampled_from(["conv", "conv", "relu", "sum", "cat"]))
        pick = st.sampled_from(blobs)
        if kind == "relu" and blobs[-1] != "data":
            text += nets.relu(f"r{i}", blobs[-1])
            continue
        if kind == "sum" and len(blobs) > 1:
            a, b = draw(pick), draw(pick)
            text += nets.layer(f"s{i}", "Eltwise", [a, b], [f"s{i}"])
        elif kind == "cat" and len(blobs) > 1:
            a, b = draw(pick), draw(pick)
            text += nets.layer(f"k{i}", "Concat", [a, b], [f"k{i}"])
            text += nets.conv(f"m{i}", f"k{i}", num_output=4, kernel=1, pad=0)
            blobs.append(f"m{i}")
            continue
        else:
            text += nets.conv(f"c{i}", draw(pick), num_output=4)
            blobs.append(f"c{i}")
            continue
        blobs.append(f"{'s' if kind == 'sum' else 'k'}{i}")
    return parse_prototxt(text)


def _brute_force_cuts(graph):
    """Split into A = 0..i and B = i+1..end; count what A must hand to B, by sets."""
    count = len(graph.layers)
    valid = []
    for i in range(count - 1):
        part_a, part_b = graph.layers[:i + 1], graph.layers[i + 1:]
        made_in_a = set(graph.inputs) | {t for layer in part_a for t in layer.tops}
        read_in_b = {t for layer in part_b for t in layer.bottoms}
        handed = (made_in_a & read_in_b) | (made_in_a & set(graph.outputs))
        in_place_split = any(layer.in_place and graph.producer(layer.bottoms[0]) in part_a
                             for layer in part_b)
        only_inputs = all(layer.type == "Input" for layer in part_a)
        if len(handed) == 1 and not in_place_split and not only_inputs:
            valid.append(i)
    return tuple(valid)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(graph=random_nets(), target=st.integers(1, 6))
def test_cuts_groups_and_parts_agree_with_first_principles(graph, target):
    cuts = valid_cuts(graph)
    assert cuts == _brute_force_cuts(graph)
    groups = group_layers(graph, target)
    assert groups[0].first == 0 and groups[-1].last == len(graph.layers) - 1
    assert all(g.last in cuts for g in groups[:-1])
    assert all(a.last + 1 == b.first for a, b in zip(groups, groups[1:]))
    produced = set()
    for number, group in enumerate(groups):
        part = subgraph(graph, group.first, group.last)
        if number:
            assert part.inputs == (cut_tensor(graph, groups[number - 1].last),)
        assert [layer.name for layer in part.layers] == \
            [layer.name for layer in graph.layers[group.first:group.last + 1]]
        produced |= {t for layer in part.layers for t in layer.tops}
    assert produced | set(graph.inputs) == set(graph.tensors)

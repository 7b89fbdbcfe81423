"""Valid cut points and subgraphs on small nets with branches, skips and in-place layers."""

import pytest

from hax_conn_core.errors import ModelError
from hax_conn_core.graph.cuts import cut_report, cut_tensor, valid_cuts
from hax_conn_core.graph.prototxt import parse_prototxt
from hax_conn_core.graph.subgraph import subgraph

from . import nets


def test_chain_cuts_skip_input_only_prefix_in_place_and_last_layer():
    graph = parse_prototxt(nets.CHAIN)
    # 0 data, 1 conv1, 2 relu1 (in place on conv1), 3 conv2, 4 pool, 5 fc, 6 prob
    assert valid_cuts(graph) == (2, 3, 4, 5)
    reasons = {i: why for i, _, _, why in cut_report(graph)}
    assert "only Input layers" in reasons[0]
    assert "in-place layer 'relu1'" in reasons[1]
    assert "last layer" in reasons[6]
    assert cut_tensor(graph, 2) == "relu1:0"
    assert cut_tensor(graph, 5) == "fc"


def test_residual_block_has_no_cut_inside():
    graph = parse_prototxt(nets.RESIDUAL)
    # 0 data, 1 stem, 2 a, 3 a_relu, 4 b, 5 sum, 6 sum_relu, 7 head
    assert valid_cuts(graph) == (1, 6)
    _, valid, crossing, why = cut_report(graph)[4]
    assert not valid and set(crossing) == {"stem", "b"} and "2 tensors cross" in why


def test_branches_have_no_cut_inside_the_module():
    graph = parse_prototxt(nets.BRANCHES)
    assert valid_cuts(graph) == (1, 5)
    assert cut_tensor(graph, 5) == "cat"


def test_graph_input_read_later_crosses_cuts():
    text = (nets.legacy_input() + nets.conv("c1", "data") + nets.conv("c2", "c1") +
            nets.layer("cat", "Concat", ["c2", "data"], ["cat"]) + nets.conv("c3", "cat"))
    graph = parse_prototxt(text)
    # c1 (0) and c2 (1) run while "data" is still needed by cat (2)
    assert valid_cuts(graph) == (2,)


def test_early_graph_output_crosses_until_the_end():
    text = (nets.input_layer() + nets.conv("c1", "data") + nets.conv("side", "c1") +
            nets.conv("c2", "c1") + nets.conv("c3", "c2"))
    graph = parse_prototxt(text)
    assert set(graph.outputs) == {"side", "c3"}
    # after 2 ("side") both c1 and the output "side" cross; after 3: side and c2
    assert valid_cuts(graph) == (1,)


def test_in_place_chain_stays_with_its_producer():
    text = (nets.input_layer() + nets.conv("c", "data") +
            nets.layer("bn", "BatchNorm", ["c"], ["c"]) +
            nets.layer("sc", "Scale", ["c"], ["c"], "scale_param { bias_term: true }") +
            nets.relu("r", "c") + nets.conv("next", "c"))
    graph = parse_prototxt(text)
    assert valid_cuts(graph) == (4,)
    assert cut_tensor(graph, 4) == "r:0"


def test_cut_tensor_refuses_an_invalid_cut_with_the_reason():
    graph = parse_prototxt(nets.RESIDUAL)
    with pytest.raises(ModelError, match=r"cut after layer 'b' \(index 4\) is not valid: 2 "):
        cut_tensor(graph, 4)
    with pytest.raises(ModelError, match="no layer with index 99"):
        cut_tensor(graph, 99)


def test_subgraph_parts_chain_through_cut_tensors():
    graph = parse_prototxt(nets.RESIDUAL)
    first = subgraph(graph, 0, 1)
    middle = subgraph(graph, 2, 6)
    last = subgraph(graph, 7, 7)
    assert first.inputs == ("data",) and first.outputs == ("stem",)
    assert middle.inputs == ("stem",) and middle.outputs == ("sum_relu:0",)
    assert last.inputs == ("sum_relu:0",) and last.outputs == graph.outputs
    assert [layer.index for layer in middle.layers] == [0, 1, 2, 3, 4]
    assert [layer.name for layer in middle.layers] == ["a", "a_relu", "b", "sum", "sum_relu"]
    assert middle.tensors["stem"].shape == graph.tensors["stem"].shape
    assert middle.param_count() + first.param_count() + last.param_count() == \
        graph.param_count()


def test_subgraph_of_everything_is_the_graph():
    graph = parse_prototxt(nets.CHAIN)
    whole = subgraph(graph, 0, len(graph.layers) - 1)
    assert whole.inputs == graph.inputs and whole.outputs == graph.outputs
    assert [layer.name for layer in whole.layers] == [layer.name for layer in graph.layers]


@pytest.mark.parametrize("first,last,pattern", [
    (3, 7, r"cannot start at layer 3: the cut after layer 2 is not valid"),
    (2, 4, r"cannot end at layer 4: the cut after it is not valid"),
    (5, 2, r"expected first <= last"),
    (0, 8, r"not inside 0..7"),
])
def test_subgraph_refuses_ranges_not_bounded_by_valid_cuts(first, last, pattern):
    graph = parse_prototxt(nets.RESIDUAL)
    with pytest.raises(ModelError, match=pattern):
        subgraph(graph, first, last)

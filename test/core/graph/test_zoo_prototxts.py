"""Every shipped prototxt reads, and its cuts, groups and parts are consistent.

(Published parameter counts are checked by the model-zoo tests.)
"""

import pytest

from hax_conn_core.graph.cuts import cut_tensor, valid_cuts
from hax_conn_core.graph.grouping import group_layers
from hax_conn_core.graph.prototxt import load_prototxt
from hax_conn_core.graph.subgraph import subgraph
from hax_conn_core.models import list_models

MODELS = [info for info in list_models() if info.prototxt.is_file()]


@pytest.mark.skipif(not MODELS, reason="no prototxts generated yet")
@pytest.mark.parametrize("info", MODELS, ids=[info.id for info in MODELS])
def test_shipped_prototxt_groups_into_parts_that_chain(info):
    graph = load_prototxt(info.prototxt)
    assert graph.tensors[graph.inputs[0]].shape == info.input_shape
    cuts = valid_cuts(graph)
    groups = group_layers(graph)
    assert 8 <= len(groups) <= 12 or len(groups) == len(cuts) + 1
    previous = previous_part = None
    for group in groups:
        part = subgraph(graph, group.first, group.last)
        if previous is not None:
            assert part.inputs == (cut_tensor(graph, previous.last),)
            assert previous_part.outputs == part.inputs
        previous, previous_part = group, part
    assert previous_part.outputs == graph.outputs

"""The prototxt builder DSL: text it writes, mistakes it refuses."""

import pytest

from hax_conn_core.errors import InternalError
from hax_conn_core.graph.prototxt import parse_prototxt
from hax_conn_core.zoo.netspec import NetBuilder


def _small_net() -> NetBuilder:
    net = NetBuilder("tiny")
    x = net.input("data", (1, 3, 8, 8))
    x = net.conv_bn("conv", x, 4, (1, 3), pad=(0, 1), bn_name="conv/bn",
                    scale_name="conv/scale", relu_name="conv/relu", eps=0.001)
    y = net.conv("dw", x, 4, 3, pad=1, group=4, bias=False)
    x = net.eltwise_sum("sum", [x, y], coeff=(1.0, 0.5))
    x = net.pool("pool", x, "AVE", global_pooling=True)
    net.softmax("prob", x)
    return net


def test_text_is_caffe_prototxt_with_header_and_fields_as_written_by_hand():
    net = NetBuilder("n")
    x = net.input("data", (1, 2, 5, 5))
    net.conv("c", x, 3, (1, 7), pad=(0, 3), stride=2, bias=False)
    net.relu("r", "c")
    assert net.to_prototxt(header=["first", "second"]) == """\
# first
# second
name: "n"
layer {
  name: "data"
  type: "Input"
  top: "data"
  input_param {
    shape {
      dim: 1
      dim: 2
      dim: 5
      dim: 5
    }
  }
}
layer {
  name: "c"
  type: "Convolution"
  bottom: "data"
  top: "c"
  convolution_param {
    num_output: 3
    bias_term: false
    pad_h: 0
    pad_w: 3
    kernel_h: 1
    kernel_w: 7
    stride: 2
  }
}
layer {
  name: "r"
  type: "ReLU"
  bottom: "c"
  top: "c"
}
"""


def test_enums_are_bare_and_floats_round_trip():
    text = _small_net().to_prototxt()
    assert "    pool: AVE\n" in text
    assert "    operation: SUM\n    coeff: 1.0\n    coeff: 0.5\n" in text
    assert "    use_global_stats: true\n    eps: 0.001\n" in text
    assert "    global_pooling: true\n" in text
    assert "    group: 4\n" in text


def test_the_reader_reads_what_the_builder_writes():
    graph = parse_prototxt(_small_net().to_prototxt(), source="tiny")
    assert [layer.type for layer in graph.layers] == [
        "Input", "Convolution", "BatchNorm", "Scale", "ReLU", "Convolution", "Eltwise",
        "Pooling", "Softmax"]
    conv = graph.layer("conv").params
    assert (conv.kernel, conv.pad, conv.bias_term) == ((1, 3), (0, 1), False)
    assert graph.layer("dw").params.group == 4
    assert graph.layer("sum").params.coeff == (1.0, 0.5)
    assert graph.tensors[graph.outputs[0]].shape == (1, 4, 1, 1)


def test_a_duplicate_layer_name_is_a_builder_bug():
    net = NetBuilder("n")
    x = net.input("data", (1, 3, 8, 8))
    net.conv("c", x, 3, 1)
    with pytest.raises(InternalError, match="layer name 'c' used twice"):
        net.conv("c", x, 3, 1, top="c2")


def test_reading_an_unproduced_tensor_is_a_builder_bug():
    net = NetBuilder("n")
    net.input("data", (1, 3, 8, 8))
    with pytest.raises(InternalError, match="layer 'c' reads 'nothing'"):
        net.conv("c", "nothing", 3, 1)


def test_pooling_without_kernel_or_global_is_a_builder_bug():
    net = NetBuilder("n")
    x = net.input("data", (1, 3, 8, 8))
    with pytest.raises(InternalError, match="needs a kernel size"):
        net.pool("p", x, "MAX")

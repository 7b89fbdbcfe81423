"""Parameter counts, FLOPs and bytes moved, hand-computed."""

from hax_conn_core.graph.prototxt import parse_prototxt

from . import nets

TEXT = nets.input_layer((1, 3, 8, 8)) + '''
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "dw" type: "Convolution" bottom: "conv" top: "dw"
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 group: 4 bias_term: false } }
layer { name: "bn" type: "BatchNorm" bottom: "dw" top: "dw" }
layer { name: "sc" type: "Scale" bottom: "dw" top: "dw" scale_param { bias_term: true } }
layer { name: "relu" type: "ReLU" bottom: "dw" top: "dw" }
layer { name: "fc" type: "InnerProduct" bottom: "dw" top: "fc"
  inner_product_param { num_output: 10 } }
layer { name: "drop" type: "Dropout" bottom: "fc" top: "fc" }
'''


def test_costs_per_layer():
    graph = parse_prototxt(TEXT)
    stats = {s.name: s for s in graph.layer_stats()}
    # conv: 4 * 3 * 3 * 3 weights + 4 biases; 2 * (4 * 8 * 8 outputs) * (3 * 3 * 3) FLOPs
    assert stats["conv"].params == 112
    assert stats["conv"].flops == 2 * 256 * 27
    assert stats["conv"].weight_bytes == 112 * 4
    assert stats["conv"].activation_bytes_in == 3 * 64 * 4
    assert stats["conv"].activation_bytes_out == 4 * 64 * 4
    # depthwise: 4 * 1 * 3 * 3 weights, no bias; 2 * 256 * 9 FLOPs
    assert stats["dw"].params == 36
    assert stats["dw"].flops == 2 * 256 * 9
    # BatchNorm: statistics, not parameters; mean + var + factor stored
    assert stats["bn"].params == 0
    assert stats["bn"].weight_bytes == (4 + 4 + 1) * 4
    assert stats["bn"].flops == 2 * 256
    assert stats["sc"].params == 8
    assert stats["sc"].flops == 2 * 256
    assert stats["relu"].flops == 256
    # fc: 256 inputs x 10 + 10
    assert stats["fc"].params == 2570
    assert stats["fc"].flops == 2 * 256 * 10
    assert stats["drop"].flops == 0 and stats["drop"].bytes_moved == 0
    assert graph.param_count() == 112 + 36 + 8 + 2570


def test_dtype_bytes_scales_bytes_not_flops():
    graph = parse_prototxt(TEXT)
    fp32 = graph.layer_stats()
    fp16 = graph.layer_stats(dtype_bytes=2)
    for a, b in zip(fp32, fp16):
        assert a.flops == b.flops and a.params == b.params
        assert a.bytes_moved == 2 * b.bytes_moved

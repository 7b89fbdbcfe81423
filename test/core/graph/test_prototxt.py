"""The prototxt reader: the forms Caffe accepts, indices, in-place naming, phases."""

import pytest

from hax_conn_core.errors import ModelError
from hax_conn_core.graph.model import ConvolutionParams, InputParams, PoolingParams
from hax_conn_core.graph.prototxt import load_prototxt, parse_prototxt

from . import nets


def test_plain_chain_layers_indices_and_tensors():
    graph = parse_prototxt(nets.CHAIN, name="chain")
    assert [layer.index for layer in graph.layers] == list(range(7))
    assert [layer.type for layer in graph.layers] == [
        "Input", "Convolution", "ReLU", "Convolution", "Pooling", "InnerProduct", "Softmax"]
    assert graph.inputs == ("data",)
    assert graph.outputs == ("prob",)
    assert graph.tensors["prob"].shape == (1, 10)
    assert graph.name == "chain"


def test_in_place_top_gets_a_fresh_unique_name_and_consumers_follow_it():
    graph = parse_prototxt(nets.CHAIN)
    relu = graph.layer("relu1")
    assert relu.in_place
    assert relu.bottoms == ("conv1",)
    assert relu.tops == ("relu1:0",)
    assert graph.layer("conv2").bottoms == ("relu1:0",)
    assert graph.producer("relu1:0") is relu
    assert graph.consumers("conv1") == (relu,)
    assert len(set(graph.tensors)) == len(graph.tensors)


def test_legacy_input_dim_is_not_a_layer():
    text = nets.legacy_input((1, 3, 8, 8)) + nets.conv("conv1", "data")
    graph = parse_prototxt(text)
    assert len(graph.layers) == 1
    assert graph.layers[0].index == 0
    assert graph.inputs == ("data",)
    assert graph.tensors["data"].shape == (1, 3, 8, 8)
    assert graph.producer("data") is None


def test_legacy_input_shape():
    text = ('input: "data"\ninput_shape { dim: 2 dim: 3 dim: 10 dim: 12 }\n' +
            nets.conv("c", "data", kernel=3, pad=0))
    graph = parse_prototxt(text)
    assert graph.tensors["c"].shape == (2, 4, 8, 10)


def test_v1_layers_with_enum_types_and_training_fields():
    text = '''name: "v1net"
input: "data"
input_dim: 1 input_dim: 3 input_dim: 9 input_dim: 9
layers { name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1"
  blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0
  convolution_param { num_output: 8 kernel_size: 3 stride: 2
    weight_filler { type: "gaussian" std: 0.01 } bias_filler { type: "constant" value: 0 } } }
layers { name: "relu1" type: RELU bottom: "conv1" top: "conv1" }
layers { name: "norm1" type: LRN bottom: "conv1" top: "norm1"
  lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 } }
layers { name: "pool1" type: POOLING bottom: "norm1" top: "pool1"
  pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layers { name: "split" type: SPLIT bottom: "pool1" top: "s1" top: "s2" }
layers { name: "sum" type: ELTWISE bottom: "s1" bottom: "s2" top: "sum"
  eltwise_param { operation: MAX } }
layers { name: "cat" type: CONCAT bottom: "sum" bottom: "s1" top: "cat"
  concat_param { concat_dim: 1 } }
layers { name: "flat" type: FLATTEN bottom: "cat" top: "flat" }
layers { name: "fc" type: INNER_PRODUCT bottom: "flat" top: "fc"
  inner_product_param { num_output: 5 } }
layers { name: "drop" type: DROPOUT bottom: "fc" top: "fc" dropout_param { dropout_ratio: 0.4 } }
layers { name: "prob" type: SOFTMAX bottom: "fc" top: "prob" }
'''
    graph = parse_prototxt(text)
    assert graph.name == "v1net"
    assert [layer.type for layer in graph.layers] == [
        "Convolution", "ReLU", "LRN", "Pooling", "Split", "Eltwise", "Concat", "Flatten",
        "InnerProduct", "Dropout", "Softmax"]
    # conv 9 -> (9-3)/2+1 = 4; pool 4 -> ceil((4-2)/2)+1 = 2
    assert graph.tensors["pool1"].shape == (1, 8, 2, 2)
    assert graph.tensors["cat"].shape == (1, 16, 2, 2)
    assert graph.tensors["flat"].shape == (1, 64)
    assert graph.layer("sum").params.operation == "MAX"
    assert graph.layer("drop").params.ratio == pytest.approx(0.4)
    assert graph.outputs == ("prob",)


def test_kernel_pad_stride_h_w_dilation_and_group():
    text = nets.input_layer((1, 4, 20, 30)) + '''layer { name: "c" type: "Convolution"
  bottom: "data" top: "c" convolution_param { num_output: 6 kernel_h: 3 kernel_w: 5
  pad_h: 1 pad_w: 2 stride_h: 2 stride_w: 3 dilation: 2 group: 2 bias_term: false } }'''
    graph = parse_prototxt(text)
    p = graph.layer("c").params
    assert p == ConvolutionParams(num_output=6, kernel=(3, 5), stride=(2, 3), pad=(1, 2),
                                  dilation=(2, 2), group=2, bias_term=False)
    # H: (20 + 2 - (2*2+1)) // 2 + 1 = 9; W: (30 + 4 - (2*4+1)) // 3 + 1 = 9
    assert graph.tensors["c"].shape == (1, 6, 9, 9)


def test_repeated_kernel_size_pad_stride_give_h_w_pairs():
    text = nets.input_layer((1, 1, 10, 10)) + '''layer { name: "c" type: "Convolution"
  bottom: "data" top: "c" convolution_param { num_output: 2 kernel_size: 3 kernel_size: 1
  pad: 1 pad: 0 stride: 1 stride: 2 } }'''
    p = parse_prototxt(text).layer("c").params
    assert (p.kernel, p.pad, p.stride) == ((3, 1), (1, 0), (1, 2))


def test_comments_crlf_name_force_backward_and_debug_info():
    text = ('# a comment\r\nname: "x" # trailing\r\nforce_backward: true\r\ndebug_info: false\r\n'
            + nets.CHAIN.replace("\n", "\r\n"))
    graph = parse_prototxt(text)
    assert graph.name == "x"
    assert len(graph.layers) == 7
    assert graph.layer("conv1").source_line == 6


def test_training_fields_are_read_and_ignored():
    text = nets.input_layer() + '''layer { name: "c" type: "Convolution" bottom: "data" top: "c"
  param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 name: "shared" }
  propagate_down: true loss_weight: 0 phase: TEST
  convolution_param { num_output: 2 kernel_size: 1 engine: CUDNN
    weight_filler { type: "msra" variance_norm: FAN_OUT } bias_filler { type: "constant" } } }
layer { name: "bn" type: "BatchNorm" bottom: "c" top: "c"
  batch_norm_param { use_global_stats: true moving_average_fraction: 0.9 eps: 0.001 }
  param { lr_mult: 0 } param { lr_mult: 0 } param { lr_mult: 0 } }
layer { name: "sc" type: "Scale" bottom: "c" top: "c" scale_param { bias_term: true
  filler { value: 1 } bias_filler { value: 0 } } }
'''
    graph = parse_prototxt(text)
    assert [layer.type for layer in graph.layers] == [
        "Input", "Convolution", "BatchNorm", "Scale"]
    assert graph.layer("bn").params.use_global_stats is True
    assert graph.layer("bn").params.eps == pytest.approx(0.001)
    assert graph.layer("sc").params.bias_term


def test_phase_rules_keep_test_layers_and_drop_train_layers():
    text = nets.input_layer() + '''
layer { name: "train_only" type: "Dropout" bottom: "data" top: "t" include { phase: TRAIN } }
layer { name: "test_only" type: "ReLU" bottom: "data" top: "r" include { phase: TEST } }
layer { name: "not_train" type: "ReLU" bottom: "r" top: "r2" exclude { phase: TRAIN } }
layer { name: "not_test" type: "ReLU" bottom: "r" top: "r3" exclude { phase: TEST } }
layer { name: "staged" type: "ReLU" bottom: "r" top: "r4" include { stage: "deploy" } }
'''
    graph = parse_prototxt(text)
    assert [layer.name for layer in graph.layers] == ["data", "test_only", "not_train"]
    assert [layer.index for layer in graph.layers] == [0, 1, 2]
    with_stage = parse_prototxt('state { stage: "deploy" }\n' + text)
    assert [layer.name for layer in with_stage.layers][-1] == "staged"


def test_global_pooling_and_round_mode():
    text = nets.input_layer((1, 3, 7, 7)) + '''
layer { name: "g" type: "Pooling" bottom: "data" top: "g"
  pooling_param { pool: AVE global_pooling: true } }
layer { name: "f" type: "Pooling" bottom: "data" top: "f"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 round_mode: FLOOR } }
layer { name: "c" type: "Pooling" bottom: "data" top: "c"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
'''
    graph = parse_prototxt(text)
    assert graph.tensors["g"].shape == (1, 3, 1, 1)
    assert graph.tensors["f"].shape == (1, 3, 3, 3)
    assert graph.tensors["c"].shape == (1, 3, 4, 4)
    assert graph.layer("g").params == PoolingParams(method="AVE", kernel=(0, 0),
                                                    global_pooling=True)


def test_input_layer_with_several_tops():
    text = '''layer { name: "in" type: "Input" top: "a" top: "b"
  input_param { shape { dim: 1 dim: 2 dim: 4 dim: 4 } shape { dim: 1 dim: 3 dim: 4 dim: 4 } } }
layer { name: "cat" type: "Concat" bottom: "a" bottom: "b" top: "cat" }'''
    graph = parse_prototxt(text)
    assert graph.inputs == ("a", "b")
    assert graph.tensors["cat"].shape == (1, 5, 4, 4)
    assert isinstance(graph.layer("in").params, InputParams)


def test_load_prototxt_names_graph_after_net_name_or_file_stem(tmp_path):
    path = tmp_path / "My-Net.prototxt"
    path.write_text(nets.CHAIN)
    graph = load_prototxt(path)
    assert graph.name == "My-Net"
    assert graph.source == str(path)
    path.write_text('name: "Named"\n' + nets.CHAIN)
    assert load_prototxt(path).name == "Named"


def test_missing_file_and_binary_file_are_model_errors(tmp_path):
    with pytest.raises(ModelError, match="cannot read"):
        load_prototxt(tmp_path / "absent.prototxt")
    binary = tmp_path / "weights.prototxt"
    binary.write_bytes(b"\x0a\xff\xfe\x00")
    with pytest.raises(ModelError, match="not UTF-8"):
        load_prototxt(binary)


@pytest.mark.parametrize("message,field,number", [
    # field numbers transcribed from BVLC Caffe's src/caffe/proto/caffe.proto
    ("NetParameter", "layer", 100), ("NetParameter", "layers", 2),
    ("NetParameter", "input", 3), ("NetParameter", "input_dim", 4),
    ("NetParameter", "input_shape", 8),
    ("LayerParameter", "convolution_param", 106), ("LayerParameter", "pooling_param", 121),
    ("LayerParameter", "input_param", 143), ("LayerParameter", "batch_norm_param", 139),
    ("LayerParameter", "scale_param", 142), ("LayerParameter", "blobs", 7),
    ("V1LayerParameter", "convolution_param", 10), ("V1LayerParameter", "blobs", 6),
    ("V1LayerParameter", "type", 5),
    ("ConvolutionParameter", "dilation", 18), ("ConvolutionParameter", "group", 5),
    ("PoolingParameter", "global_pooling", 12), ("BlobProto", "shape", 7),
    ("BlobProto", "data", 5),
])
def test_schema_field_numbers_match_caffe(message, field, number):
    from hax_conn_core.graph.caffe_schema import message_class

    assert message_class(message).DESCRIPTOR.fields_by_name[field].number == number


def test_v1_enum_values_match_caffe():
    from hax_conn_core.graph.caffe_schema import message_class

    enum = message_class("V1LayerParameter").DESCRIPTOR.enum_types_by_name["LayerType"]
    expected = {"CONVOLUTION": 4, "POOLING": 17, "RELU": 18, "LRN": 15, "INNER_PRODUCT": 14,
                "CONCAT": 3, "DROPOUT": 6, "SOFTMAX": 20, "ELTWISE": 25, "FLATTEN": 8,
                "SPLIT": 22, "DATA": 5}
    assert {name: enum.values_by_name[name].number for name in expected} == expected


def test_v1_numeric_type_is_read_like_its_name():
    text = nets.legacy_input() + 'layers { name: "r" type: 18 bottom: "data" top: "r" }'
    assert parse_prototxt(text).layer("r").type == "ReLU"


def test_forks_ceil_mode_false_means_floor_rounding():
    # as in shicai/DenseNet-Caffe's pool1: 112 -> 56 with floor, 57 with Caffe's ceil
    text = nets.input_layer((1, 64, 112, 112)) + '''
layer { name: "p" type: "Pooling" bottom: "data" top: "p"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 ceil_mode: false } }
layer { name: "q" type: "Pooling" bottom: "data" top: "q"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 } }
'''
    graph = parse_prototxt(text)
    assert graph.tensors["p"].shape == (1, 64, 56, 56)
    assert graph.layer("p").params.round_mode == "FLOOR"
    assert graph.tensors["q"].shape == (1, 64, 57, 57)
    with pytest.raises(ModelError, match="round_mode CEIL and ceil_mode false disagree"):
        parse_prototxt(text.replace("ceil_mode: false", "ceil_mode: false round_mode: CEIL"))


def test_graph_layer_lookup_by_index_name_and_numpy_int():
    import numpy as np

    graph = parse_prototxt(nets.CHAIN)
    assert graph.layer(3).name == "conv2"
    assert graph.layer(np.int64(3)).name == "conv2"
    assert graph.layer("conv2").index == 3
    with pytest.raises(ModelError, match="no layer with index 7; expected 0..6"):
        graph.layer(7)
    with pytest.raises(ModelError, match="no layer named 'nope'"):
        graph.layer("nope")
    with pytest.raises(ModelError, match="no tensor named 'conv9'"):
        graph.producer("conv9")


def test_a_layer_reading_a_tensor_twice_is_one_consumer():
    text = nets.input_layer() + nets.layer("sq", "Eltwise", ["data", "data"], ["sq"],
                                           "eltwise_param { operation: PROD }")
    graph = parse_prototxt(text)
    assert graph.consumers("data") == (graph.layer("sq"),)

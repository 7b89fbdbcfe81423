"""Caffe's shape rules, checked against hand-computed sizes."""

import pytest

from hax_conn_core.graph.prototxt import parse_prototxt
from hax_conn_core.graph.shapes import conv_output_size, pool_output_size

from . import nets


@pytest.mark.parametrize("size,kernel,stride,pad,dilation,expected", [
    (227, 11, 4, 0, 1, 55),   # AlexNet conv1
    (224, 7, 2, 3, 1, 112),   # GoogleNet / ResNet conv1
    (299, 3, 2, 0, 1, 149),   # Inception-v4 stem
    (10, 3, 2, 0, 1, 4),      # floor: (10 - 3) / 2 + 1 = 4.5 -> 4
    (10, 3, 1, 2, 2, 10),     # dilation 2: extent 5
])
def test_conv_output_size_floors(size, kernel, stride, pad, dilation, expected):
    assert conv_output_size(size, kernel, stride, pad, dilation) == expected


@pytest.mark.parametrize("size,kernel,stride,pad,expected", [
    (55, 3, 2, 0, 27),    # AlexNet pool1
    (112, 3, 2, 0, 56),   # GoogleNet pool1: ceil(109 / 2) + 1
    (14, 3, 2, 0, 7),     # ceil(11 / 2) + 1 = 7 where floor would give 6
    (7, 2, 2, 0, 4),      # ceil(5 / 2) + 1 = 4
    (5, 2, 2, 1, 3),      # clip: ceil(5/2)+1 = 4, but (4-1)*2 = 6 >= 5+1, so 3
    (6, 3, 2, 1, 4),      # no clip: ceil(5/2)+1 = 4, (4-1)*2 = 6 < 6+1
    (112, 3, 2, 1, 57),   # ceil(111/2)+1 = 57; no clip: 56*2 = 112 < 113 (torch gives 56)
    (4, 3, 3, 2, 2),      # ceil(5/3)+1 = 3; clip: 2*3 = 6 >= 4+2, so 2
])
def test_pool_output_size_ceil_with_clip_rule(size, kernel, stride, pad, expected):
    assert pool_output_size(size, kernel, stride, pad) == expected


def test_pool_floor_mode():
    assert pool_output_size(14, 3, 2, 0, ceil=False) == 6


def test_inner_product_flattens_from_axis_and_flatten_merges_axes():
    text = nets.input_layer((2, 3, 4, 5)) + '''
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"
  inner_product_param { num_output: 7 } }
layer { name: "fc2" type: "InnerProduct" bottom: "data" top: "fc2"
  inner_product_param { num_output: 7 axis: 2 } }
layer { name: "fl" type: "Flatten" bottom: "data" top: "fl" }
layer { name: "fl2" type: "Flatten" bottom: "data" top: "fl2"
  flatten_param { axis: 2 end_axis: -1 } }
layer { name: "fl3" type: "Flatten" bottom: "data" top: "fl3"
  flatten_param { axis: 0 end_axis: 1 } }
'''
    graph = parse_prototxt(text)
    assert graph.tensors["fc"].shape == (2, 7)
    assert graph.tensors["fc2"].shape == (2, 3, 7)
    assert graph.tensors["fl"].shape == (2, 60)
    assert graph.tensors["fl2"].shape == (2, 3, 20)
    assert graph.tensors["fl3"].shape == (6, 4, 5)


def test_concat_along_axis_and_legacy_concat_dim_and_negative_axis():
    text = nets.input_layer((1, 2, 4, 4)) + '''
layer { name: "c1" type: "Concat" bottom: "data" bottom: "data" top: "c1" }
layer { name: "c2" type: "Concat" bottom: "data" bottom: "data" top: "c2"
  concat_param { concat_dim: 2 } }
layer { name: "c3" type: "Concat" bottom: "data" bottom: "data" bottom: "data" top: "c3"
  concat_param { axis: -1 } }
'''
    graph = parse_prototxt(text)
    assert graph.tensors["c1"].shape == (1, 4, 4, 4)
    assert graph.tensors["c2"].shape == (1, 2, 8, 4)
    assert graph.tensors["c3"].shape == (1, 2, 4, 12)


def test_shape_preserving_layers_and_scale_with_two_bottoms():
    text = nets.input_layer((1, 3, 5, 5)) + '''
layer { name: "bn" type: "BatchNorm" bottom: "data" top: "bn" }
layer { name: "lrn" type: "LRN" bottom: "bn" top: "lrn" }
layer { name: "f" type: "Input" top: "f" input_param { shape { dim: 3 } } }
layer { name: "sc" type: "Scale" bottom: "lrn" bottom: "f" top: "sc" }
layer { name: "sm" type: "Softmax" bottom: "sc" top: "sm" }
'''
    graph = parse_prototxt(text)
    assert graph.tensors["sc"].shape == (1, 3, 5, 5)
    assert graph.tensors["sm"].shape == (1, 3, 5, 5)

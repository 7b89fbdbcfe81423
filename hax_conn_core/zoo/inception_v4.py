"""Inception-v4 (Szegedy et al. 2016, arXiv:1602.07261), in Caffe form, at 299x299.

Follows TF-slim's ``inception_v4.py`` (the reference for the published weights and for the Caffe
ports): the stem of the paper's Figure 3, 4 x Inception-A, Reduction-A (k, l, m, n = 192, 224,
256, 384), 7 x Inception-B, Reduction-B, 3 x Inception-C, then 8x8 average pooling, dropout and
the classifier. No auxiliary head. Each convolution is Conv + BatchNorm + Scale + ReLU.
"""

from hax_conn_core.zoo.inception_common import head, unit
from hax_conn_core.zoo.netspec import NetBuilder

#: Modules per kind (paper, Figure 9).
BLOCKS = {"a": 4, "b": 7, "c": 3}


def _stem(net: NetBuilder, x: str) -> str:
    x = unit(net, "stem/conv1_3x3_s2", x, 32, 3, stride=2, valid=True)     # 149x149x32
    x = unit(net, "stem/conv2_3x3", x, 32, 3, valid=True)                  # 147x147x32
    x = unit(net, "stem/conv3_3x3", x, 64, 3)                              # 147x147x64
    conv = unit(net, "stem/mixed3a/conv_3x3_s2", x, 96, 3, stride=2, valid=True)
    pool = net.pool("stem/mixed3a/pool", x, "MAX", 3, stride=2)
    x = net.concat("stem/mixed3a", [pool, conv])                           # 73x73x160
    b0 = unit(net, "stem/mixed4a/branch0_1x1", x, 64, 1)
    b0 = unit(net, "stem/mixed4a/branch0_3x3", b0, 96, 3, valid=True)
    b1 = unit(net, "stem/mixed4a/branch1_1x1", x, 64, 1)
    b1 = unit(net, "stem/mixed4a/branch1_1x7", b1, 64, (1, 7))
    b1 = unit(net, "stem/mixed4a/branch1_7x1", b1, 64, (7, 1))
    b1 = unit(net, "stem/mixed4a/branch1_3x3", b1, 96, 3, valid=True)
    x = net.concat("stem/mixed4a", [b0, b1])                               # 71x71x192
    conv = unit(net, "stem/mixed5a/conv_3x3_s2", x, 192, 3, stride=2, valid=True)
    pool = net.pool("stem/mixed5a/pool", x, "MAX", 3, stride=2)
    return net.concat("stem/mixed5a", [conv, pool])                        # 35x35x384


def _avg_pool_proj(net: NetBuilder, p: str, x: str, num_output: int) -> str:
    pool = net.pool(f"{p}/branch3_pool", x, "AVE", 3, stride=1, pad=1)
    return unit(net, f"{p}/branch3_1x1", pool, num_output, 1)


def _inception_a(net: NetBuilder, p: str, x: str) -> str:
    b0 = unit(net, f"{p}/branch0_1x1", x, 96, 1)
    b1 = unit(net, f"{p}/branch1_1x1", x, 64, 1)
    b1 = unit(net, f"{p}/branch1_3x3", b1, 96, 3)
    b2 = unit(net, f"{p}/branch2_1x1", x, 64, 1)
    b2 = unit(net, f"{p}/branch2_3x3a", b2, 96, 3)
    b2 = unit(net, f"{p}/branch2_3x3b", b2, 96, 3)
    b3 = _avg_pool_proj(net, p, x, 96)
    return net.concat(f"{p}/concat", [b0, b1, b2, b3])                     # 35x35x384


def _reduction_a(net: NetBuilder, p: str, x: str) -> str:
    b0 = unit(net, f"{p}/branch0_3x3_s2", x, 384, 3, stride=2, valid=True)
    b1 = unit(net, f"{p}/branch1_1x1", x, 192, 1)
    b1 = unit(net, f"{p}/branch1_3x3", b1, 224, 3)
    b1 = unit(net, f"{p}/branch1_3x3_s2", b1, 256, 3, stride=2, valid=True)
    b2 = net.pool(f"{p}/branch2_pool", x, "MAX", 3, stride=2)
    return net.concat(f"{p}/concat", [b0, b1, b2])                         # 17x17x1024


def _inception_b(net: NetBuilder, p: str, x: str) -> str:
    b0 = unit(net, f"{p}/branch0_1x1", x, 384, 1)
    b1 = unit(net, f"{p}/branch1_1x1", x, 192, 1)
    b1 = unit(net, f"{p}/branch1_1x7", b1, 224, (1, 7))
    b1 = unit(net, f"{p}/branch1_7x1", b1, 256, (7, 1))
    b2 = unit(net, f"{p}/branch2_1x1", x, 192, 1)
    b2 = unit(net, f"{p}/branch2_7x1a", b2, 192, (7, 1))
    b2 = unit(net, f"{p}/branch2_1x7a", b2, 224, (1, 7))
    b2 = unit(net, f"{p}/branch2_7x1b", b2, 224, (7, 1))
    b2 = unit(net, f"{p}/branch2_1x7b", b2, 256, (1, 7))
    b3 = _avg_pool_proj(net, p, x, 128)
    return net.concat(f"{p}/concat", [b0, b1, b2, b3])                     # 17x17x1024


def _reduction_b(net: NetBuilder, p: str, x: str) -> str:
    b0 = unit(net, f"{p}/branch0_1x1", x, 192, 1)
    b0 = unit(net, f"{p}/branch0_3x3_s2", b0, 192, 3, stride=2, valid=True)
    b1 = unit(net, f"{p}/branch1_1x1", x, 256, 1)
    b1 = unit(net, f"{p}/branch1_1x7", b1, 256, (1, 7))
    b1 = unit(net, f"{p}/branch1_7x1", b1, 320, (7, 1))
    b1 = unit(net, f"{p}/branch1_3x3_s2", b1, 320, 3, stride=2, valid=True)
    b2 = net.pool(f"{p}/branch2_pool", x, "MAX", 3, stride=2)
    return net.concat(f"{p}/concat", [b0, b1, b2])                         # 8x8x1536


def _inception_c(net: NetBuilder, p: str, x: str) -> str:
    b0 = unit(net, f"{p}/branch0_1x1", x, 256, 1)
    b1 = unit(net, f"{p}/branch1_1x1", x, 384, 1)
    b1a = unit(net, f"{p}/branch1_1x3", b1, 256, (1, 3))
    b1b = unit(net, f"{p}/branch1_3x1", b1, 256, (3, 1))
    b2 = unit(net, f"{p}/branch2_1x1", x, 384, 1)
    b2 = unit(net, f"{p}/branch2_3x1a", b2, 448, (3, 1))
    b2 = unit(net, f"{p}/branch2_1x3a", b2, 512, (1, 3))
    b2a = unit(net, f"{p}/branch2_1x3b", b2, 256, (1, 3))
    b2b = unit(net, f"{p}/branch2_3x1b", b2, 256, (3, 1))
    b3 = _avg_pool_proj(net, p, x, 256)
    return net.concat(f"{p}/concat", [b0, b1a, b1b, b2a, b2b, b3])         # 8x8x1536


def build(input_hw: int = 299, num_classes: int = 1000) -> NetBuilder:
    net = NetBuilder("Inception-v4")
    x = net.input("data", (1, 3, input_hw, input_hw))
    x = _stem(net, x)
    for i in range(1, BLOCKS["a"] + 1):
        x = _inception_a(net, f"inception_a{i}", x)
    x = _reduction_a(net, "reduction_a", x)
    for i in range(1, BLOCKS["b"] + 1):
        x = _inception_b(net, f"inception_b{i}", x)
    x = _reduction_b(net, "reduction_b", x)
    for i in range(1, BLOCKS["c"] + 1):
        x = _inception_c(net, f"inception_c{i}", x)
    head(net, x, num_classes)
    return net

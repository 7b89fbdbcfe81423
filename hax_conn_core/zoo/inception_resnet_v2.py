"""Inception-ResNet-v2 (Szegedy et al. 2016, arXiv:1602.07261), in Caffe form, at 299x299.

Follows TF-slim's ``inception_resnet_v2.py``, the network behind the published weights (its stem
and Mixed_5b differ from the paper's Figure 3, as every public port does): stem, Mixed_5b,
10 x Block35 (scale 0.17), Mixed_6a, 20 x Block17 (scale 0.10), Mixed_7a, 9 x Block8 (scale 0.20)
plus a last Block8 without activation (scale 1.0), Conv2d_7b (1536), 8x8 average pooling,
dropout and the classifier. No auxiliary head.

Each residual block ends in a bias-carrying 1x1 "up" convolution (no batch norm) whose output is
scaled and added to the block's input: ``Eltwise`` SUM with ``coeff: 1, coeff: scale``.
"""

from typing import Callable, Dict, List

from hax_conn_core.zoo.inception_common import head, unit
from hax_conn_core.zoo.netspec import NetBuilder

#: Residual blocks per kind and their residual scales (TF-slim).
BLOCKS = {"block35": 10, "block17": 20, "block8": 10}
SCALES = {"block35": 0.17, "block17": 0.1, "block8": 0.2}
#: Output width of each kind (the width its "up" convolution restores).
WIDTHS = {"block35": 320, "block17": 1088, "block8": 2080}


def _stem(net: NetBuilder, x: str) -> str:
    x = unit(net, "conv2d_1a_3x3", x, 32, 3, stride=2, valid=True)          # 149x149x32
    x = unit(net, "conv2d_2a_3x3", x, 32, 3, valid=True)                    # 147x147x32
    x = unit(net, "conv2d_2b_3x3", x, 64, 3)                                # 147x147x64
    x = net.pool("maxpool_3a_3x3", x, "MAX", 3, stride=2)                   # 73x73x64
    x = unit(net, "conv2d_3b_1x1", x, 80, 1, valid=True)                    # 73x73x80
    x = unit(net, "conv2d_4a_3x3", x, 192, 3, valid=True)                   # 71x71x192
    x = net.pool("maxpool_5a_3x3", x, "MAX", 3, stride=2)                   # 35x35x192
    p = "mixed_5b"
    b0 = unit(net, f"{p}/branch0_1x1", x, 96, 1)
    b1 = unit(net, f"{p}/branch1_1x1", x, 48, 1)
    b1 = unit(net, f"{p}/branch1_5x5", b1, 64, 5)
    b2 = unit(net, f"{p}/branch2_1x1", x, 64, 1)
    b2 = unit(net, f"{p}/branch2_3x3a", b2, 96, 3)
    b2 = unit(net, f"{p}/branch2_3x3b", b2, 96, 3)
    b3 = net.pool(f"{p}/branch3_pool", x, "AVE", 3, stride=1, pad=1)
    b3 = unit(net, f"{p}/branch3_1x1", b3, 64, 1)
    return net.concat(f"{p}/concat", [b0, b1, b2, b3])                     # 35x35x320


def _block35(net: NetBuilder, p: str, x: str) -> List[str]:
    b0 = unit(net, f"{p}/branch0_1x1", x, 32, 1)
    b1 = unit(net, f"{p}/branch1_1x1", x, 32, 1)
    b1 = unit(net, f"{p}/branch1_3x3", b1, 32, 3)
    b2 = unit(net, f"{p}/branch2_1x1", x, 32, 1)
    b2 = unit(net, f"{p}/branch2_3x3a", b2, 48, 3)
    b2 = unit(net, f"{p}/branch2_3x3b", b2, 64, 3)
    return [b0, b1, b2]


def _block17(net: NetBuilder, p: str, x: str) -> List[str]:
    b0 = unit(net, f"{p}/branch0_1x1", x, 192, 1)
    b1 = unit(net, f"{p}/branch1_1x1", x, 128, 1)
    b1 = unit(net, f"{p}/branch1_1x7", b1, 160, (1, 7))
    b1 = unit(net, f"{p}/branch1_7x1", b1, 192, (7, 1))
    return [b0, b1]


def _block8(net: NetBuilder, p: str, x: str) -> List[str]:
    b0 = unit(net, f"{p}/branch0_1x1", x, 192, 1)
    b1 = unit(net, f"{p}/branch1_1x1", x, 192, 1)
    b1 = unit(net, f"{p}/branch1_1x3", b1, 224, (1, 3))
    b1 = unit(net, f"{p}/branch1_3x1", b1, 256, (3, 1))
    return [b0, b1]


_BRANCHES: Dict[str, Callable[[NetBuilder, str, str], List[str]]] = {
    "block35": _block35, "block17": _block17, "block8": _block8}


def _residual(net: NetBuilder, kind: str, p: str, x: str, scale: float, relu: bool) -> str:
    mixed = net.concat(f"{p}/concat", _BRANCHES[kind](net, p, x))
    up = net.conv(f"{p}/up_1x1", mixed, WIDTHS[kind], 1)
    # A scale of 1.0 (the last Block8) is a plain sum, written without coefficients.
    out = net.eltwise_sum(f"{p}/sum", [x, up], coeff=None if scale == 1.0 else (1.0, scale))
    if relu:
        net.relu(f"{p}/relu", out)
    return out


def _mixed_6a(net: NetBuilder, x: str) -> str:
    p = "mixed_6a"
    b0 = unit(net, f"{p}/branch0_3x3_s2", x, 384, 3, stride=2, valid=True)
    b1 = unit(net, f"{p}/branch1_1x1", x, 256, 1)
    b1 = unit(net, f"{p}/branch1_3x3", b1, 256, 3)
    b1 = unit(net, f"{p}/branch1_3x3_s2", b1, 384, 3, stride=2, valid=True)
    b2 = net.pool(f"{p}/branch2_pool", x, "MAX", 3, stride=2)
    return net.concat(f"{p}/concat", [b0, b1, b2])                         # 17x17x1088


def _mixed_7a(net: NetBuilder, x: str) -> str:
    p = "mixed_7a"
    b0 = unit(net, f"{p}/branch0_1x1", x, 256, 1)
    b0 = unit(net, f"{p}/branch0_3x3_s2", b0, 384, 3, stride=2, valid=True)
    b1 = unit(net, f"{p}/branch1_1x1", x, 256, 1)
    b1 = unit(net, f"{p}/branch1_3x3_s2", b1, 288, 3, stride=2, valid=True)
    b2 = unit(net, f"{p}/branch2_1x1", x, 256, 1)
    b2 = unit(net, f"{p}/branch2_3x3", b2, 288, 3)
    b2 = unit(net, f"{p}/branch2_3x3_s2", b2, 320, 3, stride=2, valid=True)
    b3 = net.pool(f"{p}/branch3_pool", x, "MAX", 3, stride=2)
    return net.concat(f"{p}/concat", [b0, b1, b2, b3])                     # 8x8x2080


def build(input_hw: int = 299, num_classes: int = 1000) -> NetBuilder:
    net = NetBuilder("Inception-ResNet-v2")
    x = net.input("data", (1, 3, input_hw, input_hw))
    x = _stem(net, x)
    for i in range(1, BLOCKS["block35"] + 1):
        x = _residual(net, "block35", f"block35_{i}", x, SCALES["block35"], relu=True)
    x = _mixed_6a(net, x)
    for i in range(1, BLOCKS["block17"] + 1):
        x = _residual(net, "block17", f"block17_{i}", x, SCALES["block17"], relu=True)
    x = _mixed_7a(net, x)
    for i in range(1, BLOCKS["block8"] + 1):
        last = i == BLOCKS["block8"]
        # TF-slim's last Block8 has scale 1.0 and no activation.
        x = _residual(net, "block8", f"block8_{i}", x, 1.0 if last else SCALES["block8"],
                      relu=not last)
    x = unit(net, "conv2d_7b_1x1", x, 1536, 1)
    head(net, x, num_classes)
    return net

"""VGG-16 and VGG-19 as the ILSVRC-2014 Caffe deploy files (Simonyan & Zisserman) write them.

Configurations D (16 weight layers) and E (19) of the paper's Table 1: five stages of 3x3
convolutions (pad 1) with ReLU, each closed by 2x2 max pooling, then fc6/fc7 (4096, ReLU,
dropout 0.5) and fc8.
"""

from typing import Tuple

from hax_conn_core.zoo.alexnet import classifier_head
from hax_conn_core.zoo.netspec import NetBuilder

#: Convolutions per stage (paper, Table 1) and the stage widths.
STAGE_DEPTHS = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
STAGE_WIDTHS: Tuple[int, ...] = (64, 128, 256, 512, 512)


def build(depth: int, input_hw: int = 224, num_classes: int = 1000) -> NetBuilder:
    net = NetBuilder(f"VGG_ILSVRC_{depth}_layers")
    x = net.input("data", (1, 3, input_hw, input_hw))
    for stage, (convs, width) in enumerate(zip(STAGE_DEPTHS[depth], STAGE_WIDTHS), start=1):
        for i in range(1, convs + 1):
            x = net.conv(f"conv{stage}_{i}", x, width, 3, pad=1)
            net.relu(f"relu{stage}_{i}", x)
        x = net.pool(f"pool{stage}", x, "MAX", 2, stride=2)
    classifier_head(net, x, num_classes)
    return net

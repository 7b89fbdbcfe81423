"""DenseNet-121 (Huang et al. 2017) in the style of shicai/DenseNet-Caffe's ``DenseNet_121``.

Growth rate 32, bottleneck width 4 x 32 = 128, compression 0.5, blocks of 6, 12, 24 and 16
layers (paper, Table 1). Pre-activation layers: BatchNorm (writing a new tensor), in-place
Scale and ReLU, then a bias-free convolution; each layer's 32 new channels are concatenated to
its input. The classifier is a 1x1 convolution after global average pooling (``fc6``), as in
that Caffe version, followed by our Softmax ``prob``.

One shape detail differs from shicai's file: its pool1 (3x3, stride 2, pad 1) relies on
``round_mode: FLOOR``, a later Caffe field that older parsers (and the HaX-CoNN artifact's copy
of the file) lack, without which pool1 gives 57x57. We write pool1 without padding, which under
Caffe's default ceil rounding gives 56x56 everywhere (torchvision's shapes).
"""

from typing import Tuple

from hax_conn_core.zoo.netspec import NetBuilder

BLOCK_LAYERS: Tuple[int, ...] = (6, 12, 24, 16)
GROWTH = 32
BOTTLENECK = 4 * GROWTH
STEM_WIDTH = 64
BN_EPS = 1e-5


def _bn_relu(net: NetBuilder, prefix: str, relu_name: str, bottom: str) -> str:
    x = net.batch_norm(f"{prefix}/bn", bottom, top=f"{prefix}/bn", eps=BN_EPS)
    net.scale(f"{prefix}/scale", x)
    net.relu(relu_name, x)
    return x


def _dense_layer(net: NetBuilder, stage: int, i: int, bottom: str) -> str:
    tag = f"{stage}_{i}"
    x = _bn_relu(net, f"conv{tag}/x1", f"relu{tag}/x1", bottom)
    x = net.conv(f"conv{tag}/x1", x, BOTTLENECK, 1, bias=False)
    x = _bn_relu(net, f"conv{tag}/x2", f"relu{tag}/x2", x)
    x = net.conv(f"conv{tag}/x2", x, GROWTH, 3, pad=1, bias=False)
    return net.concat(f"concat_{tag}", [bottom, x])


def build(input_hw: int = 224, num_classes: int = 1000) -> NetBuilder:
    net = NetBuilder("DenseNet-121")
    x = net.input("data", (1, 3, input_hw, input_hw))
    x = net.conv_bn("conv1", x, STEM_WIDTH, 7, stride=2, pad=3, bn_name="conv1/bn",
                    scale_name="conv1/scale", relu_name="relu1", bn_top="conv1/bn", eps=BN_EPS)
    x = net.pool("pool1", x, "MAX", 3, stride=2)
    channels = STEM_WIDTH
    for stage, layers in enumerate(BLOCK_LAYERS, start=2):
        for i in range(1, layers + 1):
            x = _dense_layer(net, stage, i, x)
        channels += layers * GROWTH
        if stage < 1 + len(BLOCK_LAYERS):
            # Transition: BN-ReLU, 1x1 convolution halving the channels, 2x2 average pooling.
            x = _bn_relu(net, f"conv{stage}_blk", f"relu{stage}_blk", x)
            channels //= 2
            x = net.conv(f"conv{stage}_blk", x, channels, 1, bias=False)
            x = net.pool(f"pool{stage}", x, "AVE", 2, stride=2)
    last = 1 + len(BLOCK_LAYERS)
    x = _bn_relu(net, f"conv{last}_blk", f"relu{last}_blk", x)
    x = net.pool(f"pool{last}", x, "AVE", global_pooling=True)
    x = net.conv(f"fc{last + 1}", x, num_classes, 1)
    net.softmax("prob", x)
    return net

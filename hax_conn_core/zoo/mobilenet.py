"""MobileNet-v1 1.0/224 (Howard et al. 2017) in the style of shicai/MobileNet-Caffe.

The paper's Table 1: a full 3x3 convolution (32, stride 2), then 13 depthwise-separable blocks,
each a depthwise 3x3 convolution (``group`` = channels) and a pointwise 1x1 convolution, both
bias-free and followed by BatchNorm, Scale and ReLU. Global average pooling, then the classifier
as a 1x1 convolution (``fc7``) and Softmax ``prob``.

shicai's file writes each BatchNorm to a new tensor (``conv1/bn``); the HaX-CoNN artifact's
``prototxt_input_files/mobilenet.prototxt`` (same names and layers) runs BatchNorm in place on
the convolution's output, and so do we: BatchNorm then belongs with its convolution, and the
valid cuts fall where the artifact's do (after each ReLU), not between a convolution and the
batch norm every backend folds into it.
"""

from typing import Tuple

from hax_conn_core.zoo.netspec import NetBuilder

#: (shicai's block name, pointwise output channels, depthwise stride), paper Table 1.
BLOCKS: Tuple[Tuple[str, int, int], ...] = (
    ("conv2_1", 64, 1), ("conv2_2", 128, 2),
    ("conv3_1", 128, 1), ("conv3_2", 256, 2),
    ("conv4_1", 256, 1), ("conv4_2", 512, 2),
    ("conv5_1", 512, 1), ("conv5_2", 512, 1), ("conv5_3", 512, 1),
    ("conv5_4", 512, 1), ("conv5_5", 512, 1), ("conv5_6", 1024, 2),
    ("conv6", 1024, 1),
)


def _unit(net: NetBuilder, name: str, relu_name: str, bottom: str, num_output: int,
          kernel: int, stride: int = 1, group: int = 1) -> str:
    return net.conv_bn(name, bottom, num_output, kernel, stride=stride, pad=kernel // 2,
                       group=group, bn_name=f"{name}/bn", scale_name=f"{name}/scale",
                       relu_name=relu_name)


def build(input_hw: int = 224, num_classes: int = 1000) -> NetBuilder:
    net = NetBuilder("MobileNet-v1")
    x = net.input("data", (1, 3, input_hw, input_hw))
    x = _unit(net, "conv1", "relu1", x, 32, 3, stride=2)
    channels = 32
    for name, out, stride in BLOCKS:
        relu = "relu" + name[len("conv"):]
        x = _unit(net, f"{name}/dw", f"{relu}/dw", x, channels, 3, stride=stride, group=channels)
        x = _unit(net, f"{name}/sep", f"{relu}/sep", x, out, 1)
        channels = out
    x = net.pool("pool6", x, "AVE", global_pooling=True)
    x = net.conv("fc7", x, num_classes, 1)
    net.softmax("prob", x)
    return net

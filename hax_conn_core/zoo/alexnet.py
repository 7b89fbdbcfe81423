"""AlexNet as BVLC Caffe's ``models/bvlc_alexnet/deploy.prototxt`` describes it.

The two-tower original: conv2, conv4 and conv5 use ``group: 2``; LRN follows conv1 and conv2,
before pooling. Our input is 224x224 rather than BVLC's 227: Caffe rounds pooling output sizes up,
so conv1's 54x54 output still pools to 27x27 and every later shape, and the parameter count
(60,965,224), is unchanged.
"""

from hax_conn_core.zoo.netspec import NetBuilder

# (name, num_output, kernel, stride, pad, group, then LRN?, then max pool?)
_CONVS = (
    ("conv1", 96, 11, 4, 0, 1, True, True),
    ("conv2", 256, 5, 1, 2, 2, True, True),
    ("conv3", 384, 3, 1, 1, 1, False, False),
    ("conv4", 384, 3, 1, 1, 2, False, False),
    ("conv5", 256, 3, 1, 1, 2, False, True),
)


def build(input_hw: int = 224, num_classes: int = 1000) -> NetBuilder:
    net = NetBuilder("AlexNet")
    x = net.input("data", (1, 3, input_hw, input_hw))
    for name, num_output, kernel, stride, pad, group, lrn, pool in _CONVS:
        index = name[-1]
        x = net.conv(name, x, num_output, kernel, stride=stride, pad=pad, group=group)
        net.relu(f"relu{index}", x)
        if lrn:
            x = net.lrn(f"norm{index}", x, local_size=5, alpha=0.0001, beta=0.75)
        if pool:
            x = net.pool(f"pool{index}", x, "MAX", 3, stride=2)
    classifier_head(net, x, num_classes)
    return net


def classifier_head(net: NetBuilder, x: str, num_classes: int) -> None:
    """fc6 and fc7 (4096, in-place ReLU, dropout 0.5), fc8 and Softmax ``prob``: the head that
    AlexNet and VGG share (the BVLC and ILSVRC-2014 deploy files name its layers alike)."""
    for index in (6, 7):
        x = net.inner_product(f"fc{index}", x, 4096)
        net.relu(f"relu{index}", x)
        net.dropout(f"drop{index}", x, 0.5)
    x = net.inner_product("fc8", x, num_classes)
    net.softmax("prob", x)

"""GoogLeNet (Inception-v1) as BVLC Caffe's ``models/bvlc_googlenet/deploy.prototxt``.

The deploy net: no auxiliary classifiers; LRN after pool1 and after conv2/3x3; nine inception
modules with the widths of the paper's Table 1 (Szegedy et al. 2015, "Going deeper with
convolutions"); 7x7 average pooling, dropout 0.4 and the 1000-way ``loss3/classifier``.
"""

from hax_conn_core.zoo.netspec import NetBuilder

#: Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
INCEPTION_WIDTHS = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
#: A max pooling (3x3, stride 2) follows these modules.
POOL_AFTER = {"3b": "pool3/3x3_s2", "4e": "pool4/3x3_s2"}


def _conv_relu(net: NetBuilder, name: str, relu: str, bottom: str, num_output: int,
               kernel: int, pad: int = 0) -> str:
    x = net.conv(name, bottom, num_output, kernel, pad=pad)
    net.relu(relu, x)
    return x


def _inception(net: NetBuilder, key: str, bottom: str) -> str:
    n1, n3r, n3, n5r, n5, proj = INCEPTION_WIDTHS[key]
    p = f"inception_{key}"
    b1 = _conv_relu(net, f"{p}/1x1", f"{p}/relu_1x1", bottom, n1, 1)
    b3 = _conv_relu(net, f"{p}/3x3_reduce", f"{p}/relu_3x3_reduce", bottom, n3r, 1)
    b3 = _conv_relu(net, f"{p}/3x3", f"{p}/relu_3x3", b3, n3, 3, pad=1)
    b5 = _conv_relu(net, f"{p}/5x5_reduce", f"{p}/relu_5x5_reduce", bottom, n5r, 1)
    b5 = _conv_relu(net, f"{p}/5x5", f"{p}/relu_5x5", b5, n5, 5, pad=2)
    bp = net.pool(f"{p}/pool", bottom, "MAX", 3, stride=1, pad=1)
    bp = _conv_relu(net, f"{p}/pool_proj", f"{p}/relu_pool_proj", bp, proj, 1)
    return net.concat(f"{p}/output", [b1, b3, b5, bp])


def build(input_hw: int = 224, num_classes: int = 1000) -> NetBuilder:
    net = NetBuilder("GoogleNet")
    x = net.input("data", (1, 3, input_hw, input_hw))
    x = net.conv("conv1/7x7_s2", x, 64, 7, stride=2, pad=3)
    net.relu("conv1/relu_7x7", x)
    x = net.pool("pool1/3x3_s2", x, "MAX", 3, stride=2)
    x = net.lrn("pool1/norm1", x, local_size=5, alpha=0.0001, beta=0.75)
    x = _conv_relu(net, "conv2/3x3_reduce", "conv2/relu_3x3_reduce", x, 64, 1)
    x = _conv_relu(net, "conv2/3x3", "conv2/relu_3x3", x, 192, 3, pad=1)
    x = net.lrn("conv2/norm2", x, local_size=5, alpha=0.0001, beta=0.75)
    x = net.pool("pool2/3x3_s2", x, "MAX", 3, stride=2)
    for key in INCEPTION_WIDTHS:
        x = _inception(net, key, x)
        if key in POOL_AFTER:
            x = net.pool(POOL_AFTER[key], x, "MAX", 3, stride=2)
    x = net.pool("pool5/7x7_s1", x, "AVE", 7, stride=1)
    net.dropout("pool5/drop_7x7_s1", x, 0.4)
    x = net.inner_product("loss3/classifier", x, num_classes)
    net.softmax("prob", x)
    return net

"""The convolution unit shared by the Caffe ports of Inception-v4 and Inception-ResNet-v2.

Both nets come from TF-slim (``nets/inception_v4.py``, ``nets/inception_resnet_v2.py``), where
every convolution is bias-free, batch-normalised (eps 0.001) and followed by ReLU; the Caffe
ports write that as Convolution, BatchNorm, Scale and ReLU, the last three in place.
"""

from typing import Tuple, Union

from hax_conn_core.zoo.netspec import NetBuilder

Kernel = Union[int, Tuple[int, int]]
BN_EPS = 0.001


def unit(net: NetBuilder, name: str, bottom: str, num_output: int, kernel: Kernel, *,
         stride: int = 1, valid: bool = False) -> str:
    """Conv + BN + Scale + ReLU (4 layers); ``valid`` pads nothing, otherwise 'same' padding."""
    kh, kw = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    pad = (0, 0) if valid else (kh // 2, kw // 2)
    return net.conv_bn(name, bottom, num_output, (kh, kw), stride=stride, pad=pad,
                       bn_name=f"{name}/bn", scale_name=f"{name}/scale",
                       relu_name=f"{name}/relu", eps=BN_EPS)


def head(net: NetBuilder, bottom: str, num_classes: int) -> str:
    """Global average pooling, dropout (keep 0.8 in TF-slim), classifier and softmax."""
    x = net.pool("pool_8x8", bottom, "AVE", global_pooling=True)
    net.dropout("pool_8x8/drop", x, 0.2)
    x = net.inner_product("classifier", x, num_classes)
    return net.softmax("prob", x)

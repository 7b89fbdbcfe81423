"""ResNet-18/50/101/152 in the style of KaimingHe/deep-residual-networks' Caffe deploy files.

Bias-free convolutions, each followed by in-place BatchNorm (``bn...``) and Scale (``scale...``);
in-place ReLU; the shortcut added with ``Eltwise`` SUM, then ReLU. Stride 2 sits in the first
1x1 (``branch2a``) and the projection (``branch1``) of stages 3-5, as in those files. Layer names
follow them too: ``res4b22_branch2c``, ``bn4b22_branch2c``, ``scale4b22_branch2c``...
One deliberate difference: KaimingHe's ResNet-50 ``conv1`` carries a bias (64 parameters that
the batch norm after it makes redundant); ours is bias-free like every other convolution, as
in torchvision, whose published parameter counts we match exactly.

KaimingHe released no ResNet-18; ours uses the same conventions with the paper's basic block
(two 3x3 convolutions), with a projection only where the shape changes (stages 3-5), as the
torchvision model whose parameter count we compare against does.
"""

from typing import List, Tuple

from hax_conn_core.zoo.netspec import NetBuilder

#: Blocks per stage (res2..res5), He et al. 2016, Table 1.
STAGE_BLOCKS = {18: (2, 2, 2, 2), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
#: Bottleneck (inner) widths per stage; a bottleneck block's output is 4x wider.
STAGE_WIDTHS: Tuple[int, ...] = (64, 128, 256, 512)


def _block_names(depth: int, stage: int, count: int) -> List[str]:
    """KaimingHe's block suffixes: a, b, c...; in ResNet-101/152, stages 3 and 4 (the long
    ones) are numbered instead: a, b1, b2... (``res4b22`` is ResNet-101's last res4 block)."""
    if depth >= 101 and stage in (3, 4):
        return ["a"] + [f"b{i}" for i in range(1, count)]
    return [chr(ord("a") + i) for i in range(count)]


def _unit(net: NetBuilder, tag: str, branch: str, bottom: str, num_output: int, kernel: int,
          stride: int = 1, relu: bool = True) -> str:
    """res<tag>_<branch> convolution + bn + scale (+ relu), all in place on the conv output."""
    return net.conv_bn(f"res{tag}_{branch}", bottom, num_output, kernel, stride=stride,
                       pad=kernel // 2, relu=relu, bn_name=f"bn{tag}_{branch}",
                       scale_name=f"scale{tag}_{branch}",
                       relu_name=f"res{tag}_{branch}_relu")


def _block(net: NetBuilder, tag: str, bottom: str, width: int, stride: int, project: bool,
           bottleneck: bool) -> str:
    out_width = width * 4 if bottleneck else width
    shortcut = bottom
    if project:
        shortcut = _unit(net, tag, "branch1", bottom, out_width, 1, stride, relu=False)
    if bottleneck:
        x = _unit(net, tag, "branch2a", bottom, width, 1, stride)
        x = _unit(net, tag, "branch2b", x, width, 3)
        x = _unit(net, tag, "branch2c", x, out_width, 1, relu=False)
    else:
        x = _unit(net, tag, "branch2a", bottom, width, 3, stride)
        x = _unit(net, tag, "branch2b", x, width, 3, relu=False)
    x = net.eltwise_sum(f"res{tag}", [shortcut, x])
    net.relu(f"res{tag}_relu", x)
    return x


def build(depth: int, input_hw: int = 224, num_classes: int = 1000) -> NetBuilder:
    bottleneck = depth >= 50
    net = NetBuilder(f"ResNet-{depth}")
    x = net.input("data", (1, 3, input_hw, input_hw))
    x = net.conv_bn("conv1", x, 64, 7, stride=2, pad=3, bn_name="bn_conv1",
                    scale_name="scale_conv1", relu_name="conv1_relu")
    x = net.pool("pool1", x, "MAX", 3, stride=2)
    for stage, (blocks, width) in enumerate(zip(STAGE_BLOCKS[depth], STAGE_WIDTHS), start=2):
        for i, suffix in enumerate(_block_names(depth, stage, blocks)):
            first = i == 0
            stride = 2 if first and stage > 2 else 1
            # A projection where the shape changes: every stage's first block for bottleneck
            # nets (64 -> 256 channels even in res2), stages 3-5 only for basic blocks.
            project = first and (bottleneck or stage > 2)
            x = _block(net, f"{stage}{suffix}", x, width, stride, project, bottleneck)
    x = net.pool("pool5", x, "AVE", input_hw // 32, stride=1)
    x = net.inner_product("fc1000", x, num_classes)
    net.softmax("prob", x)
    return net

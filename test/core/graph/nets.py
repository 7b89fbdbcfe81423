"""Small hand-written prototxts for the graph tests."""

from typing import Sequence


def conv(name, bottom, top=None, num_output=4, kernel=3, stride=1, pad=1, extra=""):
    return (f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" '
            f'top: "{top or name}" convolution_param {{ num_output: {num_output} '
            f'kernel_size: {kernel} stride: {stride} pad: {pad} {extra}}} }}\n')


def relu(name, blob):
    return f'layer {{ name: "{name}" type: "ReLU" bottom: "{blob}" top: "{blob}" }}\n'


def layer(name, kind, bottoms: Sequence[str], tops: Sequence[str], body=""):
    b = " ".join(f'bottom: "{x}"' for x in bottoms)
    t = " ".join(f'top: "{x}"' for x in tops)
    return f'layer {{ name: "{name}" type: "{kind}" {b} {t} {body} }}\n'


def input_layer(shape=(1, 3, 8, 8), name="data"):
    dims = " ".join(f"dim: {d}" for d in shape)
    return (f'layer {{ name: "{name}" type: "Input" top: "{name}" '
            f'input_param {{ shape {{ {dims} }} }} }}\n')


def legacy_input(shape=(1, 3, 8, 8), name="data"):
    dims = "\n".join(f"input_dim: {d}" for d in shape)
    return f'input: "{name}"\n{dims}\n'


#: data -> conv1 -> relu1 (in place) -> conv2 -> pool -> fc -> prob
CHAIN = (input_layer() + conv("conv1", "data") + relu("relu1", "conv1") +
         conv("conv2", "conv1") +
         layer("pool", "Pooling", ["conv2"], ["pool"],
               "pooling_param { pool: MAX kernel_size: 2 stride: 2 }") +
         layer("fc", "InnerProduct", ["pool"], ["fc"], "inner_product_param { num_output: 10 }") +
         layer("prob", "Softmax", ["fc"], ["prob"]))

#: a residual block: stem -> (a -> b) + stem -> sum -> relu -> head
RESIDUAL = (input_layer() + conv("stem", "data") +              # 0, 1
            conv("a", "stem") + relu("a_relu", "a") +            # 2, 3
            conv("b", "a") +                                     # 4
            layer("sum", "Eltwise", ["stem", "b"], ["sum"]) +    # 5
            relu("sum_relu", "sum") +                            # 6
            conv("head", "sum"))                                 # 7

#: an inception-like branch: stem -> {b1, b2 -> b2b} -> concat -> out
BRANCHES = (input_layer() + conv("stem", "data") +               # 0, 1
            conv("b1", "stem", kernel=1, pad=0) +                # 2
            conv("b2", "stem", kernel=1, pad=0) +                # 3
            conv("b2b", "b2") +                                  # 4
            layer("cat", "Concat", ["b1", "b2b"], ["cat"]) +     # 5
            conv("out", "cat"))                                  # 6

"""Generated prototxts of any size, for scale tests and the graph bench: chains of
convolutions with in-place ReLUs, and residual nets (conv, ReLU, conv, Eltwise sum with the
block's input, ReLU). Small tensors (4 channels, 8x8), so that only the layer count grows."""

from __future__ import annotations


def _input() -> str:
    return ('layer { name: "data" type: "Input" top: "data" '
            'input_param { shape { dim: 1 dim: 4 dim: 8 dim: 8 } } }\n')


def _conv(name: str, bottom: str) -> str:
    return (f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}" '
            f'convolution_param {{ num_output: 4 kernel_size: 3 pad: 1 }} }}\n')


def _relu(name: str, blob: str) -> str:
    return f'layer {{ name: "{name}" type: "ReLU" bottom: "{blob}" top: "{blob}" }}\n'


def chain_prototxt(layers: int) -> str:
    """``layers`` layers: Input, then conv / in-place ReLU pairs (a valid cut after each
    ReLU), ending with a convolution when the count is even."""
    parts = ['name: "chain"\n', _input()]
    previous = "data"
    count = 1
    k = 0
    while count < layers:
        name = f"c{k}"
        parts.append(_conv(name, previous))
        count += 1
        if count < layers:
            parts.append(_relu(f"r{k}", name))
            count += 1
        previous = name
        k += 1
    return "".join(parts)


def residual_prototxt(layers: int) -> str:
    """About ``layers`` layers (exactly ``1 + 1 + 5 * blocks``): Input, a stem convolution,
    then residual blocks of 5 layers; a valid cut only after each block's final ReLU."""
    blocks = max(1, (layers - 2) // 5)
    parts = ['name: "residual"\n', _input(), _conv("stem", "data")]
    previous = "stem"
    for k in range(blocks):
        parts += [_conv(f"a{k}", previous), _relu(f"ra{k}", f"a{k}"), _conv(f"b{k}", f"a{k}"),
                  f'layer {{ name: "s{k}" type: "Eltwise" bottom: "{previous}" '
                  f'bottom: "b{k}" top: "s{k}" }}\n', _relu(f"rs{k}", f"s{k}")]
        previous = f"s{k}"
    return "".join(parts)


def residual_layer_count(layers: int) -> int:
    """The exact number of layers ``residual_prototxt(layers)`` has."""
    return 2 + 5 * max(1, (layers - 2) // 5)

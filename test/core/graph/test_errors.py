"""Broken prototxts: every one is a ModelError saying what, where and what was expected."""

import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hax_conn_core.errors import ModelError
from hax_conn_core.graph.prototxt import parse_prototxt

from . import nets

IN = nets.input_layer((1, 3, 8, 8))

BROKEN = [
    # (text, regex the message must match)
    ("layer { name: 'a' type: 'ReLU' bottom: 'data' top: 'x' \n  nme: 1 }",
     r"^<string>:2:3: .*no field named \"nme\""),
    (IN + "layer { name: 'a' type: 'ReLU' bottom: 'data' top: 'x' ",
     r"^<string>:\d+:\d+: "),
    (IN + "layer { name: 'p' type: 'PReLU' bottom: 'data' top: 'x' }",
     r"layer 'p' \(index 1\) has unsupported type 'PReLU'.*supported types: Input, Conv"),
    (IN + "layer { name: 'p' type: 'PReLU' bottom: 'data' top: 'x' prelu_param { } }",
     r"layer 'p' \(index 1\) has unsupported type 'PReLU'"),
    (IN + "layer { name: 'r' type: 'Relu' bottom: 'data' top: 'x' }",
     r"unsupported type 'Relu' \(did you mean 'ReLU'\?\)"),
    ("layer { name: 'd' type: 'Data' top: 'data' data_param { source: 'x' batch_size: 1 } }",
     r"layer 'd' \(index 0\) has type 'Data', which reads training data; expected a deploy"),
    (IN + "layer { name: 'n' bottom: 'data' top: 'x' }", r"layer 'n' \(index 1\) has no type"),
    (IN + "layer { name: 'r' type: 'ReLU' bottom: 'nope' top: 'x' }",
     r"layer 'r' \(index 1\): bottom 'nope' is not produced by any earlier layer"),
    (IN + "layer { name: 'a' type: 'ReLU' bottom: 'later' top: 'x' }\n"
          "layer { name: 'b' type: 'ReLU' bottom: 'x' top: 'later' }",
     r"layer 'a' \(index 1\): bottom 'later' is produced only later, by layer 'b' \(index 2\)"),
    (IN + "layer { name: 'e' type: 'Eltwise' bottom: 'data' bottom: 'p' top: 'e' }".replace(
        "layer { name: 'e'", "layer { name: 'p' type: 'Pooling' bottom: 'data' top: 'p' "
        "pooling_param { kernel_size: 2 stride: 2 } }\nlayer { name: 'e'"),
     r"layer 'e' \(index 2\).*bottom 1 \('p'\) has shape 1x3x4x4; expected 1x3x8x8"),
    (IN + nets.conv("c", "data", kernel=1, pad=0) +
     "layer { name: 'cat' type: 'Concat' bottom: 'data' bottom: 'p' top: 'cat' }".replace(
         "bottom: 'p'", "bottom: 'c' ") + "\n" +
     "layer { name: 'p' type: 'Pooling' bottom: 'cat' top: 'p' pooling_param { kernel_size: 2 "
     "stride: 2 } }\nlayer { name: 'bad' type: 'Concat' bottom: 'p' bottom: 'c' top: 'bad' }",
     r"layer 'bad' \(index 4\).*bottom 1 \('c'\) has shape 1x4x8x8; expected 1x\*x4x4"),
    (IN + "layer { name: 'fc' type: 'InnerProduct' bottom: 'data' top: 'fc' "
          "inner_product_param { num_output: 3 axis: 4 } }",
     r"layer 'fc' \(index 1\).*axis 4 is out of range for an input of 4 axes"),
    (IN + "layer { name: 'fc' type: 'InnerProduct' bottom: 'data' top: 'fc' }",
     r"layer 'fc' \(index 1\).*num_output >= 1"),
    (IN + "layer { name: 'fc' type: 'InnerProduct' bottom: 'data' top: 'fc' "
          "inner_product_param { num_output: 3 transpose: true } }",
     r"layer 'fc' \(index 1\).*transpose: true is not supported"),
    (IN + nets.conv("c", "data", num_output=4, extra="group: 2"),
     r"3 input channels are not divisible by group 2"),
    (IN + nets.conv("c", "data", kernel=9, pad=0),
     r"layer 'c' \(index 1\).*output shape 1x4x0x0 is empty"),
    (IN + "layer { name: 'c' type: 'Convolution' bottom: 'data' top: 'c' "
          "convolution_param { num_output: 2 } }",
     r"no kernel size given; expected kernel_size or kernel_h and kernel_w"),
    (IN + "layer { name: 'c' type: 'Convolution' bottom: 'data' top: 'c' "
          "convolution_param { num_output: 2 kernel_size: 3 kernel_h: 3 kernel_w: 3 } }",
     r"both kernel_size and kernel_h/kernel_w given"),
    (IN + "layer { name: 'c' type: 'Convolution' bottom: 'data' top: 'c' "
          "convolution_param { num_output: 2 kernel_h: 3 } }",
     r"only one of kernel_h/kernel_w given"),
    (IN + "layer { name: 'p' type: 'Pooling' bottom: 'data' top: 'p' "
          "pooling_param { pool: STOCHASTIC kernel_size: 2 } }",
     r"pooling method STOCHASTIC; expected MAX or AVE"),
    (IN + "layer { name: 'p' type: 'Pooling' bottom: 'data' top: 'p' "
          "pooling_param { global_pooling: true kernel_size: 2 } }",
     r"global_pooling with a kernel size"),
    (IN + "layer { name: 'p' type: 'Pooling' bottom: 'data' top: 'p' "
          "pooling_param { kernel_size: 2 pad: 2 } }",
     r"pad \(2, 2\) is not smaller than kernel \(2, 2\)"),
    (IN + "layer { name: 'l' type: 'LRN' bottom: 'data' top: 'l' lrn_param { local_size: 4 } }",
     r"LRN local_size 4; expected an odd number"),
    (IN + "layer { name: 'e' type: 'Eltwise' bottom: 'data' top: 'e' }",
     r"Eltwise has 1 bottom\(s\); expected at least 2"),
    (IN + "layer { name: 'e' type: 'Eltwise' bottom: 'data' bottom: 'data' top: 'e' "
          "eltwise_param { operation: PROD coeff: 1 coeff: 2 } }",
     r"coeff given for Eltwise PROD"),
    (IN + "layer { name: 'r' type: 'ReLU' bottom: 'data' top: 'data2' top: 'x' }",
     r"ReLU has 2 top\(s\); expected 1"),
    (IN + "layer { name: 'r' type: 'ReLU' bottom: 'data' top: 'x' }\n"
          "layer { name: 'r' type: 'ReLU' bottom: 'x' top: 'y' }",
     r"layer 'r' \(index 2\): the name is already used by the layer at index 1"),
    (IN + "layer { name: 'r' type: 'ReLU' bottom: 'data' top: 'x' }\n"
          "layer { name: 's' type: 'ReLU' bottom: 'data' top: 'x' }",
     r"layer 's' \(index 2\): top 'x' is already produced"),
    (IN + "layer { name: 'c' type: 'Concat' bottom: 'data' top: 'c' concat_param { axis: 1 "
          "concat_dim: 1 } }", r"both axis and concat_dim given"),
    ("input: 'data'\ninput_dim: 1\ninput_dim: 3\n", r"need 4 'input_dim' values"),
    ("input: 'data'\ninput_shape { dim: 1 dim: 0 }\n", r"input 'data': shape \[1, 0\]"),
    ("input_dim: 1\n", r"without an 'input:' name"),
    ("layer { name: 'in' type: 'Input' top: 'x' }", r"Input layer without input_param"),
    ("name: 'empty'\n", r"the net has no layers"),
    (IN + "layers { name: 'v' type: RELU bottom: 'data' top: 'v' }",
     r"both 'layer' and the legacy 'layers'"),
    (IN + "layer { name: 'r' type: 'ReLU' bottom: 'data' top: 'x' include { phase: TEST } "
          "exclude { phase: TRAIN } }", r"has both include and exclude rules"),
    (IN + "layer { name: 'f' type: 'Flatten' bottom: 'data' top: 'f' flatten_param { axis: 3 "
          "end_axis: 1 } }", r"end_axis 1 is before axis 3"),
    (IN + "layer { name: 's' type: 'Scale' bottom: 'data' top: 's' scale_param { axis: 1 "
          "num_axes: 4 } }", r"scale num_axes 4 with axis 1 does not fit"),
]


@pytest.mark.parametrize("text,pattern", BROKEN, ids=[f"case{i}" for i in range(len(BROKEN))])
def test_broken_prototxt_raises_model_error(text, pattern):
    with pytest.raises(ModelError, match=pattern):
        parse_prototxt(text.replace("'", '"'))


def test_syntax_error_names_the_file_line_and_column(tmp_path):
    from hax_conn_core.graph.prototxt import load_prototxt

    path = tmp_path / "bad.prototxt"
    path.write_text(nets.CHAIN + "layer { name: \"x\" type: \"ReLU\"\n  kernel: 3 }\n")
    with pytest.raises(ModelError, match=rf"^{path}:9:3: .*kernel"):
        load_prototxt(path)


def test_unsupported_type_message_has_line_when_file_has_layer_lines(tmp_path):
    text = nets.CHAIN + 'layer { name: "s" type: "Sigmoid" bottom: "prob" top: "s" }\n'
    with pytest.raises(ModelError, match=r"^src:8: layer 's' \(index 7\) has unsupported"):
        parse_prototxt(text, source="src")


# -- fuzzing ---------------------------------------------------------------------------------

V1_NET = (nets.legacy_input() +
          'layers { name: "c" type: CONVOLUTION bottom: "data" top: "c" blobs_lr: 1\n'
          '  convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }\n'
          'layers { name: "r" type: RELU bottom: "c" top: "c" }\n'
          'layers { name: "p" type: POOLING bottom: "c" top: "p"\n'
          '  pooling_param { pool: MAX kernel_size: 3 stride: 2 } }\n'
          'layers { name: "fc" type: INNER_PRODUCT bottom: "p" top: "fc"\n'
          '  inner_product_param { num_output: 3 } }\n')

_PIECES = ['{', '}', ':', '"', ' ', '\n', 'layer', 'top', 'bottom', 'type', '"ReLU"', '1',
           '-1', '0', 'pooling_param', 'kernel_size', 'num_output', '#', 'include', 'phase',
           'TRAIN', '"conv1"', '"data"', 'input_dim', 'layers', 'CONVOLUTION', '999999999999']


def _mutate(text: str, rng: random.Random, edits: int) -> str:
    chars = list(text)
    for _ in range(edits):
        action = rng.randrange(4)
        position = rng.randrange(len(chars) + 1)
        if action == 0 and chars:
            del chars[min(position, len(chars) - 1)]
        elif action == 1:
            chars[position:position] = list(rng.choice(_PIECES))
        elif action == 2 and chars:
            start = rng.randrange(len(chars))
            del chars[start:start + rng.randrange(1, 40)]
        else:
            start = rng.randrange(len(chars)) if chars else 0
            chars[position:position] = chars[start:start + rng.randrange(1, 60)]
    return "".join(chars)


#: HAX_CONN_TEST_ALL=1 (make test-all) fuzzes longer.
FUZZ_EXAMPLES = 5000 if os.environ.get("HAX_CONN_TEST_ALL") == "1" else 300


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), edits=st.integers(1, 6),
       base=st.sampled_from([nets.CHAIN, nets.RESIDUAL, nets.BRANCHES, V1_NET]))
def test_mutated_prototxt_only_ever_raises_model_error(seed, edits, base):
    text = _mutate(base, random.Random(seed), edits)
    try:
        graph = parse_prototxt(text)
    except ModelError:
        return
    # whatever parses must be a consistent graph
    from hax_conn_core.graph.cuts import valid_cuts
    from hax_conn_core.graph.grouping import group_layers

    assert all(layer.index == i for i, layer in enumerate(graph.layers))
    graph.layer_stats()
    valid_cuts(graph)
    group_layers(graph, 3)

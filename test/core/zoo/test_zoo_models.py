"""Every registered DNN, read by the real prototxt reader, against independent figures.

Layer counts are derived here from each architecture's structure (papers' tables), as
arithmetic; parameter counts are compared with published figures (sources in
hax_conn_core/models.py and docs/models.md); none of the expected values comes from the
generated files.
"""

import dataclasses
import functools

import pytest

from hax_conn_core import models
from hax_conn_core.graph.cuts import valid_cuts
from hax_conn_core.graph.model import Graph
from hax_conn_core.graph.prototxt import load_prototxt
from hax_conn_core.models import ModelInfo, PublishedParams

IDS = models.known_ids()
SUBSET = {"Input", "Convolution", "Pooling", "ReLU", "LRN", "InnerProduct", "BatchNorm", "Scale",
          "Eltwise", "Concat", "Dropout", "Softmax", "Flatten"}

CONV_UNIT = 4  # Convolution + BatchNorm + Scale + ReLU
HEAD = 3       # pooling, classifier, Softmax


def _resnet_layers(blocks, bottleneck: bool) -> int:
    stem = CONV_UNIT + 1                      # conv1 unit + pool1
    if bottleneck:
        # 2a, 2b with ReLU; 2c without; Eltwise; ReLU. One projection (3 layers) per stage.
        per_block = 2 * CONV_UNIT + (CONV_UNIT - 1) + 2
        projections = 4
    else:
        per_block = CONV_UNIT + (CONV_UNIT - 1) + 2
        projections = 3                       # stages 3-5 only
    return 1 + stem + sum(blocks) * per_block + projections * (CONV_UNIT - 1) + HEAD


def _vgg_layers(convs_per_stage) -> int:
    return 1 + 2 * sum(convs_per_stage) + 5 + 2 * 3 + 2   # conv+relu, pools, fc6/7, fc8+prob


EXPECTED_LAYERS = {
    # data; 5 x (conv, relu); norm1, norm2; pool1, pool2, pool5; 2 x (fc, relu, drop); fc8; prob
    "alexnet": 1 + 5 * 2 + 2 + 3 + 2 * 3 + 2,
    # data; conv1, relu, pool1, norm1, conv2 reduce+relu, conv2+relu, norm2, pool2 (10);
    # 9 inception modules x (6 conv+relu pairs, pool, concat = 14); pool3, pool4;
    # pool5, dropout, classifier, prob
    "googlenet": 1 + 10 + 9 * 14 + 2 + 4,
    "resnet18": _resnet_layers((2, 2, 2, 2), bottleneck=False),
    "resnet50": _resnet_layers((3, 4, 6, 3), bottleneck=True),
    "resnet101": _resnet_layers((3, 4, 23, 3), bottleneck=True),
    "resnet152": _resnet_layers((3, 8, 36, 3), bottleneck=True),
    "vgg16": _vgg_layers((2, 2, 3, 3, 3)),
    "vgg19": _vgg_layers((2, 2, 4, 4, 4)),
    # stem: 11 conv units, 2 max pools, 3 concats; A: 7 convs + avg pool + concat (x4);
    # Reduction-A: 4 convs + pool + concat; B: 10 convs + pool + concat (x7);
    # Reduction-B: 6 convs + pool + concat; C: 10 convs + pool + concat (x3);
    # global pool, dropout, classifier, prob
    "inception_v4": (1 + (11 * CONV_UNIT + 2 + 3) + 4 * (7 * CONV_UNIT + 2)
                     + (4 * CONV_UNIT + 2) + 7 * (10 * CONV_UNIT + 2) + (6 * CONV_UNIT + 2)
                     + 3 * (10 * CONV_UNIT + 2) + 4),
    # stem: 5 conv units + 2 pools; Mixed_5b: 7 convs + pool + concat;
    # Block35 x10: 6 convs, concat, up conv, Eltwise, ReLU; Mixed_6a: 4 convs, pool, concat;
    # Block17 x20: 4 convs + 4; Mixed_7a: 7 convs, pool, concat; Block8 x9: 4 convs + 4,
    # last Block8 without ReLU: 4 convs + 3; Conv2d_7b; global pool, dropout, classifier, prob
    "inception_resnet_v2": (1 + (5 * CONV_UNIT + 2) + (7 * CONV_UNIT + 2)
                            + 10 * (6 * CONV_UNIT + 4) + (4 * CONV_UNIT + 2)
                            + 20 * (4 * CONV_UNIT + 4) + (7 * CONV_UNIT + 2)
                            + 9 * (4 * CONV_UNIT + 4) + (4 * CONV_UNIT + 3) + CONV_UNIT + 4),
    # data; conv1 unit + pool1; 58 dense layers x (BN, Scale, ReLU, conv) x 2 + concat;
    # 3 transitions x (BN, Scale, ReLU, conv, pool); BN, Scale, ReLU, pool5, fc6 conv, prob
    "densenet121": 1 + CONV_UNIT + 1 + (6 + 12 + 24 + 16) * 9 + 3 * 5 + 6,
    # data; conv1 unit; 13 x (depthwise unit + pointwise unit); pool6, fc7 conv, prob
    "mobilenet_v1": 1 + CONV_UNIT + 13 * 2 * CONV_UNIT + HEAD,
}

# Weighted layers the architectures are named or known by: Convolution + InnerProduct layers,
# not counting ResNet projection shortcuts (branch1).
EXPECTED_WEIGHT_LAYERS = {
    "alexnet": 5 + 3, "vgg16": 13 + 3, "vgg19": 16 + 3,
    "resnet18": 18, "resnet50": 50, "resnet101": 101, "resnet152": 152,
    "densenet121": 121,
    "mobilenet_v1": 28,                       # paper: "28 layers", counting depthwise/pointwise
    "googlenet": 3 + 9 * 6 + 1,              # conv1, conv2 (2), six per module, classifier
    "inception_v4": 11 + 4 * 7 + 4 + 7 * 10 + 6 + 3 * 10 + 1,
    "inception_resnet_v2": 5 + 7 + 10 * 7 + 4 + 20 * 5 + 7 + 10 * 5 + 1 + 1,
}


# Layer counts of the HaX-CoNN artifact's own prototxts (ismetdagli/HaX-CoNN,
# prototxt_input_files/*.prototxt), the files the paper profiled. Most declare the input with
# legacy ``input:`` lines, which are not layers, so ours have one layer more (our Input layer);
# its DenseNet also lacks the final Softmax. Its resnet18 (a projection in res2a too) and
# vgg19 (100 classes) are other networks and are left out.
ARTIFACT_LAYERS = {  # id: (artifact's count, layers we add)
    "alexnet": (24, 0), "googlenet": (143, 0), "vgg16": (39, 1), "resnet50": (228, 1),
    "resnet101": (449, 1), "resnet152": (670, 1), "inception_v4": (637, 1),
    "inception_resnet_v2": (987, 1), "mobilenet_v1": (111, 1), "densenet121": (547, 2),
}

# Valid cuts (one tensor crossing, never between an in-place layer and its producer), counted
# from each architecture: where a single tensor carries the whole state between layers.
EXPECTED_CUTS = {
    # conv1(+relu), norm1, pool1, conv2, norm2, pool2, conv3, conv4, conv5, pool5,
    # fc6(+relu, dropout), fc7(+relu, dropout), fc8
    "alexnet": 13,
    # conv1, pool1, norm1, conv2 reduce, conv2, norm2, pool2; 9 module outputs; pool3, pool4;
    # pool5 (+dropout), classifier
    "googlenet": 7 + 9 + 2 + 2,
    # conv1 unit, pool1, each block's closing ReLU, pool5, fc1000: nothing inside a block,
    # where the shortcut and the residual branch are both live
    "resnet18": 2 + 8 + 2, "resnet50": 2 + 16 + 2, "resnet101": 2 + 33 + 2,
    "resnet152": 2 + 50 + 2,
    # every conv(+relu), every pool, fc6 and fc7 (+relu, dropout), fc8
    "vgg16": 13 + 5 + 3, "vgg19": 16 + 5 + 3,
    # stem: 3 plain conv units + 3 concats; 16 module concats; pool (+dropout), classifier
    "inception_v4": 6 + (4 + 1 + 7 + 1 + 3) + 2,
    # stem: 5 conv units + 2 pools; Mixed_5b; 10 + 20 + 10 residual blocks; Mixed_6a and 7a;
    # Conv2d_7b; pool (+dropout), classifier
    "inception_resnet_v2": 7 + 1 + 40 + 2 + 1 + 2,
    # BatchNorm writes a new tensor there, so a unit cuts after its conv and after its ReLU:
    # stem unit (2) + pool1; 58 dense-layer concats; 3 transitions (after ReLU, conv, pool);
    # final BN-ReLU, pool5, fc6
    "densenet121": 3 + 58 + 3 * 3 + 3,
    # after each of the 27 conv units (BatchNorm, Scale, ReLU in place); pool6; fc7
    "mobilenet_v1": 27 + 2,
}


@functools.lru_cache(maxsize=None)
def _graph(model_id: str) -> Graph:
    return load_prototxt(models.get_model(model_id).prototxt)


def test_registry_covers_the_twelve_paper_dnns():
    assert IDS == ("alexnet", "googlenet", "resnet18", "resnet50", "resnet101", "resnet152",
                   "vgg16", "vgg19", "inception_v4", "inception_resnet_v2", "densenet121",
                   "mobilenet_v1")


@pytest.mark.parametrize("model_id", IDS)
def test_parses_with_the_reader_from_an_input_layer_at_index_0(model_id):
    info = models.get_model(model_id)
    graph = _graph(model_id)
    first = graph.layers[0]
    assert (first.index, first.type) == (0, "Input")
    assert graph.inputs == (first.tops[0],)
    assert graph.tensors[graph.inputs[0]].shape == info.input_shape
    assert {layer.type for layer in graph.layers} <= SUBSET


@pytest.mark.parametrize("model_id", IDS)
def test_ends_in_softmax_prob_with_one_output_per_class(model_id):
    graph = _graph(model_id)
    last = graph.layers[-1]
    assert (last.name, last.type) == ("prob", "Softmax")
    assert graph.outputs == last.tops
    shape = graph.tensors[graph.outputs[0]].shape
    conv_classifier = model_id in ("densenet121", "mobilenet_v1")
    assert shape == ((1, 1000, 1, 1) if conv_classifier else (1, 1000))


@pytest.mark.parametrize("model_id", IDS)
def test_layer_count_matches_the_architecture(model_id):
    assert len(_graph(model_id).layers) == EXPECTED_LAYERS[model_id]


@pytest.mark.parametrize("model_id", sorted(ARTIFACT_LAYERS))
def test_layer_count_matches_the_artifacts_prototxt(model_id):
    theirs, added = ARTIFACT_LAYERS[model_id]
    assert len(_graph(model_id).layers) == theirs + added


@pytest.mark.parametrize("model_id", IDS)
def test_valid_cuts_match_the_architecture(model_id):
    assert len(valid_cuts(_graph(model_id))) == EXPECTED_CUTS[model_id]


@pytest.mark.parametrize("model_id", IDS)
def test_weight_layer_count_matches_the_architecture(model_id):
    weighted = [layer for layer in _graph(model_id).layers
                if layer.type in ("Convolution", "InnerProduct")
                and not layer.name.endswith("_branch1")]
    assert len(weighted) == EXPECTED_WEIGHT_LAYERS[model_id]


@pytest.mark.parametrize("model_id", IDS)
def test_parameter_count_matches_the_published_figure(model_id):
    published = models.get_model(model_id).published_params
    ours = _graph(model_id).param_count()
    assert abs(ours - published.count) <= published.rel_tolerance * published.count, (
        f"{model_id}: {ours:,} parameters, published {published.count:,} "
        f"(+-{published.rel_tolerance:.2%}, {published.source})")


def test_alexnet_parameters_counted_by_hand():
    # BVLC AlexNet: conv1 11x11x3->96; conv2 5x5x48->256 (group 2); conv3 3x3x256->384;
    # conv4 3x3x192->384 (group 2); conv5 3x3x192->256 (group 2); fc6 6*6*256->4096;
    # fc7 4096->4096; fc8 4096->1000; every layer with biases.
    convs = [(96, 3, 11), (256, 48, 5), (384, 256, 3), (384, 192, 3), (256, 192, 3)]
    fcs = [(4096, 6 * 6 * 256), (4096, 4096), (1000, 4096)]
    by_hand = (sum(out * (cin * k * k + 1) for out, cin, k in convs)
               + sum(out * (fan_in + 1) for out, fan_in in fcs))
    assert by_hand == 60_965_224
    assert _graph("alexnet").param_count() == by_hand


def test_googlenet_parameters_counted_by_hand():
    # Table 1 of "Going deeper with convolutions": #1x1, #3x3red, #3x3, #5x5red, #5x5, proj.
    table = [(192, 64, 96, 128, 16, 32, 32), (256, 128, 128, 192, 32, 96, 64),
             (480, 192, 96, 208, 16, 48, 64), (512, 160, 112, 224, 24, 64, 64),
             (512, 128, 128, 256, 24, 64, 64), (512, 112, 144, 288, 32, 64, 64),
             (528, 256, 160, 320, 32, 128, 128), (832, 256, 160, 320, 32, 128, 128),
             (832, 384, 192, 384, 48, 128, 128)]

    def conv(cin, out, k):
        return out * (cin * k * k + 1)

    stem = conv(3, 64, 7) + conv(64, 64, 1) + conv(64, 192, 3)
    modules = sum(conv(c, a, 1) + conv(c, r3, 1) + conv(r3, n3, 3) + conv(c, r5, 1)
                  + conv(r5, n5, 5) + conv(c, p, 1) for c, a, r3, n3, r5, n5, p in table)
    by_hand = stem + modules + 1000 * (1024 + 1)
    assert _graph("googlenet").param_count() == by_hand
    assert round(by_hand / 1e6, 3) == 6.999      # Open Model Zoo googlenet-v1: 6.999 MParams


# -- the registry's metadata records (schema) ----------------------------------------------------

MODEL_INFO_FIELDS = {"id", "display_name", "input_shape", "layer_count", "output_shape",
                     "num_classes", "published_params", "reference"}
PUBLISHED_FIELDS = {"count", "source", "rel_tolerance"}


def test_metadata_records_have_exactly_the_documented_fields():
    assert {f.name for f in dataclasses.fields(ModelInfo)} == MODEL_INFO_FIELDS
    assert {f.name for f in dataclasses.fields(PublishedParams)} == PUBLISHED_FIELDS


@pytest.mark.parametrize("model_id", IDS)
def test_zoo_record_is_complete_and_well_formed(model_id):
    info = models.get_model(model_id)
    for name in MODEL_INFO_FIELDS:
        value = getattr(info, name)
        assert value is not None and value != "", f"{model_id}: {name} is not set"
    assert info.id == model_id and models.normalise_model_id(info.id) == info.id
    assert info.input_shape == ((1, 3, 299, 299) if model_id.startswith("inception")
                                else (1, 3, 224, 224))
    published = info.published_params
    assert isinstance(published.count, int) and published.count > 0
    assert len(published.source) > 20
    # exact figures are held exactly; rounded ones within 1% at most
    assert 0.0 <= published.rel_tolerance <= 0.01
    assert info.prototxt.is_file()


@pytest.mark.parametrize("model_id", IDS)
def test_declared_counts_match_what_the_graph_measures(model_id):
    info = models.get_model(model_id)
    graph = _graph(model_id)
    assert info.layer_count == len(graph.layers)
    assert info.output_shape == graph.tensors[graph.outputs[0]].shape
    assert info.num_classes == info.output_shape[1]


def test_googlenet_indices_match_the_artifacts_layer_groups():
    # The HaX-CoNN artifact README profiles GoogleNet in groups "0-9" (layer_count 10) and
    # "10-24" (layer_count 15), counting the Input layer (conventions.md); its DLA profile
    # lists the engine's layers from conv1/7x7_s2 to loss3/classifier: 140 names, every layer
    # but Input, Dropout and Softmax.
    graph = _graph("googlenet")
    assert graph.layers[9].name == "conv2/norm2"
    assert graph.layers[10].name == "pool2/3x3_s2"
    assert graph.layers[24].name == "inception_3a/output"
    names = [layer.name for layer in graph.layers
             if layer.type not in ("Input", "Dropout", "Softmax")]
    assert (len(names), names[0], names[-1]) == (140, "conv1/7x7_s2", "loss3/classifier")
    assert names[38] == "pool3/3x3_s2"        # after 10 stem layers and 2 modules of 14


def test_resnet50_cuts_fall_between_residual_blocks():
    graph = _graph("resnet50")
    names = [graph.layers[i].name for i in valid_cuts(graph)]
    blocks = [f"res{stage}{letter}_relu" for stage, count in zip("2345", (3, 4, 6, 3))
              for letter in "abcdef"[:count]]
    assert names == ["conv1_relu", "pool1", *blocks, "pool5", "fc1000"]

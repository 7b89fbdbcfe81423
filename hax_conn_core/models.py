"""Registry of the DNNs hax_conn knows by name (docs/conventions.md, "DNN names").

Each DNN has one canonical id, lowercase ``[a-z0-9_]``: the name used on the command line, in
profiles, schedules, ROS parameters and topic names, and as ``prototxts/<id>.prototxt``.

The twelve paper DNNs carry metadata about their shipped prototxt (written by
``hax_conn_core/zoo``, see docs/models.md): its layer count, the shape of its output, and the
published parameter count it is checked against, with the figure's source. "Parameters" means
learnable parameters: convolution and fully-connected weights and biases plus Scale (batch-norm
gamma/beta); BatchNorm running mean/variance are not counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, Optional, Tuple

from hax_conn_core.errors import ConfigError

_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class PublishedParams:
    """A DNN's parameter count as published elsewhere, and how close ours must come."""

    count: int
    source: str  # where the figure is published (repository and file, or document)
    rel_tolerance: float = 0.0  # |ours - count| / count allowed; 0.0 for an exact figure


@dataclass(frozen=True)
class ModelInfo:
    """What we know of a registered DNN without reading its graph.

    Only ``id``, ``display_name`` and ``input_shape`` are needed for a user's own model; the zoo
    DNNs fill in the rest, which tests check against the graph read from ``prototxt``.
    """

    id: str
    display_name: str
    input_shape: Tuple[int, int, int, int]  # N, C, H, W
    layer_count: Optional[int] = None  # layer entries in the prototxt, Input layer included
    output_shape: Optional[Tuple[int, ...]] = None  # shape of the output tensor (``prob``)
    num_classes: Optional[int] = None
    published_params: Optional[PublishedParams] = None
    reference: str = ""  # the public Caffe deploy file / implementation the zoo builder follows

    @property
    def prototxt(self) -> Path:
        """The shipped prototxt of this DNN."""
        from hax_conn_core.resources import data_dir

        return data_dir("prototxts") / f"{self.id}.prototxt"


_REGISTRY: Dict[str, ModelInfo] = {}


def register_model(info: ModelInfo) -> ModelInfo:
    """Add a DNN to the registry; a duplicate or malformed id is refused."""
    if not _ID_PATTERN.match(info.id):
        raise ConfigError(
            f"model id {info.id!r}: expected lowercase [a-z0-9_], starting with a letter")
    if info.id in _REGISTRY:
        raise ConfigError(f"model id {info.id!r} is already registered")
    _REGISTRY[info.id] = info
    return info


def normalise_model_id(name: str) -> str:
    """Turn a user's name or file stem into an id: lowercase, other characters as ``_``.

    ``ResNet-50`` -> ``resnet_50``; ``my.model`` -> ``my_model``. A name that has no letter to
    start with gets an ``m_`` prefix so that it stays a valid ROS name token.
    """
    ident = re.sub(r"[^a-z0-9_]+", "_", name.strip().lower()).strip("_")
    ident = re.sub(r"_+", "_", ident)
    if not ident:
        raise ConfigError(f"model name {name!r}: expected at least one letter or digit")
    if not ident[0].isalpha():
        ident = "m_" + ident
    return ident


def get_model(name: str) -> ModelInfo:
    """The registered DNN called ``name``; an unknown name raises and lists the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown DNN {name!r}: expected one of {', '.join(sorted(_REGISTRY))}") from None


def list_models() -> Iterator[ModelInfo]:
    """Registered DNNs in registration order (the paper's order)."""
    return iter(list(_REGISTRY.values()))


def known_ids() -> Tuple[str, ...]:
    return tuple(_REGISTRY)


_TORCHVISION = "pytorch/vision torchvision/models/{}.py, {} meta num_params"
_OMZ = "openvinotoolkit/open_model_zoo models/public/{}/README.md, MParams {}"
_TIMM = "huggingface/pytorch-image-models docs/models/{}.md, model-index Parameters: {}"
_KERAS = "tf.keras.applications.{}(weights=None).summary(): Trainable params {}"
_CLASSES = 1000
_PROB = (1, _CLASSES)  # InnerProduct classifier
_PROB_CONV = (1, _CLASSES, 1, 1)  # 1x1 convolution classifier (DenseNet, MobileNet)


def _zoo_model(model_id: str, display_name: str, hw: int, layer_count: int,
               output_shape: Tuple[int, ...], published: PublishedParams,
               reference: str) -> ModelInfo:
    return ModelInfo(model_id, display_name, (1, 3, hw, hw), layer_count=layer_count,
                     output_shape=output_shape, num_classes=_CLASSES,
                     published_params=published, reference=reference)


for _info in (
    _zoo_model(
        "alexnet", "AlexNet", 224, 24, _PROB,
        PublishedParams(60_965_224, _OMZ.format("alexnet", "60.965") + " (BVLC AlexNet); "
                        "the exact figure is counted by hand in docs/models.md"),
        "BVLC caffe models/bvlc_alexnet/deploy.prototxt"),
    _zoo_model(
        "googlenet", "GoogleNet", 224, 143, _PROB,
        PublishedParams(6_999_000, _OMZ.format("googlenet-v1", "6.999")
                        + " (BVLC GoogLeNet deploy, no auxiliary heads)", 0.001),
        "BVLC caffe models/bvlc_googlenet/deploy.prototxt"),
    _zoo_model(
        "resnet18", "ResNet-18", 224, 90, _PROB,
        PublishedParams(11_689_512, _TORCHVISION.format("resnet", "ResNet18_Weights")),
        "KaimingHe/deep-residual-networks deploy conventions, basic blocks"),
    _zoo_model(
        "resnet50", "ResNet-50", 224, 229, _PROB,
        PublishedParams(25_557_032, _TORCHVISION.format("resnet", "ResNet50_Weights")),
        "KaimingHe/deep-residual-networks prototxt/ResNet-50-deploy.prototxt"),
    _zoo_model(
        "resnet101", "ResNet-101", 224, 450, _PROB,
        PublishedParams(44_549_160, _TORCHVISION.format("resnet", "ResNet101_Weights")),
        "KaimingHe/deep-residual-networks prototxt/ResNet-101-deploy.prototxt"),
    _zoo_model(
        "resnet152", "ResNet-152", 224, 671, _PROB,
        PublishedParams(60_192_808, _TORCHVISION.format("resnet", "ResNet152_Weights")),
        "KaimingHe/deep-residual-networks prototxt/ResNet-152-deploy.prototxt"),
    _zoo_model(
        "vgg16", "VGG-16", 224, 40, _PROB,
        PublishedParams(138_357_544, _TORCHVISION.format("vgg", "VGG16_Weights")),
        "VGG_ILSVRC_16_layers_deploy.prototxt (Simonyan & Zisserman, Caffe model zoo)"),
    _zoo_model(
        "vgg19", "VGG-19", 224, 46, _PROB,
        PublishedParams(143_667_240, _TORCHVISION.format("vgg", "VGG19_Weights")),
        "VGG_ILSVRC_19_layers_deploy.prototxt (Simonyan & Zisserman, Caffe model zoo)"),
    _zoo_model(
        "inception_v4", "Inception-v4", 299, 638, _PROB,
        PublishedParams(42_680_000, _TIMM.format("inception-v4", "42680000"), 0.001),
        "TF-slim nets/inception_v4.py in Caffe form (Conv+BatchNorm+Scale+ReLU)"),
    _zoo_model(
        "inception_resnet_v2", "Inception-ResNet-v2", 299, 988, _PROB,
        PublishedParams(55_850_000, _TIMM.format("inception-resnet-v2", "55850000")
                        + "; Keras: " + _KERAS.format("InceptionResNetV2", "55,813,192")
                        + " + 30,272 BN gammas (Keras uses scale=False)", 0.001),
        "TF-slim nets/inception_resnet_v2.py in Caffe form (Conv+BatchNorm+Scale+ReLU)"),
    _zoo_model(
        "densenet121", "DenseNet-121", 224, 549, _PROB_CONV,
        PublishedParams(7_978_856, _TORCHVISION.format("densenet", "DenseNet121_Weights")),
        "shicai/DenseNet-Caffe DenseNet_121.prototxt"),
    _zoo_model(
        "mobilenet_v1", "MobileNet-v1", 224, 112, _PROB_CONV,
        PublishedParams(4_231_976, _KERAS.format("MobileNet", "4,231,976")),
        "shicai/MobileNet-Caffe mobilenet_deploy.prototxt, BatchNorm in place"),
):
    register_model(_info)

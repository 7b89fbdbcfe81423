"""Registry of the DNNs hax_conn knows by name (conventions.md, "DNN names").

Each DNN has one canonical id, lowercase ``[a-z0-9_]``: the name used on the command line, in
profiles, schedules, ROS parameters and topic names, and as ``prototxts/<id>.prototxt``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, Tuple

from hax_conn_core.errors import ConfigError

_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")

#: Where the shipped prototxts live: ``prototxts/`` at the repository / package share root.
PROTOTXT_DIR = Path(__file__).resolve().parent.parent / "prototxts"


@dataclass(frozen=True)
class ModelInfo:
    """What we know of a registered DNN without reading its graph."""

    id: str
    display_name: str
    input_shape: Tuple[int, int, int, int]  # N, C, H, W

    @property
    def prototxt(self) -> Path:
        """The shipped prototxt of this DNN."""
        return PROTOTXT_DIR / f"{self.id}.prototxt"


_REGISTRY: Dict[str, ModelInfo] = {}


def register_model(info: ModelInfo) -> ModelInfo:
    """Add a DNN to the registry; a duplicate or malformed id is refused."""
    if not _ID_PATTERN.match(info.id):
        raise ConfigError(f"model id {info.id!r}: expected lowercase [a-z0-9_], starting with a letter")
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


for _id, _display, _hw in (
    ("alexnet", "AlexNet", 224),
    ("googlenet", "GoogleNet", 224),
    ("resnet18", "ResNet-18", 224),
    ("resnet50", "ResNet-50", 224),
    ("resnet101", "ResNet-101", 224),
    ("resnet152", "ResNet-152", 224),
    ("vgg16", "VGG-16", 224),
    ("vgg19", "VGG-19", 224),
    ("inception_v4", "Inception-v4", 299),
    ("inception_resnet_v2", "Inception-ResNet-v2", 299),
    ("densenet121", "DenseNet-121", 224),
    ("mobilenet_v1", "MobileNet-v1", 224),
):
    register_model(ModelInfo(_id, _display, (1, 3, _hw, _hw)))

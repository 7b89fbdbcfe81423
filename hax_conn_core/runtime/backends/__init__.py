"""The backends, by the name users select them with (``--backend``).

``get_backend(name, device=None, cache=None, **options)`` makes one; an unknown name is a
ConfigError listing the known ones. Modules are imported on selection, and each imports its
framework only when opened, so that selecting ``tensorrt`` on a machine without TensorRT is one
clear SetupError rather than an ImportError at import time.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict, Tuple

from hax_conn_core.errors import ConfigError

#: name -> "module:Class"
BACKENDS: Dict[str, str] = {
    "onnxruntime": "hax_conn_core.runtime.backends.onnxrt:OnnxRuntimeBackend",
    "cuda-sm": "hax_conn_core.runtime.backends.cuda_sm:CudaSmBackend",
    "tensorrt": "hax_conn_core.runtime.backends.tensorrt:TensorRTBackend",
}

#: The embedded default (CPU, CI, ``make demo``).
DEFAULT_BACKEND = "onnxruntime"


def known_backends() -> Tuple[str, ...]:
    return tuple(BACKENDS)


def backend_class(name: str):
    """The class of backend ``name``; an unknown name lists the known ones."""
    try:
        target = BACKENDS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown backend {name!r}; expected one of "
                          f"{', '.join(BACKENDS)}") from None
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def get_backend(name: str, device=None, cache=None, **options: Any):
    """A backend ``name`` (not yet open) for ``device`` (default: the backend's own)."""
    return backend_class(name)(device=device, cache=cache, **options)

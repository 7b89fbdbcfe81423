"""Runtime device descriptions: a device's accelerators and each backend's settings for them.

The device descriptions in config/devices/ (format ``hax-conn-device/1``, docs/graph.md) say
which layers each accelerator runs. Their optional ``runtime`` section says how each backend
realises the accelerators (docs/runtime.md), e.g. for the CPU device::

    runtime:
      onnxruntime:
        gpu: {threads: 1}
        dla: {threads: 1}

Settings are validated by the backend that reads them; this module checks the structure:
backend names, accelerator names, mappings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from hax_conn_core.errors import ConfigError

#: The device each backend runs on when none is named.
DEFAULT_DEVICES: Mapping[str, str] = {
    "onnxruntime": "cpu",
    "cuda-sm": "emulated-h200",
    "tensorrt": "orin-agx",
}


@dataclass(frozen=True)
class RuntimeDevice:
    """A device: its id, accelerators (in the description's order) and backend settings."""

    id: str
    accelerators: Tuple[str, ...]
    runtime: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    path: Optional[Path] = None

    def settings(self, backend: str, accelerator: str) -> Mapping[str, Any]:
        """The settings of ``backend`` for ``accelerator`` ({} when the file gives none)."""
        return self.runtime.get(backend, {}).get(accelerator, {})


def load_runtime_device(name_or_path: Union[str, Path]) -> RuntimeDevice:
    """The device called ``name_or_path`` (config/devices/<id>.yaml) or at that path."""
    from hax_conn_core.graph.capabilities import load_device
    from hax_conn_core.runtime.backends import BACKENDS

    caps = load_device(name_or_path)
    where = caps.path or caps.id
    raw = caps.extra.get("runtime", {}) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: runtime: expected a mapping of backend names to "
                          "per-accelerator settings")
    runtime: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for backend, per_acc in raw.items():
        if backend not in BACKENDS:
            raise ConfigError(f"{where}: runtime.{backend}: unknown backend; expected one of "
                              f"{', '.join(BACKENDS)}")
        if not isinstance(per_acc, dict):
            raise ConfigError(f"{where}: runtime.{backend}: expected a mapping of accelerator "
                              "names to settings")
        runtime[backend] = {}
        for acc, settings in per_acc.items():
            if acc not in caps.accelerators:
                raise ConfigError(f"{where}: runtime.{backend}.{acc}: the device has no such "
                                  f"accelerator; expected one of {', '.join(caps.accelerators)}")
            if settings is None:
                settings = {}
            if not isinstance(settings, dict):
                raise ConfigError(f"{where}: runtime.{backend}.{acc}: expected a mapping of "
                                  f"settings, found {settings!r}")
            runtime[backend][acc] = dict(settings)
    return RuntimeDevice(id=caps.id, accelerators=tuple(caps.accelerators), runtime=runtime,
                         path=caps.path)


def default_device(backend: str) -> RuntimeDevice:
    """The device ``backend`` runs on when none is named."""
    return load_runtime_device(DEFAULT_DEVICES.get(backend, "cpu"))

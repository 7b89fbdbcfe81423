"""The engine cache: built engines on disk, keyed by everything that decides their content.

A key is the SHA-256 of: the graph's content hash (:func:`graph_sha256`), the weights' id and
the range's weight hash, the layer range, accelerator, precision, backend name and version,
and the backend's own settings that change the artefact (e.g. a DLA core). Each entry is two
files in the cache directory: ``<key>.bin`` (the artefact: an ONNX model, a TensorRT plan) and
``<key>.json`` (what the key was made of, the artefact's size and SHA-256). Both are written
atomically (a temporary file, then ``os.replace``), the manifest last. On load the artefact's
hash is checked; a missing, truncated or corrupt entry is reported once as a warning and
rebuilt, never trusted (docs/runtime.md, "Engine cache").

The directory is ``$HAX_CONN_CACHE/engines`` if set, else ``~/.cache/hax_conn/engines``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Union

from hax_conn_core.errors import SetupError
from hax_conn_core.files import atomic_write

if TYPE_CHECKING:  # pragma: no cover
    from hax_conn_core.graph.model import Graph
    from hax_conn_core.runtime.backends.base import EngineSpec

log = logging.getLogger(__name__)

#: Bumped when the key's recipe or the entry layout changes.
CACHE_FORMAT = "hax-conn-engine-cache/1"


def default_cache_dir() -> Path:
    root = os.environ.get("HAX_CONN_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "hax_conn"
    return base / "engines"


def graph_sha256(graph: "Graph") -> str:
    """Hash of what a graph computes: every layer (name, type, bottoms, tops, parameters) and
    every tensor's shape, in order. Two reads of one prototxt give the same hash."""
    digest = hashlib.sha256()
    for layer in graph.layers:
        digest.update(repr((layer.index, layer.name, layer.type, tuple(layer.bottoms),
                            tuple(layer.tops), layer.params)).encode())
    for name in sorted(graph.tensors):
        digest.update(repr((name, tuple(graph.tensors[name].shape))).encode())
    digest.update(repr((tuple(graph.inputs), tuple(graph.outputs))).encode())
    return digest.hexdigest()


def range_weights_sha256(spec: "EngineSpec") -> str:
    """Hash of the blobs of the layers in the spec's range (name, dtype, shape, bytes)."""
    import numpy as np

    digest = hashlib.sha256()
    for layer in spec.graph.layers[spec.first_layer:spec.last_layer + 1]:
        for blob in spec.weights.get(layer.name, ()):
            array = np.ascontiguousarray(blob)
            digest.update(repr((layer.name, str(array.dtype), array.shape)).encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class CacheKey:
    """A cache key and what it was made of (written to the manifest)."""

    digest: str
    fields: Mapping[str, Any]


def engine_key(spec: "EngineSpec", backend: str, version: str,
               settings: Optional[Mapping[str, Any]] = None) -> CacheKey:
    """The key of ``spec`` built by ``backend`` at ``version`` with ``settings``."""
    fields = {
        "format": CACHE_FORMAT,
        "dnn": spec.dnn,
        "graph_sha256": graph_sha256(spec.graph),
        "weights_id": spec.weights_id,
        "weights_sha256": range_weights_sha256(spec),
        "layers": [spec.first_layer, spec.last_layer],
        "accelerator": spec.accelerator,
        "precision": spec.precision,
        "backend": backend,
        "backend_version": version,
        "settings": dict(settings or {}),
    }
    text = json.dumps(fields, sort_keys=True, default=str)
    return CacheKey(hashlib.sha256(text.encode()).hexdigest(), fields)


class EngineCache:
    """Engines on disk under ``directory`` (default :func:`default_cache_dir`)."""

    def __init__(self, directory: Optional[Union[str, Path]] = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.hits = 0
        self.misses = 0
        self.rejected = 0  # entries found corrupt or stale, rebuilt

    def _paths(self, key: CacheKey):
        return self.directory / f"{key.digest}.bin", self.directory / f"{key.digest}.json"

    def load(self, key: CacheKey) -> Optional[bytes]:
        """The artefact stored under ``key``, or None (absent, or found corrupt: then the entry
        is removed, counted in ``rejected`` and a warning logged)."""
        payload_path, manifest_path = self._paths(key)
        if not manifest_path.exists():
            self.misses += 1
            return None
        reason = None
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            payload = payload_path.read_bytes()
            if manifest.get("fields") != json.loads(json.dumps(key.fields, sort_keys=True,
                                                               default=str)):
                reason = "its manifest names another engine"
            elif manifest.get("size") != len(payload):
                reason = f"{len(payload)} bytes where {manifest.get('size')} were written"
            elif manifest.get("sha256") != hashlib.sha256(payload).hexdigest():
                reason = "its SHA-256 does not match the manifest"
        except (OSError, ValueError, AttributeError) as error:
            reason = f"unreadable ({type(error).__name__}: {error})"
        if reason is not None:
            self.misses += 1
            self.reject(key, reason)
            return None
        self.hits += 1
        return payload

    def reject(self, key: CacheKey, reason: str) -> None:
        """Remove the entry under ``key`` as unusable (e.g. a plan the runtime could not
        deserialise): counted in ``rejected``, logged, and rebuilt by the caller."""
        self.rejected += 1
        log.warning("engine cache entry %s is corrupt (%s); rebuilding it", key.digest[:12],
                    reason)
        for path in self._paths(key):
            try:
                path.unlink()
            except OSError:
                pass

    def store(self, key: CacheKey, payload: bytes) -> None:
        """Write ``payload`` under ``key`` atomically (artefact first, manifest last)."""
        payload_path, manifest_path = self._paths(key)
        manifest: Dict[str, Any] = {"fields": key.fields, "size": len(payload),
                                    "sha256": hashlib.sha256(payload).hexdigest()}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            atomic_write(payload_path, payload)
            atomic_write(manifest_path, json.dumps(manifest, sort_keys=True, indent=1,
                                                   default=str).encode())
        except OSError as error:
            raise SetupError(f"cannot write the engine cache in {self.directory}: {error}; "
                             "set HAX_CONN_CACHE to a writable directory") from None

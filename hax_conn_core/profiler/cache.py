"""Measurements on disk, so that a crash keeps what was measured and a rerun continues.

Each measurement (one assignment of one DNN, or one contention probe) is one JSON file, named
by the SHA-256 of what decides it (its *descriptor*: groups, assignment, repeats, backend
settings), in a directory per device, backend (and version), model (graph hash and weights)
and precision::

    $HAX_CONN_CACHE/profiles/<device>/<backend>-<version>/<model>-<graph>-<weights>/<precision>/

(``~/.cache/hax_conn/profiles/...`` when ``HAX_CONN_CACHE`` is unset). A file holds the
descriptor, the samples so far, whether it is complete, and the SHA-256 of its content; it is
rewritten atomically (a temporary file, then ``os.replace``) after every chunk of frames. An
entry that does not parse, or whose hash or descriptor does not match, is reported once (a
warning line) and measured again, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional

from hax_conn_core.errors import SetupError

CACHE_FORMAT = "hax-conn-profiler-cache/1"


def default_cache_root() -> Path:
    """``$HAX_CONN_CACHE/profiles``, else ``~/.cache/hax_conn/profiles``."""
    root = os.environ.get("HAX_CONN_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "hax_conn"
    return base / "profiles"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text))[:80] or "_"


def _digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class MeasurementCache:
    """The entries of one device / backend / model / precision (module docstring).

    ``warn`` receives one line per corrupt entry found (default: nothing).
    """

    def __init__(self, root: Optional[Path], device: str, backend: str, model: str,
                 precision: str, warn: Optional[Callable[[str], None]] = None):
        root = default_cache_root() if root is None else Path(root)
        self.directory = (root / _safe(device) / _safe(backend) / _safe(model)
                          / _safe(precision))
        self.warn = warn or (lambda line: None)
        self.rebuilt = 0  # corrupt entries found (and measured again)
        self.reused = 0  # complete entries taken as they were

    def path(self, descriptor: Mapping[str, Any]) -> Path:
        return self.directory / f"{_digest(descriptor)[:32]}.json"

    def load(self, descriptor: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
        """The entry for ``descriptor`` ({"samples": [...], "complete": bool}) or None."""
        path = self.path(descriptor)
        if not path.is_file():
            return None
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            body = {"descriptor": doc["descriptor"], "samples": doc["samples"],
                    "complete": bool(doc["complete"])}
            ok = (doc.get("format") == CACHE_FORMAT and doc.get("sha256") == _digest(body)
                  and body["descriptor"] == json.loads(json.dumps(descriptor))
                  and isinstance(body["samples"], list))
        except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
            ok = False
        if not ok:
            self.rebuilt += 1
            self.warn(f"corrupt profiler cache entry {path}: measuring it again")
            try:
                path.unlink()
            except OSError:
                pass
            return None
        if body["complete"]:
            self.reused += 1
        return body

    def store(self, descriptor: Mapping[str, Any], samples: list, complete: bool) -> None:
        """Write the entry atomically (a crash leaves the previous version or this one)."""
        body = {"descriptor": json.loads(json.dumps(descriptor)), "samples": samples,
                "complete": bool(complete)}
        doc = {"format": CACHE_FORMAT, **body, "sha256": _digest(body)}
        write_atomic(self.path(descriptor), json.dumps(doc, separators=(",", ":")) + "\n",
                     "profiler cache entry")


def write_atomic(path: Path, text: str, what: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``."""
    from hax_conn_core.files import atomic_write

    path = Path(path)
    try:
        atomic_write(path, text.encode("utf-8"))
    except OSError as error:
        raise SetupError(f"cannot write the {what} {path}: {error.strerror or error}; set "
                         "HAX_CONN_CACHE to a writable directory or choose another --out"
                         ) from None

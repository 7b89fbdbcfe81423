"""The profile document the profiler writes: ``hax-conn-profile/1`` plus optional keys.

The optional keys (docs/formats.md, "Optional keys of measured profiles") are kept in the
file; hax_conn's reader accepts and ignores them. The layout is ``profile.dump_profile``'s
(one curve and one group per line), with the optional top-level keys one per line after
``source``. ``plain=True`` writes exactly what ``dump_profile`` writes (no optional keys but
``source`` and ``device.peak_bandwidth_source``), for files that must read back unchanged.
Every file is validated before it is written, and written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Union

from hax_conn_core.profiler.cache import write_atomic

_CORE = ("format", "source", "device", "contention", "dnns")


def render(doc: Dict[str, Any], plain: bool = False) -> str:
    """The text of ``doc`` (validated first: a ProfileError names what is wrong)."""
    from hax_conn_core.profile import dump_profile, parse_profile

    profile = parse_profile(json.loads(json.dumps(doc)), source="<profile being written>")
    if plain:
        return dump_profile(profile)
    c = json.dumps
    lines = ["{", f'  "format": {c(doc["format"])},']
    if "source" in doc:
        lines.append(f'  "source": {c(doc["source"])},')
    for key, value in doc.items():
        if key not in _CORE:
            lines.append(f"  {c(key)}: {c(value)},")
    lines += [f'  "device": {c(doc["device"])},', '  "contention": {']
    curves = list(doc["contention"].items())
    for i, (acc, curve) in enumerate(curves):
        lines.append(f"    {c(acc)}: {c(curve)}" + ("," if i + 1 < len(curves) else ""))
    lines += ["  },", '  "dnns": {']
    dnns = list(doc["dnns"].items())
    for i, (name, dnn) in enumerate(dnns):
        lines.append(f'    {c(name)}: {{"groups": [')
        groups = dnn["groups"]
        for j, group in enumerate(groups):
            lines.append(f"      {c(group)}" + ("," if j + 1 < len(groups) else ""))
        lines.append("    ]}" + ("," if i + 1 < len(dnns) else ""))
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def write_document(doc: Dict[str, Any], path: Union[str, Path], plain: bool = False) -> None:
    """Validate ``doc`` and write it to ``path`` atomically."""
    write_atomic(Path(path), render(doc, plain), "profile")

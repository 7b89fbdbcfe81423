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


def render(doc: Dict[str, Any], plain: bool = False) -> str:
    """The text of ``doc`` (validated first: a ProfileError names what is wrong)."""
    from hax_conn_core.profile import dump_profile, layout_document, parse_profile

    profile = parse_profile(json.loads(json.dumps(doc)), source="<profile being written>")
    return dump_profile(profile) if plain else layout_document(doc)


def write_document(doc: Dict[str, Any], path: Union[str, Path], plain: bool = False) -> None:
    """Validate ``doc`` and write it to ``path`` atomically."""
    write_atomic(Path(path), render(doc, plain), "profile")

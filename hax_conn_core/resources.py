"""Where the data shipped with hax_conn lives: prototxts/, profiles/, config/.

In a source tree (and the editable install) they sit beside the packages, at the repository
root. In a colcon / ament install, CMakeLists.txt installs them into
``<prefix>/share/hax_conn_ros/``, while this module sits in
``<prefix>/lib/pythonX.Y/site-packages/hax_conn_core/``. ``HAX_CONN_SHARE`` overrides both.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List

from hax_conn_core.errors import SetupError

ROS_PACKAGE = "hax_conn_ros"
_HERE = Path(__file__).resolve().parent


def _candidate_roots() -> List[Path]:
    roots = []
    override = os.environ.get("HAX_CONN_SHARE")
    if override:
        roots.append(Path(override))
    roots.append(_HERE.parent)  # source tree / editable install
    # <prefix>/lib/pythonX.Y/site-packages/hax_conn_core -> <prefix>/share/hax_conn_ros
    for parent in _HERE.parents:
        if parent.name == "lib":
            roots.append(parent.parent / "share" / ROS_PACKAGE)
            break
    return roots


def data_dir(name: str) -> Path:
    """The shipped directory ``name`` (``prototxts``, ``profiles`` or ``config``)."""
    roots = _candidate_roots()
    for root in roots:
        if (root / name).is_dir():
            return root / name
    raise SetupError(f"cannot find the shipped '{name}' directory; looked in "
                     f"{', '.join(str(r) for r in roots)}; set HAX_CONN_SHARE to the directory "
                     f"that holds '{name}/'")

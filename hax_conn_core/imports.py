"""Optional dependencies imported where they are needed, with one clear error when absent."""

from __future__ import annotations

import importlib
from types import ModuleType

from hax_conn_core.errors import SetupError


def required(module: str, package: str, purpose: str, instead: str = "") -> ModuleType:
    """``module`` imported, or a SetupError naming ``purpose``, the pip ``package`` and, where
    there is one, what to do ``instead`` (the CLI prints it as one line, exit 2)."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise SetupError(f"{purpose} needs {package}, which does not import here ({error}): "
                         f"pip install {package}" + (f", or {instead}" if instead else "")
                         ) from None

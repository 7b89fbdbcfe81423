"""The DNNs a long-running runtime may run: the built-in ones plus users' models named by path,
each registered and read once, and those that could not be, with the reason.

A model that cannot be read (a truncated file, an opset we do not read, a dynamic input with no
shape, a ``.caffemodel`` that does not fit its prototxt) or a name nobody registered is kept in
``bad`` and reported once through ``log``; a schedule naming it runs without it
(:meth:`ModelSet.trim`), so that one bad model never stops the others (docs/own-models.md).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from hax_conn_core.errors import ConfigError, HaxConnError


class ModelSet:
    """Users' models beside the built-ins (see the module docstring). ``log(line)`` gets one
    line per model that could not be used."""

    def __init__(self, log: Callable[[str], None] = lambda line: None):
        self.bad: Dict[str, str] = {}  # model name (or the path, if it named none) -> why
        self._log = log

    def name_of(self, path: str) -> Optional[str]:
        """The name the model at ``path`` goes by (its normalised file stem); None (and the
        reason kept under the path) if the path names no model we read."""
        from hax_conn_core.graph.resolve import resolve_model

        try:
            return resolve_model(path).id
        except HaxConnError as error:
            self._refuse(path, error)
            return None

    def register(self, path: str, weights: Optional[str] = None,
                 input_shape: Optional[str] = None) -> bool:
        """Register ``path`` (its weights file and input shape, if given); False (the reason
        kept under the path) if that fails."""
        from hax_conn_core.graph.resolve import register_model

        try:
            register_model(path, weights=weights or None, input_shape=input_shape or None)
        except HaxConnError as error:
            self._refuse(path, error)
            return False
        return True

    def load(self, names: Sequence[str], seed: int = 0,
             weights: Optional[Mapping[str, str]] = None) -> None:
        """Read each model now (runtime.models keeps it for the process), so that a bad file
        is reported at start, not when a schedule first names it."""
        from hax_conn_core.runtime.models import load_model

        for name in names:
            try:
                load_model(name, seed=seed, weights=(weights or {}).get(name))
            except HaxConnError as error:
                self._refuse(name, error)

    def runnable(self, name: str) -> bool:
        """A built-in DNN, or a user's model registered and read."""
        from hax_conn_core.graph.resolve import registered_models
        from hax_conn_core.models import known_ids

        if name in self.bad:
            return False
        if name in known_ids() or name in {m.id for m in registered_models()}:
            return True
        self._refuse(name, ConfigError(f"unknown DNN {name!r}: not a built-in DNN nor one of "
                                       "this executor's models"))
        return False

    def trim(self, schedule, profile) -> Tuple[Optional[object], object, List[str]]:
        """``schedule`` and ``profile`` without the DNNs that cannot run, and those DNNs.
        The schedule is None when none is left. The trimmed schedule drops its profile hash:
        the caller checked the whole profile, and the part kept is checked against the part."""
        dropped = [name for name in schedule.assignments if not self.runnable(name)]
        if not dropped:
            return schedule, profile, []
        kept = [name for name in schedule.assignments if name not in dropped]
        if not kept:
            return None, profile, dropped
        trimmed = replace(schedule, profile_sha256=None,
                          assignments={name: schedule.assignments[name] for name in kept})
        return trimmed, profile.subset(kept), dropped

    def _refuse(self, name: str, error: BaseException) -> None:
        self.bad[name] = str(error)
        self._log(f"model {name} not loaded: {error}; schedules run without it")

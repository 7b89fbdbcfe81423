"""Where each ``hax-conn`` subcommand lives.

Modules are imported when the command line is parsed, never at ``import hax_conn_core``. A module
that fails to import because an optional dependency is missing still shows in ``--help`` and
explains itself when run. Packages outside the core (the ROS package registers ``bringup``) add
commands through the ``hax_conn.commands`` entry-point group, so the core never imports ROS.
"""

from __future__ import annotations

import importlib
from typing import Dict, List, Type

from hax_conn_core.cli.base import Command

ENTRY_POINT_GROUP = "hax_conn.commands"

#: name -> "module:Class", in the order ``--help`` lists them.
BUILTIN_COMMANDS: Dict[str, str] = {
    "demo": "hax_conn_core.cli.demo:DemoCommand",
    "graph": "hax_conn_core.cli.graph:GraphCommand",
    "profile": "hax_conn_core.cli.profile:ProfileCommand",
    "plan": "hax_conn_core.cli.plan:PlanCommand",
    "simulate": "hax_conn_core.cli.simulate:SimulateCommand",
    "run": "hax_conn_core.cli.run:RunCommand",
    "validate": "hax_conn_core.cli.validate:ValidateCommand",
    "bench": "hax_conn_core.cli.bench:BenchCommand",
}


def _missing(name: str, target: str, exc: ImportError) -> Type[Command]:
    class MissingCommand(Command):
        __doc__ = (f"(unavailable: {exc}). Run 'make setup' to install what is missing.")

        def run(self, args):  # noqa: D401 - explains itself
            from hax_conn_core.errors import SetupError

            raise SetupError(f"'hax-conn {name}' cannot run: importing {target} failed: {exc}; "
                             "run 'make setup' or install the missing package")

    MissingCommand.name = name
    return MissingCommand


def _load(name: str, target: str) -> Type[Command]:
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        # Only a missing third-party dependency is an expected condition; a broken module of
        # our own is a bug and must surface.
        if exc.name and exc.name.split(".")[0] in ("hax_conn_core",):
            raise
        return _missing(name, target, exc)
    cls = getattr(module, class_name)
    cls.name = name
    return cls


def _entry_point_commands() -> Dict[str, str]:
    from importlib.metadata import entry_points

    try:
        eps = entry_points(group=ENTRY_POINT_GROUP)
    except TypeError:  # pragma: no cover - Python < 3.10 API
        eps = entry_points().get(ENTRY_POINT_GROUP, [])
    return {ep.name: ep.value for ep in eps}


def load_commands() -> List[Type[Command]]:
    """All subcommands: the built-in ones, then those registered by other packages."""
    targets = dict(BUILTIN_COMMANDS)
    for name, target in _entry_point_commands().items():
        targets.setdefault(name, target)
    return [_load(name, target) for name, target in targets.items()]

"""``hax-conn``: plan, simulate and run several DNNs at once on a GPU + DLA SoC.

Exit statuses: 0 success; 2 a user error (a bad file, an unknown DNN, a bad option: one line on
stderr, ``hax-conn <command>: error: ...``); 70 an internal error, a bug in hax_conn (one line
naming it and where to report it; ``HAX_CONN_DEBUG=1`` prints the traceback too); 130
interrupted (Ctrl-C); 141 the reader of our output went away.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import List, NoReturn, Optional

import hax_conn_core
from hax_conn_core.errors import HaxConnError

#: Exit status of an internal error (BSD sysexits EX_SOFTWARE).
EXIT_INTERNAL = 70
#: Exit status of a user error.
EXIT_USAGE = 2
#: Set to 1 to see the traceback of an internal error.
DEBUG_VARIABLE = "HAX_CONN_DEBUG"
#: Where bugs go.
REPORT_TO = "the project's issue tracker"

DESCRIPTION = """\
Run several DNNs at once on one SoC, their layers spread over the GPU and the DLA so that the
set finishes sooner than any whole-DNN mapping (HaX-CoNN, PPoPP 2024).

Start with 'hax-conn demo'. Each subcommand has its own --help."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.split())
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from hax_conn_core.cli.registry import load_commands

    parser = OneLineParser(
        prog="hax-conn", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version",
                        version=f"hax-conn {hax_conn_core.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for cls in load_commands():
        command = cls()
        sub_parser = sub.add_parser(
            cls.name, help=cls.summary(), description=cls.help_text(),
            formatter_class=argparse.RawDescriptionHelpFormatter)
        command.add_arguments(sub_parser)
        sub_parser.set_defaults(_command=command)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run one command line; returns the exit status (see the module docstring)."""
    name = "hax-conn"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        command = getattr(args, "_command", None)
        if command is None:
            parser.print_help()
            return EXIT_USAGE
        name = f"hax-conn {command.name}"
        return int(command.run(args) or 0)
    except HaxConnError as exc:
        print(f"{name}: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader of our output went away (`hax-conn plan --json | head`): not an error of
        # ours. Point stdout at devnull so that the interpreter's final flush stays quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except Exception as exc:  # noqa: BLE001 - the last resort: no traceback reaches a user
        return internal_error(name, exc)


def internal_error(name: str, exc: BaseException) -> int:
    """Report a bug of ours in one line (the traceback with HAX_CONN_DEBUG=1); EXIT_INTERNAL."""
    if os.environ.get(DEBUG_VARIABLE, "") not in ("", "0"):
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    text = _one_line(str(exc))
    if len(text) > 300:
        text = text[:297] + "..."
    what = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    print(f"{name}: internal error: {what}; this is a bug in hax_conn: please report it with "
          f"the command line at {REPORT_TO} (set {DEBUG_VARIABLE}=1 to see the traceback)",
          file=sys.stderr)
    return EXIT_INTERNAL


def _one_line(text: str) -> str:
    return " ".join(text.split()) if "\n" in text else text


if __name__ == "__main__":
    sys.exit(main())

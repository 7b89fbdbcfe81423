"""``hax-conn``: plan, simulate and run several DNNs at once on a GPU + DLA SoC."""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

import hax_conn_core
from hax_conn_core.cli.registry import load_commands
from hax_conn_core.errors import HaxConnError

DESCRIPTION = """\
Run several DNNs at once on one SoC, their layers spread over the GPU and the DLA so that the
set finishes sooner than any whole-DNN mapping (HaX-CoNN, PPoPP 2024).

Start with 'hax-conn demo'. Each subcommand has its own --help."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    parser = build_parser()
    args = parser.parse_args(argv)
    command = getattr(args, "_command", None)
    if command is None:
        parser.print_help()
        return 2
    try:
        return int(command.run(args) or 0)
    except HaxConnError as exc:
        print(f"hax-conn {command.name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader of our output went away (`hax-conn plan --json | head`): not an error of
        # ours. Point stdout at devnull so that the interpreter's final flush stays quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())

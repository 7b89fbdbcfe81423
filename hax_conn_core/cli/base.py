"""Base class of every ``hax-conn`` subcommand, and option groups shared between them."""

from __future__ import annotations

import argparse
import inspect
from typing import ClassVar


class Command:
    """A subcommand. Its class docstring is its help; the first paragraph is the summary.

    Subclasses set ``name``, add their flags in ``add_arguments`` and return an exit status from
    ``run``. They raise :class:`hax_conn_core.errors.HaxConnError` for user mistakes; the main
    program turns that into one line on stderr and exit status 2.
    """

    name: ClassVar[str] = ""

    @classmethod
    def help_text(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def summary(cls) -> str:
        return cls.help_text().split("\n\n", 1)[0].replace("\n", " ")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add this subcommand's flags; none by default."""

    def run(self, args: argparse.Namespace) -> int:
        raise NotImplementedError


def add_profile_option(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """``--profile P.json``: a hax-conn-profile file."""
    parser.add_argument("--profile", required=required, metavar="P.json",
                        help="profile file (format hax-conn-profile/1, see docs/formats.md)")


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """``--json``: machine-readable output on stdout, nothing else."""
    parser.add_argument("--json", action="store_true",
                        help="print only the JSON document on stdout")

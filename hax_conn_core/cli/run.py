"""`hax-conn run` (arrives with the runtime issue)."""

from hax_conn_core.cli.base import PendingCommand


class RunCommand(PendingCommand):
    """Run a schedule: the split engines on both accelerators, in lockstep, with measured times.

    Not available in this version yet: it arrives with the runtime issue.
    """

    arrives_with = "the runtime issue"

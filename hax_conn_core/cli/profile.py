"""`hax-conn profile` (arrives with the profiler issue)."""

from hax_conn_core.cli.base import PendingCommand


class ProfileCommand(PendingCommand):
    """Measure per-group times, transition costs and memory demand of DNNs on each accelerator.

    Not available in this version yet: it arrives with the profiler issue.
    """

    arrives_with = "the profiler issue"

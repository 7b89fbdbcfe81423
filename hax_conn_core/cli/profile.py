"""`hax-conn profile` (arrives with the profiler issue)."""

from hax_conn_core.cli.base import PendingCommand


class ProfileCommand(PendingCommand):
    """Measure per-layer-group times, transition costs and memory demand of DNNs on the accelerators.

    Not available in this version yet: it arrives with the profiler issue.
    """

    arrives_with = "the profiler issue"

"""`hax-conn simulate` (placeholder until the planner issue lands)."""

from hax_conn_core.cli.base import PendingCommand


class SimulateCommand(PendingCommand):
    """Predict what a schedule costs on a profile (contention-aware simulation).
    """

    arrives_with = "the planner issue"

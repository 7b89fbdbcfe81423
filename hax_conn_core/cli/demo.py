"""`hax-conn demo` (placeholder until the planner issue lands)."""

from hax_conn_core.cli.base import PendingCommand


class DemoCommand(PendingCommand):
    """Plan a shipped DNN pair and print the schedule; grows into the full pipeline.
    """

    arrives_with = "the planner issue"

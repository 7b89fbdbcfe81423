"""`hax-conn plan` (placeholder until the planner issue lands)."""

from hax_conn_core.cli.base import PendingCommand


class PlanCommand(PendingCommand):
    """Plan where each DNN runs and transitions, contention included (Z3).
    """

    arrives_with = "the planner issue"

"""`hax-conn graph` (placeholder until the model-graph issue lands)."""

from hax_conn_core.cli.base import PendingCommand


class GraphCommand(PendingCommand):
    """Show a DNN's layers, layer groups and valid cut points.
    """

    arrives_with = "the model-graph issue"

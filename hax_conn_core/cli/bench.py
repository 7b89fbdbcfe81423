"""`hax-conn bench` (arrives with the benchmark tooling)."""

from hax_conn_core.cli.base import PendingCommand


class BenchCommand(PendingCommand):
    """Benchmarks of the planner, the graph tools and the runtime (results go to docs/).

    Not available in this version yet: it arrives with the benchmark tooling.
    """

    arrives_with = "the benchmark tooling"

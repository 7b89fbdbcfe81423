"""`hax-conn demo`: plan the shipped GoogleNet + AlexNet pair and print the comparison."""

from __future__ import annotations

import argparse

from hax_conn_core.cli.base import add_json_option, Command
from hax_conn_core.cli.plan import (add_plan_options, check_plan_options, make_plan,
                                    report_plan, select_dnns)

DEMO_PROFILE = "xavier_googlenet_alexnet.json"


class DemoCommand(Command):
    """Plan the shipped DNN pair (GoogleNet + AlexNet on Xavier) and print the comparison.

    Loads profiles/xavier_googlenet_alexnet.json, plans it with Z3 and prints the plan in the
    artifact's words beside the GPU-only, GPU&DLA, Herald and H2H baselines. Needs no GPU and no
    ROS. The options are those of 'hax-conn plan'.

    The ROS 2 nodes have their own demo: 'hax-conn ros-demo' (docs/ros.md).
    """

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_plan_options(parser)
        add_json_option(parser)
        parser.add_argument("--plot", metavar="gantt.png",
                            help="draw a Gantt chart of the plan (matplotlib)")

    def run(self, args: argparse.Namespace) -> int:
        from hax_conn_core.profile import load_profile
        from hax_conn_core.resources import data_dir

        check_plan_options(args)
        path = data_dir("profiles") / DEMO_PROFILE
        profile = select_dnns(load_profile(path), args.dnns)
        if not args.json:
            print(f"Profile: {path}")
        result = make_plan(profile, args)
        return report_plan(profile, result, args)

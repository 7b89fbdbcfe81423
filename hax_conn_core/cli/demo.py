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

    With --own-model it is the users' demo instead (docs/own-models.md): a detector-style ONNX
    model (written by hax_conn_core.example_models) estimated, planned and run beside a paper
    DNN on the CPU, each step printed as its hax-conn command:
      hax-conn demo --own-model [--paper-dnn mobilenet_v1] [--frames 30] [--workdir DIR]
    """

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_plan_options(parser)
        add_json_option(parser)
        parser.add_argument("--plot", metavar="gantt.png",
                            help="draw a Gantt chart of the plan (matplotlib)")
        own = parser.add_argument_group("the users' demo (docs/own-models.md)")
        own.add_argument("--own-model", action="store_true",
                         help="plan and run a user-style ONNX model beside a paper DNN on the "
                              "CPU instead")
        own.add_argument("--paper-dnn", default="alexnet", metavar="DNN",
                         help="--own-model: the paper DNN beside it, alexnet or mobilenet_v1 "
                              "(default: alexnet)")
        own.add_argument("--frames", type=int, default=30, metavar="N",
                         help="--own-model: frame-sets to run (default: 30)")
        own.add_argument("--workdir", metavar="DIR",
                         help="--own-model: keep the model and profile in DIR (default: a "
                              "temporary folder, removed afterwards)")

    def run(self, args: argparse.Namespace) -> int:
        from hax_conn_core.profile import load_profile
        from hax_conn_core.resources import data_dir

        if args.own_model:
            from hax_conn_core.cli.own_demo import run_own_model_demo

            return run_own_model_demo(args.paper_dnn, args.frames, args.workdir)
        check_plan_options(args)
        path = data_dir("profiles") / DEMO_PROFILE
        profile = select_dnns(load_profile(path), args.dnns)
        if not args.json:
            print(f"Profile: {path}")
        result = make_plan(profile, args)
        return report_plan(profile, result, args)

"""Where a schedule's time goes, frame-set by frame-set, against the simulator's timeline
(issue 19, run 5 fidelity): the executors' host steps and the engines' GPU times on one clock.

    PYTHONPATH=. python3 scripts/device_timeline_probe.py --profile P.json \\
        --schedule S.json [--schedule T.json ...] --out $OUT/timeline.json \\
        [--model a.onnx ...] [--frames 200] [--warmup 30] [--alone]

Each schedule runs in latency mode, one frame-set at a time, through the runtime's executors
(nothing of the runtime is changed: its steps are wrapped to take timestamps). Per frame-set,
relative to the ``submit()`` call, in milliseconds, the median over the frame-sets after the
warm-up of:

- each executor step (``Runtime._run_step``: the frame's upload for a DNN's first segment, the
  engine's launch), host time in and out, and within it ``from_host``;
- each engine's GPU start and end (its CUDA events, placed on the host clock by a reference
  event recorded and synchronised on each partition's stream just before the submit);
- the collector's ``to_host`` of each DNN's outputs, and the frame-set's completion;

beside the simulator's start and finish of the same groups. ``--alone`` also runs each DNN of
a schedule by itself with its assignment (the same steps, no other executor busy), to tell
what the other executor's work costs from what the DNN's own does. ``--cprofile FILE`` adds
where the host time goes, by own time: per thread on Python 3.11 (checked here, onnxruntime),
one profiler for every thread on 3.12 and later, where cProfile allows only one at a time
(the GPU machine's Python; this path has not run there yet: the first try, per thread, was
refused by 3.12 and spent the session's device time).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path


def median_keys(samples):
    return {key: round(statistics.median(values), 4) for key, values in sorted(samples.items())}


def run_case(backend, profile, schedule, models, frames, warmup, cuda=True, cprofile=None):
    import numpy as np

    from hax_conn_core.runtime.measure import seeded_frames
    from hax_conn_core.runtime.session import Runtime
    from hax_conn_core.simulator import simulate

    local = threading.local()
    marks = []  # (key, host seconds) for the frame-set being run
    gpu = []  # (key, accelerator, start event, end event)
    lock = threading.Lock()

    def mark(key, t):
        with lock:
            marks.append((key, t))

    original_from_host, original_to_host = backend.from_host, backend.to_host

    def from_host(array, acc):
        t0 = time.perf_counter()
        out = original_from_host(array, acc)
        step = getattr(local, "step", "?")
        mark(f"{step} from_host in", t0)
        mark(f"{step} from_host out", time.perf_counter())
        return out

    owner = {}  # id of an engine's output -> its DNN (the outputs are the engines' own buffers)

    def to_host(value):
        t0 = time.perf_counter()
        out = original_to_host(value)
        mark(f"to_host {owner.get(id(value), '?')} in", t0)
        mark(f"to_host {owner.get(id(value), '?')} out", time.perf_counter())
        return out

    sub = profile.subset(list(schedule.assignments))
    runtime = Runtime(backend, sub, schedule, {n: models[n] for n in schedule.assignments})
    backend.from_host, backend.to_host = from_host, to_host
    profilers = {}
    if cprofile and sys.version_info >= (3, 12):
        # cProfile on sys.monitoring: one profiler at a time, and it sees every thread
        import cProfile

        profilers["all threads"] = cProfile.Profile()
        profilers["all threads"].enable()
    elif cprofile:  # before 3.12 cProfile sees only the thread that enables it
        import cProfile

        def profiled(loop, name):
            def run(*args):
                profiler = cProfile.Profile()
                profilers[f"{name} {threading.current_thread().name}"] = profiler
                profiler.enable()
                try:
                    loop(*args)
                finally:
                    profiler.disable()
            return run

        runtime._executor_loop = profiled(runtime._executor_loop, "executors")
        runtime._collector_loop = profiled(runtime._collector_loop, "collector")
    try:
        runtime.start()
        plan = runtime.plan
        original_step = runtime._run_step

        def run_step(state, dnn, segment, acc):
            step = f"{dnn}:{segment}@{acc}"
            local.step = step
            mark(f"{step} step in", time.perf_counter())
            original_step(state, dnn, segment, acc)
            mark(f"{step} step out", time.perf_counter())
            local.step = "?"

        runtime._run_step = run_step
        for (dnn, segment), engine in plan.engines.items():
            def wrapped(inputs, slot=0, wait_for=(), _run=engine.run, _dnn=dnn,
                        _segment=segment, _engine=engine):
                launch = _run(inputs, slot=slot, wait_for=wait_for)
                acc = _engine.spec.accelerator
                if cuda:
                    with lock:
                        gpu.append((f"{_dnn}:{_segment}@{acc}", acc, launch.start, launch.done))
                for tensor in launch.outputs.values():
                    owner[id(tensor)] = _dnn
                return launch
            engine.run = wrapped
        streams = {acc: backend.stream(acc) for acc in plan.steps} if cuda else {}
        samples = defaultdict(list)
        batch = list(seeded_frames(plan.models, frames + warmup, 0))
        for index, frame_set in enumerate(batch):
            refs = {}
            for acc, stream in streams.items():
                import torch

                ref = torch.cuda.Event(enable_timing=True)
                ref.record(stream)
                refs[acc] = ref
            for ref in refs.values():
                ref.synchronize()
            t_ref = time.perf_counter()  # every reference event has fired by now (~0.01 ms)
            with lock:
                marks.clear()
                gpu.clear()
            t_submit = time.perf_counter()
            runtime.submit(frame_set)
            mark("submit out", time.perf_counter())
            result = runtime.get_result(timeout_s=30)
            if not result.ok:
                raise RuntimeError(f"frame-set {index} failed: {result.results}")
            if index < warmup:
                continue
            for key, t in marks:
                samples[key].append((t - t_submit) * 1e3)
            for key, acc, start, done in gpu:
                base = (t_ref - t_submit) * 1e3
                samples[f"{key} gpu start"].append(base + refs[acc].elapsed_time(start.event))
                samples[f"{key} gpu end"].append(base + refs[acc].elapsed_time(done.event))
            samples["finished"].append((result.finished_s - t_submit) * 1e3)
            samples["latency (released -> finished)"].append(result.latency_ms)
        simulated = {}
        for run in simulate(sub, schedule).runs:
            simulated[f"{run.dnn} group {run.group}@{run.accelerator}"] = [
                round(run.start_ms, 4), round(run.finish_ms, 4)]
        return {"segments": {f"{d}:{s}": list(plan.segments[d][s]) for d, s in plan.engines},
                "measured_median_ms": median_keys(samples),
                "simulated_ms": simulated,
                "predicted_ms": simulate(sub, schedule).predicted_ms,
                "frames": frames, "warmup": warmup,
                "host_clock": "perf_counter, 0 = submit() called",
                "numpy": np.__version__}
    finally:
        backend.from_host, backend.to_host = original_from_host, original_to_host
        runtime.close()
        if "all threads" in profilers:
            profilers["all threads"].disable()
        if cprofile:
            import io
            import pstats

            with open(cprofile, "a") as handle:
                for name, profiler in profilers.items():
                    text = io.StringIO()
                    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
                    handle.write(f"===== {'+'.join(schedule.assignments)} {name}\n"
                                 f"{text.getvalue()}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", required=True)
    parser.add_argument("--schedule", action="append", required=True)
    parser.add_argument("--model", action="append", default=[])
    parser.add_argument("--out", required=True)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--alone", action="store_true")
    parser.add_argument("--cprofile", help="append per-thread cProfile tables (by own time) "
                        "of the executors and the collector to this file")
    parser.add_argument("--backend", default="cuda-sm",
                        help="onnxruntime: a CPU dry run of the host steps (no GPU times)")
    args = parser.parse_args()

    from hax_conn_core.graph.resolve import register_model
    from hax_conn_core.profile import load_profile
    from hax_conn_core.runtime.backends import get_backend
    from hax_conn_core.runtime.gc_pause import freeze_startup_objects
    from hax_conn_core.runtime.models import load_model
    from hax_conn_core.schedule import load_schedule, Schedule

    for path in args.model:
        register_model(path)
    profile = load_profile(args.profile)
    report = {"profile": args.profile, "cases": {}}
    with get_backend(args.backend).open() as backend:
        report["backend"] = backend.describe()
        for path in args.schedule:
            schedule = load_schedule(path)
            schedule = Schedule("latency", dict(schedule.assignments),
                                max_transitions=schedule.max_transitions)
            models = {n: load_model(n) for n in schedule.assignments}
            cases = [(Path(path).name, schedule)]
            if args.alone and len(schedule.assignments) > 1:
                cases += [(f"{Path(path).name} {name} alone",
                           Schedule("latency", {name: tuple(accs)},
                                    max_transitions=schedule.max_transitions))
                          for name, accs in schedule.assignments.items()]
            for label, case in cases:
                freeze_startup_objects()
                report["cases"][label] = run_case(backend, profile, case, models,
                                                  args.frames, args.warmup,
                                                  cuda=args.backend == "cuda-sm",
                                                  cprofile=args.cprofile)
                print(label, json.dumps(report["cases"][label]["measured_median_ms"]),
                      flush=True)
                Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

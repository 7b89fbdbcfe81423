#!/usr/bin/env python3
"""Profiles of the 12 paper DNNs on the emulated SoC (cuda-sm), resumable across device calls.

Run on the GPU machine (device tool) from the repository root; docs/profiler.md, "The GPU
path", says what each step measures:

    PYTHONPATH=. python3 scripts/device_profile.py check
    PYTHONPATH=. python3 scripts/device_profile.py profile --cache $OUT/cache \\
        --out $OUT/profiles --log $OUT/profile.log --time-budget-s 480
    PYTHONPATH=. python3 scripts/device_profile.py ncu --profiles $OUT/profiles \\
        --log $OUT/ncu.log --time-budget-s 480

and here (no GPU): ``merge`` (one profile of all DNNs) and ``estimate`` (the GPU time).

``profile``: the cuda-sm backend on ``--device`` (emulated-h200: gpu 124 + dla 8 SMs), then per
DNN ``profile_dnns`` (in-context group times with CUDA events, the sum check, transitions,
peak bandwidth and PCCS contention calibrated once per device and cached), one file per DNN
``<out>/<device>_<dnn>.json``. Every measurement is cached under ``--cache`` as it is made:
copy that directory into $OUT and carry it back (``carry``) next call, and the rerun measures
only what is missing. ``--time-budget-s`` stops cleanly (SIGALRM: the chunk in progress is
dropped, everything before it is cached) with exit status 3 and a line saying what is left;
0 when every DNN has its file; 2 (one line) when the device fails. Demand is the graph's
bytes estimate until ``ncu`` replaces it.

``ncu``: Nsight Compute over a child process that runs each profiled DNN's groups with markers
(profiler/dram_counters.py); the bytes per group become ``demand_gbps`` (with the ratio to the
graph's estimate in ``profiler.dnns.<dnn>.dram_check``). Without ncu, or when it fails (no
permission to read counters, green contexts unsupported), each profile says so in
``demand_source`` and keeps the graph estimate; the raw ncu output stays in the profiles dir.

Needs torch (CUDA), cuda-bindings, onnx, onnxruntime (seeded weights' BatchNorm calibration),
numpy, PyYAML (device descriptions); not z3, ROS or rich (no progress bar is drawn).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

DEVICE = "emulated-h200"
STATUS_INCOMPLETE = 3


class BudgetReached(BaseException):
    """The time budget ran out (raised from SIGALRM; BaseException: nothing catches it)."""


class Log:
    def __init__(self, path):
        self.path = Path(path) if path else None
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.started = time.monotonic()

    def __call__(self, line: str) -> None:
        text = f"[{time.monotonic() - self.started:7.1f} s] {line}"
        print(text, file=sys.stderr, flush=True)
        if self.path:
            with open(self.path, "a", encoding="utf-8") as stream:
                stream.write(text + "\n")


def all_dnns():
    from hax_conn_core.models import known_ids

    return list(known_ids())


def dnn_list(text):
    return all_dnns() if text in (None, "all") else [d.strip() for d in text.split(",")]


def dnn_id(dnn: str) -> str:
    """The profile's name of a DNN given as an id or a .prototxt path."""
    if dnn.endswith(".prototxt"):
        from hax_conn_core.models import normalise_model_id

        return normalise_model_id(Path(dnn).stem)
    return dnn


def profile_path(out: Path, device: str, dnn: str) -> Path:
    return out / f"{device}_{dnn_id(dnn)}.json"


def preflight(log, backend: str = "cuda-sm") -> dict:
    """What the code path needs, present or not."""
    found = {}
    for name in ("torch", "cuda.bindings", "onnx", "onnxruntime", "numpy", "yaml", "rich",
                 "cupy"):
        try:
            module = __import__(name)
            found[name] = getattr(module, "__version__", "present")
        except ImportError:
            found[name] = None
    from hax_conn_core.profiler.dram_counters import ncu_path

    found["ncu"] = ncu_path()
    log("environment: " + ", ".join(f"{k} {v or 'MISSING'}" for k, v in found.items()))
    needed = ("onnx", "onnxruntime", "numpy", "yaml") + (
        ("torch", "cuda.bindings") if backend == "cuda-sm" else ())
    missing = [k for k in needed if not found[k]]
    if missing:
        wheels = {"yaml": "pyyaml", "cuda.bindings": "cuda-bindings"}
        log(f"cannot profile: {', '.join(missing)} missing (pip install "
            f"{' '.join(wheels.get(m, m) for m in missing)})")
        sys.exit(2)
    return found


def open_backend(device: str, name: str = "cuda-sm"):
    from hax_conn_core.runtime.backends import get_backend
    from hax_conn_core.runtime.device import load_runtime_device

    return get_backend(name, device=load_runtime_device(device)).open()


def arm_budget(seconds: float) -> None:
    def fire(signum, frame):
        raise BudgetReached()

    signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, max(1.0, seconds))


def cmd_check(args) -> int:
    log = Log(args.log)
    preflight(log, args.backend)
    backend = open_backend(args.device, args.backend)
    try:
        log(f"backend: {json.dumps(backend.describe())}")
    finally:
        backend.close()
    return 0


def cmd_profile(args) -> int:
    from hax_conn_core.errors import ConfigError, HaxConnError, ModelError, ProfileError
    from hax_conn_core.profiler import profile_dnns
    from hax_conn_core.profiler.document import write_document

    log = Log(args.log)
    arm_budget(args.time_budget_s)
    out, cache = Path(args.out), Path(args.cache)
    out.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    dnns = dnn_list(args.dnns)
    todo = [d for d in dnns if not profile_path(out, args.device, d).is_file()]
    log(f"profile: {len(dnns) - len(todo)} of {len(dnns)} DNN(s) already have a profile in "
        f"{out}; measuring {', '.join(todo) or 'nothing'} (budget {args.time_budget_s:g} s, "
        f"cache {cache})")
    done, skipped = [], []
    try:
        preflight(log, args.backend)
        backend = open_backend(args.device, args.backend)
        try:
            log(f"backend: {backend.describe()}")
            for dnn in todo:
                started = time.monotonic()
                try:
                    run = profile_dnns(backend, [dnn], device=args.device,
                                       repeats=args.repeats, warmup=args.warmup,
                                       progress=False, target_groups=args.groups,
                                       contention=True, stress_gbps=args.stress_gbps,
                                       fold_run_costs=not args.raw_group_times,
                                       cache_root=cache, note=log)
                except (ConfigError, ModelError, ProfileError) as error:
                    # This DNN's own problem (its layers, its input): the others go on. A
                    # BackendError (the device) stops the run below.
                    log(f"{dnn}: skipped: {' '.join(str(error).split())}")
                    skipped.append(dnn)
                    continue
                run.document["profiler"]["command"] = " ".join(sys.argv)
                run.document["profiler"]["card"] = backend.describe().get("card")
                run.document["profiler"]["split"] = backend.describe().get("split")
                write_document(run.document, profile_path(out, args.device, dnn))
                done.append(dnn)
                log(f"{dnn}: profile written in {time.monotonic() - started:.1f} s "
                    f"({run.reused} cached measurement(s) reused)")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            try:
                backend.close()
            except Exception as error:  # closing after a failure: report the first error
                log(f"closing the backend failed: {error}")
    except BudgetReached:
        left = [d for d in todo if d not in done and d not in skipped]
        log(f"INCOMPLETE: time budget of {args.time_budget_s:g} s reached; profiles written "
            f"for {len(done)} DNN(s) this call, {len(left)} left ({', '.join(left)}); "
            f"measurements so far are cached in {cache}: carry it back and rerun the same "
            "command")
        return STATUS_INCOMPLETE
    except HaxConnError as error:
        log(f"error: {' '.join(str(error).split())}; measurements so far are cached in "
            f"{cache}: rerun the same command to resume")
        return 2
    if skipped:
        log(f"done with errors: {len(dnns) - len(skipped)} profile(s) in {out}; skipped "
            f"{', '.join(skipped)} (reasons above)")
        return 2
    log(f"done: {len(dnns)} profile(s) in {out}")
    return 0


def _doc(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def cmd_ncu(args) -> int:
    from hax_conn_core.profiler import dram_counters as dc
    from hax_conn_core.profiler.document import write_document

    log = Log(args.log)
    profiles = Path(args.profiles)
    paths = {d: profile_path(profiles, args.device, d) for d in dnn_list(args.dnns)}
    paths = {d: p for d, p in paths.items() if p.is_file()}
    todo = {d: p for d, p in paths.items() if "dram_check" not in
            _doc(p).get("profiler", {}).get("dnns", {}).get(dnn_id(d), {})}
    log(f"ncu: {len(paths)} profile(s) in {profiles}, {len(todo)} without DRAM counters")
    if not todo:
        return 0

    def fallback(reason: str) -> int:
        for dnn, path in todo.items():
            doc = _doc(path)
            dc.note_no_counters(doc, reason)
            write_document(doc, path)
        log(f"no DRAM counters ({reason}): {len(todo)} profile(s) keep the graph's bytes "
            "estimate and say so in demand_source")
        return 0

    ncu = dc.ncu_path()
    if ncu is None:
        return fallback("ncu not found on PATH")
    # One ncu call for all, or one per DNN (--per-dnn: a DNN whose counters fail, ncu's
    # status 9 say, costs only its own demand figures).
    batches = [list(todo)] if not args.per_dnn else [[d] for d in todo]
    deadline = time.monotonic() + args.time_budget_s
    mapped, failures = {}, {}
    for batch in batches:
        left_s = deadline - time.monotonic()
        if left_s < 20:
            break
        got, reason = _ncu_call(args, ncu, profiles, batch, left_s, log)
        mapped.update(got)
        for dnn in batch:
            if dnn not in got and reason:
                failures[dnn] = reason
    from hax_conn_core.graph.prototxt import load_prototxt
    from hax_conn_core.models import get_model

    how = (f"ncu --cache-control {args.cache_control}, --graph-profiling "
           f"{args.graph_profiling}, one marked run per accelerator after a warm-up"
           + (", one ncu call per DNN" if args.per_dnn else ""))
    measured_dnns = [d for d in todo if d in mapped]
    for dnn in measured_dnns:
        path = todo[dnn]
        doc = _doc(path)
        graph = load_prototxt(get_model(dnn).prototxt, name=dnn)
        ranges = [g["layers"] for g in doc["dnns"][dnn]["groups"]]
        precision = doc.get("profiler", {}).get("precision", "fp16")
        estimate = dc.graph_bytes(graph, ranges, precision)
        check = dc.apply_dram_demand(doc, dnn, mapped[dnn], estimate, how)
        write_document(doc, path)
        log(f"{dnn}: demand from DRAM counters; DRAM bytes / graph estimate, median "
            + ", ".join(f"{acc} {r}" for acc, r in check["median_ratio"].items()))
    for dnn, reason in failures.items():
        doc = _doc(todo[dnn])
        dc.note_no_counters(doc, reason)
        write_document(doc, todo[dnn])
        log(f"{dnn}: no DRAM counters ({reason}): keeps the graph's bytes estimate")
    left = [d for d in todo if d not in mapped and d not in failures]
    if left:
        log(f"INCOMPLETE: no counters yet for {', '.join(left)} (the child's budget): rerun")
        return STATUS_INCOMPLETE
    return 0


def _ncu_call(args, ncu, profiles: Path, dnns, budget_s: float, log):
    """One ncu run over the marked runs of ``dnns``: ({dnn: {acc: {group: bytes}}}, the
    reason when it failed or None)."""
    from hax_conn_core.errors import HaxConnError
    from hax_conn_core.profiler import dram_counters as dc

    tag = dnns[0] if len(dnns) == 1 else "dram"
    raw = profiles / f"ncu_{tag}.csv"
    manifest = profiles / f"ncu_manifest_{tag}.json"
    child = [sys.executable, os.path.abspath(__file__), "ncu-child", "--profiles",
             str(profiles), "--manifest", str(manifest), "--device", args.device, "--dnns",
             ",".join(dnns), "--time-budget-s", str(max(30.0, budget_s - 60))]
    command = dc.ncu_command(ncu, child, str(raw), args.cache_control, args.graph_profiling)
    log("running: " + " ".join(command))
    started = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=budget_s)
    except subprocess.TimeoutExpired:
        return {}, f"ncu did not finish within {budget_s:.0f} s"
    (profiles / f"ncu_stdout_{tag}.txt").write_text(done.stdout + "\n--- stderr ---\n"
                                                    + done.stderr)
    log(f"ncu finished in {time.monotonic() - started:.1f} s with status {done.returncode}")
    try:
        text = raw.read_text(encoding="utf-8", errors="replace") if raw.is_file() else ""
        rows = json.loads(manifest.read_text()) if manifest.is_file() else None
        if done.returncode != 0 or rows is None:
            lines = [line for line in (done.stderr + done.stdout + text).splitlines()
                     if "ERR" in line or "rror" in line] or ["no output"]
            return {}, f"ncu run failed (status {done.returncode}): {lines[0][:200]}"
        stretches = dc.bytes_per_stretch(dc.parse_ncu_csv(text))
        return dc.map_to_groups(stretches, rows), None
    except HaxConnError as error:
        return {}, " ".join(str(error).split())[:300]


def cmd_ncu_child(args) -> int:
    """Under ncu: the marked runs of each DNN's groups; the manifest after each DNN."""
    from hax_conn_core.files import atomic_write
    from hax_conn_core.profiler import dram_counters as dc
    from hax_conn_core.runtime.models import load_model

    started = time.monotonic()
    backend = open_backend(args.device)
    rows = []
    try:
        for dnn in dnn_list(args.dnns):
            if rows and time.monotonic() - started > 0.6 * args.time_budget_s:
                break  # leave the rest for a rerun: ncu must still write what it has
            doc = _doc(profile_path(Path(args.profiles), args.device, dnn))
            groups = doc["dnns"][dnn]["groups"]
            precision = doc.get("profiler", {}).get("precision", "fp16")
            model = load_model(dnn)
            rows += dc.marked_runs(backend, model, [g["layers"] for g in groups],
                                   [list(g["time_ms"]) for g in groups], precision)
            print(f"ncu-child: {dnn} marked ({len(rows)} group runs so far)", file=sys.stderr,
                  flush=True)
        dc.closing_marker(backend)
        atomic_write(Path(args.manifest), json.dumps(
            {"format": dc.MANIFEST_FORMAT, "runs": rows}).encode("utf-8"))
    finally:
        backend.close()
    return 0


def cmd_merge(args) -> int:
    """One profile of every DNN in --profiles (same device, peak and curves)."""
    from hax_conn_core.profiler.document import write_document

    docs = [(d, _doc(profile_path(Path(args.profiles), args.device, d)))
            for d in dnn_list(args.dnns)
            if profile_path(Path(args.profiles), args.device, d).is_file()]
    if not docs:
        print(f"no profiles in {args.profiles}", file=sys.stderr)
        return 2
    first = docs[0][1]
    merged = json.loads(json.dumps(first))
    merged["dnns"] = {}
    merged.setdefault("profiler", {})["dnns"] = {}
    sources = set()
    for dnn, doc in docs:
        if doc["contention"] != first["contention"] or doc["device"] != first["device"]:
            print(f"{dnn}: its device or contention curves differ from {docs[0][0]}'s (another "
                  "calibration): not merged", file=sys.stderr)
            return 2
        name = dnn_id(dnn)
        merged["dnns"][name] = doc["dnns"][name]
        if name in doc.get("profiler", {}).get("dnns", {}):
            merged["profiler"]["dnns"][name] = doc["profiler"]["dnns"][name]
        sources.add(doc.get("demand_source", ""))
    if len(sources) > 1:
        merged["demand_source"] = "per DNN: see each DNN's profiler.dnns.<dnn> (dram_check)"
    merged["source"] = first["source"] + f"; merged from {len(docs)} per-DNN profiles"
    if args.plain:
        merged["source"] += plain_summary(merged)
    write_document(merged, args.out, plain=args.plain)
    print(f"{len(docs)} DNN(s) merged into {args.out}")
    return 0


def plain_summary(doc) -> str:
    """What ``--plain`` drops, as a sentence in ``source``: sum checks, the demand source with
    the DRAM / graph-estimate ratio, the contention ranges reached."""
    meta = doc.get("profiler", {})
    parts = []
    for name, info in meta.get("dnns", {}).items():
        checks = ", ".join(f"{acc} {100 * c['deviation']:+.1f}%"
                           for acc, c in info.get("sum_check", {}).items()
                           if c.get("deviation") is not None)
        ratio = info.get("dram_check", {}).get("median_ratio")
        parts.append(f"{name} group sum vs engines {checks}" + (
            ", DRAM bytes / graph estimate " + ", ".join(f"{a} {r}" for a, r in ratio.items())
            if ratio else ", demand from the graph estimate"))
    contention = meta.get("contention", {})
    ranges = ", ".join(f"{acc} u {i['u_range'][0]}-{i['u_range'][1]} (fit {i['fit_rms_rel']})"
                       for acc, i in contention.get("accelerators", {}).items())
    return ("; " + "; ".join(parts) + "; contention " +
            (f"calibrated: {ranges}, flat beyond" if contention.get("calibrated")
             else "not calibrated") + "; full metadata: the per-DNN profiles (docs/profiler.md)")


def cmd_estimate(args) -> int:
    """GPU-time estimate of ``profile``: frames needed x a frame's time (roofline-free: the
    measured whole-DNN times of docs/bench, scaled), plus engine builds."""
    from hax_conn_core.graph.capabilities import load_device
    from hax_conn_core.graph.prototxt import load_prototxt
    from hax_conn_core.models import get_model
    from hax_conn_core.profiler.groups import initial_groups
    from hax_conn_core.profiler.profiler import _frames_needed

    caps = load_device(args.device)
    total = 0.0
    for dnn in dnn_list(args.dnns):
        graph = load_prototxt(get_model(dnn).prototxt, name=dnn)
        groups = initial_groups(graph, caps, ("gpu", "dla"), args.groups)
        frames = _frames_needed(groups, ("gpu", "dla"), args.repeats + args.warmup)
        frames += 5 * (args.repeats + args.warmup)  # the reference runs of the split batches
        flops = sum(layer.flops for layer in graph.layer_stats(2))
        # gpu 124 SMs ~ 8 TFLOP/s effective on these nets at batch 1 (googlenet 1.0 ms), dla
        # 3x slower; half the runs are mostly on each; + 1 ms of executor steps per frame.
        frame_ms = flops / 8e9 * 2.0 + 1.0
        # engines built: every run's chain that is not in the pool (each measure_runs call
        # has its own runtime): about 20 per group, ~60 ms each (module, warm-up, capture).
        builds_s = 20 * len(groups) * 0.06
        seconds = frames * frame_ms / 1e3 + builds_s + 3.0
        total += seconds
        print(f"{dnn:22s} {len(groups):2d} groups {frames:5d} frames ~{seconds:5.0f} s")
    print(f"total ~{total:.0f} s + contention calibration ~10 s + start-up and seeded "
          "weights ~40 s (a rough guess: plus or minus 50%)")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("--device", default=DEVICE)
        p.add_argument("--backend", default="cuda-sm",
                       help="cuda-sm (default); onnxruntime runs the same flow on the CPU")
        p.add_argument("--dnns", default="all", help="comma-separated ids, or all (default)")
        p.add_argument("--log", help="append the log here too")
        return p

    common(sub.add_parser("check", help="environment and backend"))
    p = common(sub.add_parser("profile", help="measure the profiles (resumable)"))
    p.add_argument("--cache", required=True, help="measurement cache (carry it back)")
    p.add_argument("--out", required=True, help="directory of the per-DNN profiles")
    p.add_argument("--time-budget-s", type=float, default=480.0)
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--groups", type=int, default=10)
    p.add_argument("--stress-gbps", type=float)
    p.add_argument("--raw-group-times", action="store_true",
                   help="no folding of the run's own costs into the groups")
    p = common(sub.add_parser("ncu", help="DRAM counters for demand (Nsight Compute)"))
    p.add_argument("--profiles", required=True)
    p.add_argument("--time-budget-s", type=float, default=480.0)
    p.add_argument("--cache-control", default="none", choices=("none", "all"))
    p.add_argument("--graph-profiling", default="node", choices=("node", "graph"),
                   help="graph: each engine's CUDA graph is one ncu result (fast)")
    p.add_argument("--per-dnn", action="store_true", help="one ncu call per DNN")
    p = common(sub.add_parser("ncu-child", help=argparse.SUPPRESS))
    p.add_argument("--profiles", required=True)
    p.add_argument("--manifest", required=True)
    p.add_argument("--time-budget-s", type=float, default=420.0)
    p = common(sub.add_parser("merge", help="one profile of all DNNs (no GPU)"))
    p.add_argument("--profiles", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--plain", action="store_true",
                   help="the shipped layout (profiles/): optional keys folded into source")
    p = common(sub.add_parser("estimate", help="GPU time of 'profile' (no GPU)"))
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--groups", type=int, default=10)
    args = parser.parse_args(argv)
    return {"check": cmd_check, "profile": cmd_profile, "ncu": cmd_ncu,
            "ncu-child": cmd_ncu_child, "merge": cmd_merge, "estimate": cmd_estimate
            }[args.command](args)


if __name__ == "__main__":
    sys.exit(main())

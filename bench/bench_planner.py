"""Planner benchmark: Z3 solve times on random instances, and the improvement on shipped profiles.

Usage (from the repository root):
    .venv/bin/python bench/bench_planner.py [--instances N] [--seed S] [--dnns N] [--json]
    .venv/bin/python bench/bench_planner.py --reference --dnns 4   # remake the reference
    .venv/bin/python bench/bench_planner.py --oracle [--instances N] [--seed S]
    .venv/bin/python bench/bench_planner.py --pair-check --dnns 4

Random instances use the device and contention curves of the shipped Xavier profile and draw
per-group times (GPU 0.1-2 ms, DLA 1-3x the GPU), DRAM demands (5-80 GB/s), transition costs
(0-0.2 ms) and a 10 % chance that the DLA cannot run a group, from a seeded generator, so the
same command gives the same instances. Each instance is planned with the latency objective; the
table gives the median and the largest Z3 time (the time spent in Z3 checks), the whole plan()
time (Z3, simulations and baselines), the Z3 checks and simulated candidates, and how many plans
were proven within 1 %; plans that are not proven are compared with the best schedules known
for the same instances (``planner_reference.json``, made by ``--reference``). The shipped
profiles are then planned for both objectives with K = 1 and 2, and HaX-CoNN's predicted figure
is compared with the best baseline. ``--oracle`` measures the refinement alone against the
brute-force optimum on small instances.
Results are recorded in docs/bench-planner.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hax_conn_core.planner import plan  # noqa: E402
from hax_conn_core.profile import load_profile, parse_profile, profile_to_dict  # noqa: E402
from hax_conn_core.resources import data_dir  # noqa: E402

SIZES = [  # (DNNs, groups per DNN, max transitions, target median Z3 time in s)
    (2, 10, 1, 0.1),
    (3, 10, 1, 0.5),
    (4, 12, 2, 2.0),
]


def random_profile(rng: random.Random, base: dict, n_dnns: int, n_groups: int):
    dnns = {}
    for d in range(n_dnns):
        groups, layer = [], 0
        for _ in range(n_groups):
            size = rng.randint(1, 20)
            gpu = rng.uniform(0.1, 2.0)
            time_ms, demand, transition = {"gpu": gpu}, {"gpu": rng.uniform(5, 80)}, \
                {"gpu": rng.uniform(0.0, 0.2)}
            if rng.random() >= 0.1:
                time_ms["dla"] = gpu * rng.uniform(1.0, 3.0)
                demand["dla"] = rng.uniform(5, 60)
                transition["dla"] = rng.uniform(0.0, 0.2)
            groups.append({"layers": [layer, layer + size - 1], "time_ms": time_ms,
                           "demand_gbps": demand, "transition_ms": transition})
            layer += size
        dnns[f"net{d}"] = {"groups": groups}
    doc = {"format": base["format"], "device": base["device"],
           "contention": base["contention"], "dnns": dnns}
    return parse_profile(doc, source="<bench>")


REFERENCE_FILE = Path(__file__).resolve().parent / "planner_reference.json"
REFERENCE_FORMAT = "hax-conn-bench-reference/1"


def base_profile_doc() -> dict:
    """The shipped profile whose device and contention curves random instances use."""
    shipped = sorted(data_dir("profiles").glob("*.json"))
    return profile_to_dict(load_profile(shipped[0]))


def instances(seed: int, only=None):
    """(size row, [profiles]) for every size, drawn from one seeded generator per size."""
    base = base_profile_doc()
    for n_dnns, n_groups, k, target in SIZES:
        if only is not None and n_dnns not in only:
            continue
        rng = random.Random(f"{seed}-{n_dnns}-{n_groups}-{k}")
        yield (n_dnns, n_groups, k, target), rng, base


def load_reference() -> dict:
    """Best schedules known per instance (profile sha256 -> {best_ms, how}), if recorded."""
    if not REFERENCE_FILE.exists():
        return {}
    doc = json.loads(REFERENCE_FILE.read_text())
    if doc.get("format") != REFERENCE_FORMAT:
        raise SystemExit(f"{REFERENCE_FILE}: expected format {REFERENCE_FORMAT}")
    return doc["instances"]


def bench_sizes(count: int, seed: int, only=None) -> list:
    reference = load_reference()
    rows = []
    for (n_dnns, n_groups, k, target), rng, base in instances(seed, only):
        z3_s, total_s, checks, cands, gaps, found, above = [], [], [], [], [], [], []
        statuses = {}
        for _ in range(count):
            profile = random_profile(rng, base, n_dnns, n_groups)
            started = time.perf_counter()
            result = plan(profile, max_transitions=k)
            total_s.append(time.perf_counter() - started)
            z3_s.append(result.z3_time_s)
            checks.append(result.checks)
            cands.append(result.candidates)
            statuses[result.status] = statuses.get(result.status, 0) + 1
            if result.lower_bound_ms:
                # What is left to prove: how far the plan can be above the best schedule.
                gaps.append(100.0 * (result.predicted_ms / result.lower_bound_ms - 1.0))
            known = reference.get(profile.sha256)
            if known is not None:
                above.append(100.0 * (result.predicted_ms / known["best_ms"] - 1.0))
            found.append(result.predicted_ms)
        rows.append({"size": f"{n_dnns} DNNs x {n_groups} groups, K={k}",
                     "target_s": target, "z3_median_s": statistics.median(z3_s),
                     "z3_max_s": max(z3_s), "plan_median_s": statistics.median(total_s),
                     "plan_max_s": max(total_s), "checks_median": statistics.median(checks),
                     "candidates_median": statistics.median(cands),
                     "status": ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())),
                     "gap_median_pct": statistics.median(gaps) if gaps else None,
                     "gap_max_pct": max(gaps) if gaps else None,
                     "above_reference_median_pct": statistics.median(above) if above else None,
                     "above_reference_max_pct": max(above) if above else None,
                     "within_1pct_of_reference": f"{sum(a <= 1.0 for a in above)}/{len(above)}"
                     if above else None,
                     "plan_ms": found})
    return rows


ORACLE_SIZES = [(2, 6, 1), (3, 5, 1), (3, 5, 2), (2, 8, 2)]  # (DNNs, groups, K)


def refinement_vs_oracle(count: int, seed: int) -> dict:
    """The refinement alone (``prove=False``) against the brute-force optimum, on small random
    instances of both objectives: how often it lands within 1 % (it proves nothing)."""
    from hax_conn_core.enumerate_schedules import brute_force_best

    base = base_profile_doc()
    rng = random.Random(f"{seed}-oracle")
    above = []
    for n_dnns, n_groups, k in ORACLE_SIZES:
        for objective in ("latency", "throughput"):
            for _ in range(count):
                profile = random_profile(rng, base, n_dnns, n_groups)
                result = plan(profile, objective=objective, max_transitions=k, prove=False)
                best = brute_force_best(profile, objective, k).predicted_ms
                above.append(100.0 * (result.predicted_ms / best - 1.0))
    return {"instances": len(above), "within_1pct": sum(a <= 1.0 for a in above),
            "median_above_pct": statistics.median(above), "max_above_pct": max(above)}


def pair_check(count: int, seed: int, only) -> list:
    """For each instance, the default plan and the reference, then the best of every
    reassignment of every two DNNs (the others kept), repeated until none improves: all the
    schedules of each pair neighbourhood simulated, no Z3, no prediction. Tells whether the
    refinement's Z3-filtered pair search missed a better schedule that a full pair search
    finds (minutes: tens of thousands of simulations per instance)."""
    import itertools

    from hax_conn_core.enumerate_schedules import enumerate_assignments
    from hax_conn_core.simulator import predict_ms

    reference = load_reference()
    rows = []
    for (n_dnns, n_groups, k, _), rng, base in instances(seed, only):
        for index in range(count):
            profile = random_profile(rng, base, n_dnns, n_groups)
            names = list(profile.dnns)
            options = {n: list(enumerate_assignments(profile.dnns[n],
                                                     profile.device.accelerators, k))
                       for n in names}
            starts = {"default plan": dict(plan(profile, max_transitions=k)
                                           .schedule.assignments)}
            if profile.sha256 in reference:
                starts["reference"] = {n: tuple(a) for n, a in
                                       reference[profile.sha256]["schedule"].items()}
            row = {"size": f"{n_dnns}x{n_groups} K={k}", "index": index}
            for what, current in starts.items():
                current_ms = start_ms = predict_ms(profile, current)
                improved = True
                while improved:
                    improved = False
                    for a, b in itertools.combinations(names, 2):
                        for oa, ob in itertools.product(options[a], options[b]):
                            trial = dict(current, **{a: oa, b: ob})
                            ms = predict_ms(profile, trial)
                            if ms < current_ms * (1.0 - 1e-12):
                                current, current_ms, improved = trial, ms, True
                row[what] = {"start_ms": start_ms, "after_pairs_ms": current_ms}
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


@contextlib.contextmanager
def search_limits(**values):
    """The search's module constants (hax_conn_core.planner.refine) set for a while."""
    from hax_conn_core.planner import refine

    saved = {name: getattr(refine, name) for name in values}
    for name, value in values.items():
        setattr(refine, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(refine, name, value)


def make_reference(count: int, seed: int, only) -> None:
    """Search each instance long and wide, keep the best simulated figure (slow: minutes).

    Three searches, the best kept: the default plan; the refinement over every three DNNs
    with a 2 % slack; and the proof run to 12,000 simulated schedules. Each figure is the
    simulator's value of a real schedule, so it is an upper bound of the optimum, and a plan
    at or below it is as good as anything these searches found.
    """
    recorded = load_reference()
    for (n_dnns, n_groups, k, _), rng, base in instances(seed, only):
        for index in range(count):
            profile = random_profile(rng, base, n_dnns, n_groups)
            results = {"default plan()": plan(profile, max_transitions=k)}
            with search_limits(REFINE_DNNS=3, REFINE_SLACK=0.02, MAX_CANDIDATES=20_000,
                               RLIMIT_TOTAL=10 ** 12):
                results["refinement over 3 DNNs, 2 % slack, 20,000 schedules"] = plan(
                    profile, max_transitions=k, prove=False)
            with search_limits(MAX_CANDIDATES=12_000, RLIMIT_TOTAL=10 ** 12):
                results["proof run to 12,000 schedules"] = plan(profile, max_transitions=k,
                                                                prove=True)
            how, best = min(results.items(), key=lambda kv: kv[1].predicted_ms)
            recorded[profile.sha256] = {
                "size": f"{n_dnns}x{n_groups} K={k}", "seed": seed, "index": index,
                "best_ms": best.predicted_ms, "found_by": how,
                "all_ms": {h: r.predicted_ms for h, r in results.items()},
                "schedule": {n: list(a) for n, a in best.schedule.assignments.items()}}
            print(f"{n_dnns}x{n_groups} #{index}: best {best.predicted_ms:.3f} ms ({how})",
                  flush=True)
            REFERENCE_FILE.write_text(json.dumps(
                {"format": REFERENCE_FORMAT,
                 "how": "bench/bench_planner.py --reference: " + " ".join(
                     make_reference.__doc__.split("\n\n")[1].split()),
                 "instances": recorded}, indent=1) + "\n")


def bench_shipped() -> list:
    rows = []
    for path in sorted(data_dir("profiles").glob("*.json")):
        profile = load_profile(path)
        for objective in ("latency", "throughput"):
            for k in (1, 2):
                result = plan(profile, objective=objective, max_transitions=k)
                best = result.best_baseline()
                fair = result.best_baseline(within_budget=True)
                rows.append({
                    "profile": path.name, "objective": objective, "K": k,
                    "haxconn_ms": result.predicted_ms,
                    "best_baseline": f"{best.name} ({best.transitions} tr.)",
                    "best_baseline_ms": best.schedule.predicted_ms,
                    "improvement_pct": result.improvement_pct(),
                    "improvement_within_budget_pct": result.improvement_pct(True)
                    if fair else None,
                    "status": result.status, "plan_s": result.time_s,
                    "plan": {n: list(a) for n, a in result.schedule.assignments.items()}})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=9, help="instances per size (9)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON")
    parser.add_argument("--dnns", type=int, action="append", choices=[s[0] for s in SIZES],
                        help="only the random size with this many DNNs (repeatable); skips "
                        "the shipped profiles")
    parser.add_argument("--reference", action="store_true",
                        help=f"search every instance long and wide and record the best "
                        f"schedules in {REFERENCE_FILE.name} (minutes per instance)")
    parser.add_argument("--pair-check", action="store_true",
                        help="only: search every two-DNN neighbourhood of the default plan "
                        "and the reference exhaustively (minutes per instance)")
    parser.add_argument("--oracle", action="store_true",
                        help="only: the refinement without the proof against the brute-force "
                        "optimum on small instances (--instances per size and objective)")
    args = parser.parse_args()
    import z3

    if args.pair_check:
        pair_check(args.instances, args.seed, args.dnns or [4])
        return 0
    if args.oracle:
        print(json.dumps(refinement_vs_oracle(args.instances, args.seed), indent=2))
        return 0
    if args.reference:
        make_reference(args.instances, args.seed, args.dnns)
        return 0
    sizes = bench_sizes(args.instances, args.seed, args.dnns)
    shipped = bench_shipped() if not args.dnns else []
    if args.json:
        print(json.dumps({"sizes": sizes, "shipped": shipped}, indent=2))
        return 0
    print(f"Machine: {platform.processor() or platform.machine()}, Python "
          f"{platform.python_version()}, z3 {z3.get_version_string()}; "
          f"{args.instances} instances per size, seed {args.seed}\n")
    print("| Size | Z3 median (s) | Z3 max (s) | target (s) | plan() median (s) | "
          "plan() max (s) | Z3 checks (median) | simulated (median) | status | "
          "gap to proven bound (median, max) | above the reference (median, max) | "
          "within 1 % of the reference |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")

    def pair(lo, hi):
        return "-" if lo is None else f"{lo:.1f} %, {hi:.1f} %"

    for r in sizes:
        print(f"| {r['size']} | {r['z3_median_s']:.3f} | {r['z3_max_s']:.3f} | "
              f"{r['target_s']} | {r['plan_median_s']:.3f} | {r['plan_max_s']:.3f} | "
              f"{r['checks_median']:.0f} | {r['candidates_median']:.0f} | {r['status']} | "
              f"{pair(r['gap_median_pct'], r['gap_max_pct'])} | "
              f"{pair(r['above_reference_median_pct'], r['above_reference_max_pct'])} | "
              f"{r['within_1pct_of_reference'] or '-'} |")
    print("\n| Profile | Objective | K | HaX-CoNN (ms) | Best baseline | Baseline (ms) | "
          "Improvement | Within budget | Status | plan() (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in shipped:
        within = (f"{r['improvement_within_budget_pct']:.1f} %"
                  if r["improvement_within_budget_pct"] is not None else "-")
        print(f"| {r['profile']} | {r['objective']} | {r['K']} | {r['haxconn_ms']:.3f} | "
              f"{r['best_baseline']} | {r['best_baseline_ms']:.3f} | "
              f"{r['improvement_pct']:.1f} % | {within} | {r['status']} | {r['plan_s']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

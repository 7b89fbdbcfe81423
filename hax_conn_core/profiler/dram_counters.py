"""Demand from DRAM byte counters: Nsight Compute over marked whole-model runs (docs/profiler.md).

How it works (the GPU path; the CPU path keeps the graph's bytes estimate):

1. A child process runs, for each DNN and accelerator, the profile's groups one after the
   other on that accelerator's stream (one engine per group, chained as the runtime chains
   them, after a warm-up pass), with a *marker kernel* (``torch.cuda._sleep``: a spin kernel
   that reads and writes no memory) before every group and one after the very last, inside
   ``cudaProfilerStart/Stop`` (:func:`marked_runs`). It writes a manifest: the (dnn,
   accelerator, group) of each stretch between two markers, in launch order.
2. ``ncu`` (:func:`ncu_command`) profiles that child: ``--profile-from-start off`` (only the
   marked runs), ``--graph-profiling node`` (each kernel of an engine's CUDA graph is its own
   result), ``--metrics dram__bytes_read.sum,dram__bytes_write.sum``, ``--csv --print-units
   base``, ``--cache-control none`` (the L2 keeps what the previous kernels left, as in the
   whole-model run; ``all`` would flush it before every kernel and count every weight and
   activation from DRAM).
3. :func:`parse_ncu_csv` reads ncu's CSV (either page: ``details``, one row per kernel and
   metric, or ``raw``, one row per kernel with a units row); :func:`bytes_per_stretch` cuts
   the kernels at the markers and sums read + written bytes per stretch; the manifest names
   each stretch's group.
4. :func:`apply_dram_demand` sets ``demand_gbps[a] = bytes / time_ms[a]`` per group, records
   the ratio to the graph's bytes estimate (``grouping.group_costs``) under
   ``profiler.dnns.<dnn>.dram_check`` and says so in ``demand_source``;
   :func:`note_no_counters` keeps the graph estimate and says why (no ncu, no permission to
   read counters, a failed run).

Parsing and mapping need neither a GPU nor ncu (tested in CI with CSV text in ncu's format);
``marked_runs`` needs torch and the cuda-sm backend.
"""

from __future__ import annotations

import csv
import io
import shutil
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from hax_conn_core.errors import ProfileError

METRICS = ("dram__bytes_read.sum", "dram__bytes_write.sum")
#: A kernel whose name contains this is a marker (torch.cuda._sleep's spin kernel).
MARKER = "spin_kernel"
#: Spin cycles of a marker (a few microseconds).
MARKER_CYCLES = 1000
MANIFEST_FORMAT = "hax-conn-dram-manifest/1"
#: Byte units ncu prints (``--print-units base`` gives ``byte``).
UNITS = {"byte": 1, "bytes": 1, "b": 1, "kbyte": 1e3, "mbyte": 1e6, "gbyte": 1e9,
         "tbyte": 1e12, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 1024, "mib": 1024 ** 2,
         "gib": 1024 ** 3}


@dataclass
class KernelBytes:
    """One profiled kernel: launch order id, name, DRAM bytes read and written."""

    id: int
    name: str
    read: float = 0.0
    write: float = 0.0

    @property
    def total(self) -> float:
        return self.read + self.write


def ncu_path() -> Optional[str]:
    return shutil.which("ncu")


def ncu_command(ncu: str, child: Sequence[str], log_file: str,
                cache_control: str = "none", graph_profiling: str = "node") -> List[str]:
    """The ncu command line that profiles ``child`` (module docstring, step 2).
    ``graph_profiling="graph"`` makes each engine's whole CUDA graph one result (one replay
    per group instead of one per kernel: much faster; the bytes per group are the same sum)."""
    if cache_control not in ("none", "all"):
        raise ProfileError(f"ncu cache control {cache_control!r}: expected none or all")
    if graph_profiling not in ("node", "graph"):
        raise ProfileError(f"ncu graph profiling {graph_profiling!r}: expected node or graph")
    return [ncu, "--csv", "--print-units", "base", "--profile-from-start", "off",
            "--graph-profiling", graph_profiling, "--cache-control", cache_control,
            "--metrics", ",".join(METRICS), "--target-processes", "all",
            "--log-file", log_file, *child]


def _number(text: str, unit: str, where: str) -> float:
    cleaned = text.strip().replace(",", "").replace('"', "")
    try:
        value = float(cleaned)
    except ValueError:
        raise ProfileError(f"{where}: metric value {text!r} is not a number (ncu could not "
                           "collect it: counters not readable by this user, or no DRAM "
                           "metric on this card?)") from None
    scale = UNITS.get(unit.strip().lower().replace('"', ""))
    if scale is None:
        raise ProfileError(f"{where}: unit {unit!r}; expected a byte unit "
                           f"({', '.join(sorted(UNITS))})")
    return value * scale


def parse_ncu_csv(text: str) -> List[KernelBytes]:
    """Kernels with their DRAM bytes from ncu's ``--csv`` output (module docstring, step 3),
    in launch order. Lines ncu prints around the table (``==PROF==`` and the like) are
    skipped; a table without the metrics is a ProfileError."""
    lines = [line for line in text.splitlines() if line.strip()
             and not line.startswith("==")]
    start = next((i for i, line in enumerate(lines) if line.startswith('"ID"')
                  or line.startswith("ID,")), None)
    if start is None:
        raise ProfileError("ncu output: no CSV table (no header row starting with \"ID\"); "
                           "was it run with --csv, and did it profile any kernel?")
    rows = list(csv.reader(io.StringIO("\n".join(lines[start:]))))
    header = rows[0]
    kernels: Dict[int, KernelBytes] = {}
    if "Metric Name" in header:  # details page: one row per kernel and metric
        col = {name: header.index(name) for name in
               ("ID", "Kernel Name", "Metric Name", "Metric Unit", "Metric Value")
               if name in header}
        if len(col) < 5:
            raise ProfileError(f"ncu output: columns {header}; expected ID, Kernel Name, "
                               "Metric Name, Metric Unit, Metric Value")
        for number, row in enumerate(rows[1:], start=2):
            if len(row) < len(header) or row[col["Metric Name"]] not in METRICS:
                continue
            ident = int(row[col["ID"]])
            kernel = kernels.setdefault(ident, KernelBytes(ident, row[col["Kernel Name"]]))
            value = _number(row[col["Metric Value"]], row[col["Metric Unit"]],
                            f"ncu output row {number}")
            if row[col["Metric Name"]] == METRICS[0]:
                kernel.read = value
            else:
                kernel.write = value
    else:  # raw page: one row per kernel, metrics as columns, then a units row
        missing = [m for m in ("ID", "Kernel Name", *METRICS) if m not in header]
        if missing:
            raise ProfileError(f"ncu output: no column {', '.join(missing)}; run ncu with "
                               f"--metrics {','.join(METRICS)}")
        units = rows[1] if len(rows) > 1 and not rows[1][header.index("ID")].strip() else None
        body = rows[2:] if units else rows[1:]
        for number, row in enumerate(body, start=3 if units else 2):
            if len(row) < len(header):
                continue
            ident = int(row[header.index("ID")])
            values = [_number(row[header.index(m)], units[header.index(m)] if units else "byte",
                              f"ncu output row {number}") for m in METRICS]
            kernels[ident] = KernelBytes(ident, row[header.index("Kernel Name")], *values)
    if not kernels:
        raise ProfileError(f"ncu output: no kernel with {' and '.join(METRICS)}")
    return [kernels[k] for k in sorted(kernels)]


def bytes_per_stretch(kernels: Sequence[KernelBytes], marker: str = MARKER
                      ) -> List[Tuple[float, int]]:
    """(read + written bytes, kernels) of each stretch between two consecutive markers.
    Kernels before the first marker or after the last belong to no stretch."""
    stretches: List[Tuple[float, int]] = []
    current: Optional[List[KernelBytes]] = None
    for kernel in kernels:
        if marker in kernel.name:
            if current is not None:
                stretches.append((sum(k.total for k in current), len(current)))
            current = []
        elif current is not None:
            current.append(kernel)
    return stretches


def map_to_groups(stretches: Sequence[Tuple[float, int]], manifest: Mapping[str, Any]
                  ) -> Dict[str, Dict[str, Dict[int, float]]]:
    """``{dnn: {acc: {group: bytes}}}`` from the stretches and the child's manifest (whose
    ``runs`` list one ``[dnn, acc, group]`` per stretch, in order)."""
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ProfileError(f"DRAM manifest: format {manifest.get('format')!r}; expected "
                           f"{MANIFEST_FORMAT}")
    runs = manifest.get("runs", [])
    if len(runs) != len(stretches):
        raise ProfileError(f"ncu profiled {len(stretches)} marked stretch(es); the manifest "
                           f"lists {len(runs)} group run(s): the kernels cannot be mapped to "
                           "groups (a marker lost, or ncu stopped early)")
    result: Dict[str, Dict[str, Dict[int, float]]] = {}
    for (dnn, acc, group), (total, count) in zip(runs, stretches):
        if count == 0:
            raise ProfileError(f"{dnn} group {group} on {acc}: no kernel between its markers")
        result.setdefault(dnn, {}).setdefault(acc, {})[int(group)] = total
    return result


def graph_bytes(graph, layer_ranges: Sequence[Sequence[int]], precision: str) -> List[float]:
    """The graph's bytes estimate per group (``grouping.group_costs`` bytes_moved)."""
    from hax_conn_core.graph.grouping import group_costs, LayerGroup

    size = {"fp32": 4, "fp16": 2, "int8": 1}.get(precision, 4)
    groups = [LayerGroup(i, int(r[0]), int(r[1]), 0, True) for i, r in enumerate(layer_ranges)]
    return [float(c.bytes_moved) for c in group_costs(graph, groups, dtype_bytes=size)]


def apply_dram_demand(document: Dict[str, Any], dnn: str,
                      measured: Mapping[str, Mapping[int, float]],
                      estimate: Sequence[float], how: str) -> Dict[str, Any]:
    """Set ``dnn``'s demands from measured bytes (``{acc: {group: bytes}}``) over its
    in-context times, and record the ratio to the graph's ``estimate`` (module docstring,
    step 4). Groups or accelerators without a measurement keep the estimate's demand and are
    listed. Returns the check written to ``profiler.dnns.<dnn>.dram_check``."""
    import statistics

    groups = document["dnns"][dnn]["groups"]
    if len(estimate) != len(groups):
        raise ProfileError(f"{dnn}: {len(estimate)} estimated group(s) for {len(groups)} in "
                           "the profile")
    ratios: Dict[str, List[Optional[float]]] = {}
    kept: List[str] = []
    for index, (row, guess) in enumerate(zip(groups, estimate)):
        for acc, ms in row["time_ms"].items():
            value = measured.get(acc, {}).get(index)
            if value is None:
                kept.append(f"{index}:{acc}")
                ratios.setdefault(acc, []).append(None)
                continue
            row["demand_gbps"][acc] = round(value / 1e9 / (ms / 1e3), 3)
            ratios.setdefault(acc, []).append(round(value / guess, 4) if guess > 0 else None)
    check = {"dram_bytes_over_graph_estimate": ratios,
             "median_ratio": {acc: (round(statistics.median([r for r in rs if r is not None]),
                                          4) if any(r is not None for r in rs) else None)
                              for acc, rs in ratios.items()},
             "kept_graph_estimate": kept, "how": how}
    profiler = document.setdefault("profiler", {})
    profiler.setdefault("dnns", {}).setdefault(dnn, {})["dram_check"] = check
    profiler["dram_counters"] = {"used": True, "how": how}  # replaces an earlier fallback note
    document["demand_source"] = (
        "DRAM byte counters: Nsight Compute dram__bytes_read.sum + dram__bytes_write.sum per "
        "kernel, summed per group over a marked run of the groups on each accelerator, / "
        "measured in-context time; ratio to the graph's bytes estimate in "
        "profiler.dnns.<dnn>.dram_check (groups listed in kept_graph_estimate keep the "
        "estimate)")
    return check


def note_no_counters(document: Dict[str, Any], reason: str) -> None:
    """Keep the graph's bytes estimate as demand and say why no counters were read."""
    document["demand_source"] = (
        "graph bytes estimate (grouping.group_costs bytes_moved) / measured in-context time; "
        f"no DRAM counters: {reason}")
    document.setdefault("profiler", {})["dram_counters"] = {"used": False, "reason": reason}


# --- the child side (GPU machine, under ncu) ---------------------------------------------------

def marked_runs(backend, model, layer_ranges: Sequence[Sequence[int]],
                runs_on: Sequence[Sequence[str]], precision: str) -> List[List[Any]]:
    """Run ``model``'s groups on each accelerator (those ``runs_on[g]`` lists), a marker before
    every group, inside cudaProfilerStart/Stop (module docstring, step 1); the manifest rows
    ``[dnn, acc, group]`` in launch order. The last stretch ends at the next call's first
    marker or at :func:`closing_marker`, which must follow the last call (warm-ups and builds
    run with the profiler stopped: nothing of them lands in a stretch). cuda-sm only
    (``backend.stream(acc)``, ``engine.input_buffers``)."""
    import torch

    from hax_conn_core.runtime.backends.base import EngineSpec

    rows: List[List[Any]] = []
    for acc in backend.accelerators:
        stream = backend.stream(acc)
        engines, previous, last_group = [], None, None
        for g, (first, last) in enumerate(layer_ranges):
            if acc not in runs_on[g]:
                continue
            spec = EngineSpec(dnn=model.name, graph=model.graph, weights=model.weights,
                              weights_id=model.weights_id, first_layer=int(first),
                              last_layer=int(last), accelerator=acc, precision=precision)
            chained = previous if last_group == g - 1 else None
            engine = backend.build(spec, slots=1, inputs_from=chained)
            engines.append((g, engine, chained is not None))
            previous, last_group = engine, g
        if not engines:
            continue

        def one_pass(mark: bool):
            launch = None
            for g, engine, chained in engines:
                if chained and launch is not None:
                    inputs, wait = launch.outputs, (launch.done,)
                else:  # its own static buffers (zeros): no copy kernel in the stretch
                    inputs, wait = engine.input_buffers(0), ()
                if mark:
                    with torch.cuda.stream(stream):
                        torch.cuda._sleep(MARKER_CYCLES)
                    rows.append([model.name, acc, g])
                launch = engine.run(inputs, wait_for=wait)
            stream.synchronize()

        one_pass(False)  # warm-up: the L2 and the allocator as in a running profile
        torch.cuda.profiler.start()
        try:
            one_pass(True)
        finally:
            torch.cuda.profiler.stop()
        for _, engine, _ in engines:
            engine.release()
    return rows


def closing_marker(backend) -> None:
    """The marker that ends the last stretch (see :func:`marked_runs`)."""
    import torch

    stream = backend.stream(backend.accelerators[0])
    torch.cuda.profiler.start()
    try:
        with torch.cuda.stream(stream):
            torch.cuda._sleep(MARKER_CYCLES)
        stream.synchronize()
    finally:
        torch.cuda.profiler.stop()

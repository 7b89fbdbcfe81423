"""The validation report (``hax-conn-validate/1``, docs/validate.md): rows, the error summary,
and the report as markdown (also the plain-text form where rich is missing).

A row is one DNN set and objective (``measure.measure_set``). The error of a schedule is
``(predicted - measured) / measured`` of the figure its objective is judged by: the latency
for the latency objective, the time per frame-set for throughput. The summary gives, over the
distinct measured schedules, the median of the absolute errors and the worst one, with the
contention model and without it (flat curves), so the value of the model shows in two numbers.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import statistics
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from hax_conn_core.errors import ConfigError
from hax_conn_core.jsonpath import join, load_json, Reader
from hax_conn_core.runtime.results import finite_for_json

REPORT_FORMAT = "hax-conn-validate/1"
_FAMILY = "hax-conn-validate"


def make_report(rows: Sequence[Dict[str, Any]], *, command: str, backend: Mapping[str, Any],
                profile_path: str, profile_sha256: str, rounds: int, frames: int,
                warmup: int, seed: int, precision: Optional[str],
                load_before: Optional[float] = None) -> Dict[str, Any]:
    """The report document; ``load_before``: the 1-minute load average when measuring
    started (with the one now, it says whether other work shared the machine)."""
    return {
        "format": REPORT_FORMAT,
        "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.node()} ({platform.machine()})",
        "machine_load": {"cores": os.cpu_count(), "load_1m_before": load_before,
                         "load_1m_after": load_average()},
        "backend": dict(backend),
        "profile": profile_path, "profile_sha256": profile_sha256,
        "rounds": rounds, "frames_per_round": frames, "warmup": warmup, "seed": seed,
        "precision": precision,
        "rows": list(rows),
        "summary": summarize_errors(rows),
    }


def load_average() -> Optional[float]:
    """The 1-minute load average, where the system has one."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def summarize_errors(rows: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """Per objective and over all rows: count, median |error| and the worst error, with and
    without contention. Schedules measured once for two labels (``same_as``) count once."""
    out: Dict[str, Any] = {}
    for scope in ("all", "latency", "throughput"):
        picked = [(row, label, entry) for row in rows for label, entry in
                  row["schedules"].items()
                  if entry.get("same_as") is None and scope in ("all", row["objective"])]
        if not picked:
            continue
        out[scope] = {"schedules": len(picked)}
        for key in ("error", "error_no_contention"):
            errors = [entry[key]["objective"] for _, _, entry in picked]
            worst = max(range(len(picked)), key=lambda i: abs(errors[i]))
            row, label, _ = picked[worst]
            out[scope][key] = {
                "median_abs": statistics.median(abs(e) for e in errors),
                "worst": errors[worst],
                "worst_at": f"{'+'.join(row['dnns'])} {row['objective']} {label}"}
    return out


def summary_lines(report: Mapping[str, Any]) -> List[str]:
    """One line per objective (and all): the errors with and without the contention model."""
    lines = []
    for scope, entry in report["summary"].items():
        with_model, flat = entry["error"], entry["error_no_contention"]
        lines.append(
            f"{scope} ({entry['schedules']} schedules): median |error| "
            f"{_pct(with_model['median_abs'], False)}, worst {_pct(with_model['worst'])} "
            f"({with_model['worst_at']}); without contention: median |error| "
            f"{_pct(flat['median_abs'], False)}, worst {_pct(flat['worst'])} "
            f"({flat['worst_at']})")
    return lines


#: Column headers of a row's table (markdown, rich and plain text share them).
COLUMNS = ("schedule", "K", "latency pred (ms)", "no-cont. (ms)", "measured (ms)",
           "frame-sets/s pred", "no-cont.", "measured", "run mean", "error", "error no-cont.")


def table_cells(row: Mapping[str, Any]) -> List[List[str]]:
    """The cells of a row's table: one line per schedule, in COLUMNS order."""
    cells = []
    for label, e in row["schedules"].items():
        lat, per = e["measured"]["latency_ms"], e["measured"]["ms_per_frame_set"]
        fps_spread = f"{1e3 / per['max']:.1f}-{1e3 / per['min']:.1f}"
        name = label if e.get("same_as") is None else f"{label} (= {e['same_as']})"
        # the run's average, stalls included (absent from reports written before it)
        run_mean = e["measured"].get("mean_ms_per_frame_set")
        cells.append([
            name, str(e["transitions"]),
            f"{e['predicted']['latency_ms']:.2f}",
            f"{e['predicted_no_contention']['latency_ms']:.2f}",
            f"{lat['median']:.2f} ({lat['min']:.2f}-{lat['max']:.2f})",
            f"{e['predicted']['frame_sets_per_s']:.1f}",
            f"{e['predicted_no_contention']['frame_sets_per_s']:.1f}",
            f"{e['measured']['frame_sets_per_s']:.1f} ({fps_spread})",
            "-" if run_mean is None else f"{1e3 / run_mean['median']:.1f}",
            _pct(e["error"]["objective"]), _pct(e["error_no_contention"]["objective"])])
    return cells


def verdict(row: Mapping[str, Any]) -> str:
    if "best_baseline" not in row:
        return ""
    if row["tie"]:
        return (f"HaX-CoNN vs the best measured baseline ({row['best_baseline']}): a tie "
                f"(inside the spread; {_pct(row['gain_over_best_baseline'])}).")
    return (f"HaX-CoNN vs the best measured baseline ({row['best_baseline']}): "
            f"{_pct(row['gain_over_best_baseline'])} (positive: HaX-CoNN is faster).")


def row_title(row: Mapping[str, Any]) -> str:
    extra = (f", {row['frames_in_flight']} frame-sets in flight"
             if row["objective"] == "throughput" else "")
    return f"{' + '.join(row['dnns'])}, {row['objective']}{extra}"


def markdown(report: Mapping[str, Any], chart: Optional[str] = None) -> str:
    """The report as a markdown page (docs/bench/validate-<backend>.md)."""
    backend = report["backend"]
    lines = [f"# Validation: predicted vs measured on {backend.get('backend', '?')}", "",
             f"Command: `{report['command']}`  ",
             f"Date: {report['date']}; machine: {report['machine']}{_load(report)}  ",
             f"Backend: {json.dumps(backend)}  ",
             f"Profile: `{report['profile']}` (sha256 {report['profile_sha256'][:12]}...); "
             f"{report['rounds']} interleaved rounds of {report['frames_per_round']} frame-sets "
             f"per schedule after {report['warmup']} warm-up, the same frames for all.", "",
             "Measured: per round the median frame-set latency and the time per frame-set, "
             "through the runtime's executors in the schedule's own mode (latency: one "
             "frame-set at a time; throughput: frame-sets in flight); the median over rounds "
             "and the spread (min-max). Predicted: the simulator on the profile; no-cont.: the "
             "same without contention (every slowdown 1). Error: (predicted - measured) / "
             "measured of the objective's figure (latency, or time per frame-set). K: "
             "transitions.", "", "## Summary", ""]
    lines += [f"- {line}" for line in summary_lines(report)] + [""]
    for row in report["rows"]:
        lines += [f"## {row_title(row)}", "", "| " + " | ".join(COLUMNS) + " |",
                  "|" + " --- |" * len(COLUMNS)]
        lines += ["| " + " | ".join(cells) + " |" for cells in table_cells(row)]
        lines += ["", verdict(row), ""]
    if chart:
        lines += [f"Chart: `{chart}`.", ""]
    return "\n".join(lines)


def write_report(report: Mapping[str, Any], stem: Union[str, Path]) -> List[Path]:
    """``stem``.json and ``stem``.md (JSON with NaN as null); the paths written."""
    from hax_conn_core.files import atomic_write

    stem = Path(stem)
    json_path, md_path = stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".md")
    try:
        atomic_write(json_path, (json.dumps(finite_for_json(report), indent=2) + "\n").encode())
        atomic_write(md_path, markdown(report, chart=stem.name + ".png").encode())
    except OSError as exc:
        raise ConfigError(f"{stem}: cannot write the report: {exc.strerror or exc}") from None
    return [json_path, md_path]


def load_report(path: Union[str, Path]) -> Dict[str, Any]:
    """A report written by ``write_report``, checked enough to be drawn (ConfigError)."""
    r = Reader(str(path), ConfigError)
    top = r.obj(load_json(path, ConfigError, "validation report"), "",
                "a JSON object with keys format, rows, summary")
    r.format_tag(top, REPORT_FORMAT, _FAMILY)
    for key in ("command", "date", "machine", "profile", "profile_sha256"):
        r.string(r.required(top, key, ""), key)
    r.obj(r.required(top, "backend", ""), "backend")
    for key in ("rounds", "frames_per_round", "warmup"):
        r.integer(r.required(top, key, ""), key, minimum=0)
    rows = r.lst(r.required(top, "rows", ""), "rows", "a non-empty list", non_empty=True)
    for i, row in enumerate(rows):
        at = join("rows", i)
        r.obj(row, at)
        r.lst(r.required(row, "dnns", at), join(at, "dnns"))
        r.string(r.required(row, "objective", at), join(at, "objective"))
        for label, entry in r.obj(r.required(row, "schedules", at), join(at, "schedules")
                                  ).items():
            e_at = join(join(at, "schedules"), label)
            r.obj(entry, e_at)
            for key in ("predicted", "predicted_no_contention"):
                for figure in ("latency_ms", "frame_sets_per_s"):
                    r.number(r.required(r.obj(r.required(entry, key, e_at), join(e_at, key)),
                                        figure, join(e_at, key)), join(join(e_at, key), figure))
            r.integer(r.required(entry, "transitions", e_at), join(e_at, "transitions"),
                      minimum=0)
            for key in ("error", "error_no_contention"):
                errors = r.obj(r.required(entry, key, e_at), join(e_at, key))
                r.number(r.required(errors, "objective", join(e_at, key)),
                         join(join(e_at, key), "objective"))
            measured = r.obj(r.required(entry, "measured", e_at), join(e_at, "measured"))
            r.number(r.required(measured, "frame_sets_per_s", join(e_at, "measured")),
                     join(join(e_at, "measured"), "frame_sets_per_s"))
            for figure in ("latency_ms", "ms_per_frame_set"):
                stats = r.obj(r.required(measured, figure, join(e_at, "measured")),
                              join(join(e_at, "measured"), figure))
                for key in ("median", "min", "max"):
                    r.number(r.required(stats, key, join(join(e_at, "measured"), figure)),
                             join(join(join(e_at, "measured"), figure), key))
    top["summary"] = summarize_errors(rows)  # recomputed: the rows are the record
    return top


def _load(report: Mapping[str, Any]) -> str:
    load = report.get("machine_load") or {}
    if load.get("load_1m_after") is None:
        return ""
    before = load.get("load_1m_before")
    return (f", {load.get('cores')} cores, load average "
            f"{'' if before is None else f'{before:.2f} before, '}{load['load_1m_after']:.2f} "
            "after")


def _pct(value: float, signed: bool = True) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * value:+.1f}%" if signed else f"{100 * value:.1f}%"

"""The validation chart: per DNN set and objective, latency (top) and frame-sets/s (bottom)
of every schedule, predicted with the contention model, without it, and measured (the spread
over rounds as an error bar). matplotlib is imported here only: the measuring machine may
not have it, and the chart can be drawn later from the report's JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Union

from hax_conn_core.errors import SetupError

_BARS = (("predicted", "predicted", "tab:blue"),
         ("predicted_no_contention", "no contention", "tab:gray"),
         ("measured", "measured", "tab:red"))


def draw_report(report: Mapping[str, Any], path: Union[str, Path]) -> Path:
    """Write the chart of ``report`` to ``path`` (PNG); SetupError without matplotlib."""
    try:
        import matplotlib
    except ImportError as exc:
        raise SetupError(f"drawing {path} needs matplotlib ({exc}); draw it later with "
                         "'hax-conn validate --from-json R.json'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["rows"]
    fig, axes = plt.subplots(2, len(rows), figsize=(3.6 * len(rows) + 0.6, 6.4),
                             squeeze=False)
    for column, row in enumerate(rows):
        labels = list(row["schedules"])
        for line, (figure, unit) in enumerate((("latency_ms", "latency (ms)"),
                                               ("frame_sets_per_s", "frame-sets/s"))):
            ax = axes[line][column]
            width = 0.8 / len(_BARS)
            for b, (key, name, color) in enumerate(_BARS):
                values, low, high = [], [], []
                for label in labels:
                    entry = row["schedules"][label]
                    value, lo, hi = _value(entry, key, figure)
                    values.append(value)
                    low.append(value - lo)
                    high.append(hi - value)
                xs = [i + (b - 1) * width for i in range(len(labels))]
                ax.bar(xs, values, width, color=color, label=name,
                       yerr=[low, high] if key == "measured" else None, capsize=2)
            ax.set_xticks(range(len(labels)))
            ax.set_xticklabels(labels, rotation=40, ha="right", fontsize=7)
            ax.tick_params(axis="y", labelsize=7)
            if column == 0:
                ax.set_ylabel(unit, fontsize=8)
            if line == 0:
                ax.set_title(f"{'+'.join(row['dnns'])}\n{row['objective']}", fontsize=8)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper center", ncol=len(_BARS), fontsize=7,
               bbox_to_anchor=(0.5, 0.95), frameon=False)
    backend = report["backend"].get("backend", "?")
    fig.suptitle(f"predicted vs measured on {backend} (measured: median, min-max over "
                 f"{report['rounds']} rounds)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    path = Path(path)
    try:
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise SetupError(f"{path}: cannot write the chart: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    return path


def _value(entry: Mapping[str, Any], key: str, figure: str):
    """(value, low, high) of one bar: predictions have no spread; the measured frame-sets/s
    spread comes from the time per frame-set's."""
    if key != "measured":
        value = entry[key][figure]
        return value, value, value
    measured = entry["measured"]
    if figure == "latency_ms":
        stats = measured["latency_ms"]
        return stats["median"], stats["min"], stats["max"]
    per = measured["ms_per_frame_set"]
    return measured["frame_sets_per_s"], 1e3 / per["max"], 1e3 / per["min"]

"""A Gantt chart of a simulated schedule: one row per accelerator, contention shaded.

Each bar is one group run, coloured by DNN and labelled ``dnn[group]``; the part of a run that
was slowed by contention (``S > 1`` in its ``slowdown_segments``) is hatched, darker for a
larger slowdown. Transition delays show as gaps. matplotlib (Agg backend, no display needed) is
imported only here, when a chart is drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from hax_conn_core.errors import ConfigError
from hax_conn_core.profile import Profile
from hax_conn_core.schedule import Schedule

#: Throughput charts show the first few frame-sets only.
FRAME_SETS_SHOWN = 3


def draw_gantt(profile: Profile, schedule: Schedule, path: Union[str, Path],
               title: Optional[str] = None) -> Path:
    """Simulate ``schedule`` and write its Gantt chart to ``path`` (format from the suffix).

    Raises ConfigError when the file cannot be written. Returns the path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from hax_conn_core.simulator import simulate

    result = simulate(profile, schedule)
    accs = list(profile.device.accelerators)
    names = list(schedule.assignments)
    colours = plt.get_cmap("tab10")
    colour = {name: colours(k % 10) for k, name in enumerate(names)}
    runs = [r for r in result.runs if r.frame < FRAME_SETS_SHOWN]
    max_s = max([s for r in runs for _, _, s in r.slowdown_segments] + [1.0])
    span = max([r.finish_ms for r in runs] + [1e-9])

    fig, ax = plt.subplots(figsize=(12, 1.2 + 0.9 * len(accs)))
    for run in runs:
        row = len(accs) - 1 - accs.index(run.accelerator)
        width = run.finish_ms - run.start_ms
        ax.broken_barh([(run.start_ms, width)], (row - 0.35, 0.7),
                       facecolors=colour[run.dnn], edgecolors="black", linewidth=0.5)
        for t0, t1, s in run.slowdown_segments:
            if s > 1.0 + 1e-9:
                shade = 0.15 + 0.6 * (s - 1.0) / max(max_s - 1.0, 1e-9)
                ax.broken_barh([(t0, t1 - t0)], (row - 0.35, 0.7), facecolors=(0, 0, 0, shade),
                               hatch="///", edgecolors="none")
        label = f"{run.dnn}[{run.group}]" if schedule.objective == "latency" \
            else f"{run.dnn}[{run.group}]#{run.frame}"
        if width > 0.012 * span:
            ax.text(run.start_ms + width / 2, row, label, ha="center", va="center",
                    fontsize=6, rotation=90 if width < 0.06 * span else 0,
                    bbox={"facecolor": "white", "alpha": 0.7, "pad": 0.6, "edgecolor": "none"})
    ax.set_yticks(range(len(accs)))
    ax.set_yticklabels([a.upper() for a in reversed(accs)])
    ax.set_xlabel("time (ms)")
    what = ("latency" if schedule.objective == "latency" else "time per frame-set")
    ax.set_title(title or f"{' + '.join(names)}: predicted {what} "
                          f"{result.predicted_ms:.3f} ms")
    handles = [Patch(facecolor=colour[n], edgecolor="black", label=n) for n in names]
    handles.append(Patch(facecolor=(0, 0, 0, 0.4), hatch="///", label="slowed by contention"))
    below = -0.35 if len(accs) < 3 else -0.25
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, below),
              ncol=len(handles), fontsize=8, frameon=False)
    ax.grid(axis="x", linestyle=":", linewidth=0.5)
    fig.tight_layout()
    out = Path(path)
    try:
        fig.savefig(out, dpi=150)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--plot {out}: cannot write the chart: {exc}") from None
    finally:
        plt.close(fig)
    return out

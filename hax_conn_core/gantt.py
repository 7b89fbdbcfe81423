"""A Gantt chart of a simulated schedule: one row per accelerator, contention hatched.

Each bar is one group run, filled with its DNN's colour and labelled ``dnn[group]`` (``#k``:
frame-set ``k``); a bar too narrow for its label carries it above the bar, so that every run is
named. The part of a run slowed by contention (``S > 1`` in its ``slowdown_segments``) is
hatched over the colour, denser for a larger slowdown; the colour stays visible. Transition
delays show as gaps. A throughput chart shows the stream's first frame-sets from time 0 (the
warm-up included) and marks when each finishes; its title says so and gives the steady-state
time per frame-set. matplotlib (Agg backend, no display needed) is imported only here, when a
chart is drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from hax_conn_core.errors import ConfigError
from hax_conn_core.profile import Profile
from hax_conn_core.schedule import Schedule

#: Throughput charts show the first few frame-sets only.
FRAME_SETS_SHOWN = 3

#: Hatch patterns from light to heavy slowdown.
_HATCHES = ("/", "//", "///", "xxx")


def chart_path(path: Union[str, Path]) -> Path:
    """The file a chart asked for as ``path`` is written to; ConfigError if there is none.

    No suffix: ``.png`` is added (as matplotlib does). A directory, a missing parent directory
    or a suffix matplotlib cannot write is refused, naming what to give instead.
    """
    text = str(path)
    out = Path(text)
    if text.endswith(("/", "\\")) or out.is_dir():
        raise ConfigError(f"--plot {text}: is a directory; expected a chart file name, e.g. "
                          f"{out / 'gantt.png'}")
    if not out.suffix:
        out = out.with_name(out.name + ".png")
    else:
        from matplotlib.backend_bases import FigureCanvasBase

        formats = FigureCanvasBase.get_supported_filetypes()
        if out.suffix[1:].lower() not in formats:
            raise ConfigError(f"--plot {text}: unknown image format {out.suffix!r}; expected "
                              f"one of {', '.join('.' + f for f in sorted(formats))}")
    parent = out.parent
    if not parent.is_dir():
        raise ConfigError(f"--plot {text}: the directory {parent} does not exist")
    return out


def draw_gantt(profile: Profile, schedule: Schedule, path: Union[str, Path],
               title: Optional[str] = None) -> Path:
    """Simulate ``schedule`` and write its Gantt chart; returns the path actually written.

    The format comes from the suffix (none: ``.png`` is added, see ``chart_path``). Raises
    ConfigError when the file cannot be written.
    """
    out = chart_path(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from hax_conn_core.simulator import simulate

    result = simulate(profile, schedule)
    accs = list(profile.device.accelerators)
    names = list(schedule.assignments)
    throughput = schedule.objective != "latency"
    colours = plt.get_cmap("tab10")
    colour = {name: colours(k % 10) for k, name in enumerate(names)}
    runs = [r for r in result.runs if r.frame < FRAME_SETS_SHOWN]
    max_s = max([s for r in runs for _, _, s in r.slowdown_segments] + [1.0])
    span = max([r.finish_ms for r in runs] + [1e-9])

    fig, ax = plt.subplots(figsize=(12, 1.6 + 1.3 * len(accs)))
    height = 0.5
    for run in runs:
        row = len(accs) - 1 - accs.index(run.accelerator)
        width = run.finish_ms - run.start_ms
        ax.broken_barh([(run.start_ms, width)], (row - height / 2, height),
                       facecolors=colour[run.dnn], edgecolors="black", linewidth=0.5)
        for t0, t1, s in run.slowdown_segments:
            if s > 1.0 + 1e-9:
                level = (s - 1.0) / max(max_s - 1.0, 1e-9)
                hatch = _HATCHES[min(int(level * len(_HATCHES)), len(_HATCHES) - 1)]
                ax.broken_barh([(t0, t1 - t0)], (row - height / 2, height), facecolors="none",
                               hatch=hatch, edgecolors=(0, 0, 0, 0.55), linewidth=0)
        label = f"{run.dnn}[{run.group}]" + (f"#{run.frame}" if throughput else "")
        box = {"facecolor": "white", "alpha": 0.8, "pad": 0.6, "edgecolor": "none"}
        if width >= 0.07 * span:
            ax.text(run.start_ms + width / 2, row, label, ha="center", va="center",
                    fontsize=6, bbox=box)
        else:  # narrow: the label stands above the bar
            ax.text(run.start_ms + width / 2, row + height / 2 + 0.02, label, ha="center",
                    va="bottom", fontsize=5, rotation=90, bbox=box)
    if throughput:
        for k, finish in enumerate(result.frame_set_finish_ms[:FRAME_SETS_SHOWN]):
            ax.axvline(finish, color="grey", linestyle="--", linewidth=0.8)
            ax.text(finish, -0.58, f" #{k} done", fontsize=6, color="grey", va="bottom")
    ax.set_ylim(-0.6, len(accs) + 0.1)
    ax.set_yticks(range(len(accs)))
    ax.set_yticklabels([a.upper() for a in reversed(accs)])
    ax.set_xlabel("time (ms)")
    if title is None:
        if throughput:
            title = (f"{' + '.join(names)}: predicted time per frame-set "
                     f"{result.predicted_ms:.3f} ms (steady state, "
                     f"{schedule.frames_in_flight} in flight)\n"
                     f"shown: the first {FRAME_SETS_SHOWN} frame-sets of the stream from time "
                     f"0, warm-up included, so the axis runs past one period")
        else:
            title = f"{' + '.join(names)}: predicted latency {result.predicted_ms:.3f} ms"
    ax.set_title(title, fontsize=9)
    handles = [Patch(facecolor=colour[n], edgecolor="black", label=n) for n in names]
    handles.append(Patch(facecolor="white", edgecolor=(0, 0, 0, 0.55), hatch="///",
                         label="slowed by contention (denser: slower)"))
    below = -0.3 if len(accs) < 3 else -0.22
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, below),
              ncol=len(handles), fontsize=8, frameon=False)
    ax.grid(axis="x", linestyle=":", linewidth=0.5)
    fig.tight_layout()
    try:
        fig.savefig(out, dpi=150)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--plot {out}: cannot write the chart: {exc}") from None
    finally:
        plt.close(fig)
    return out

"""``hax-conn graph``: a DNN's layers, layer groups and valid cut points."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, TextIO, Tuple

from hax_conn_core.cli.base import Command, add_json_option
from hax_conn_core.errors import ConfigError

JSON_FORMAT = "hax-conn-graph/1"
#: Progress on stderr appears once a run has lasted this long (at once on a terminal).
PROGRESS_AFTER_S = 1.0
#: Above this many layers the layer table is printed as plain aligned text: rich lays out
#: about 2,000 rows a second, which for 160,000 layers would take over a minute.
RICH_TABLE_LIMIT = 2000


class Progress:
    """What ``hax-conn graph`` is doing, on ``stream`` (stderr), for long runs only.

    On a terminal: one status line, rewritten in place with the elapsed time (a background
    thread ticks every quarter second) and cleared at the end. Elsewhere (a pipe, a log
    file): nothing during the first ``after_s`` seconds; after that one line per stage as it
    begins, and a last line with the total time. Never on stdout, so ``--json`` stays clean.
    """

    def __init__(self, stream: TextIO, after_s: float = PROGRESS_AFTER_S,
                 tty: Optional[bool] = None):
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.after_s = after_s
        self.started = time.monotonic()
        self.stage = ""
        self.shown = False  # anything written yet
        self._printed_stage = ""
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._tick, name="hax-conn-progress",
                                        daemon=True)
        self._thread.start()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def set(self, stage: str) -> None:
        """Start a new stage (a short phrase: "reading x.prototxt (12.0 MB)")."""
        with self._lock:
            self.stage = stage
            self._show()

    def close(self) -> None:
        """Stop the ticker; clear the status line (terminal) or write the total time."""
        self._done.set()
        self._thread.join()
        with self._lock:
            elapsed = time.monotonic() - self.started
            if self.tty and self.shown:
                self.stream.write("\r\x1b[K")
            elif self.shown:
                self.stream.write(f"hax-conn graph: done in {elapsed:.1f} s\n")
            self.stream.flush()

    def _tick(self) -> None:
        while not self._done.wait(0.25):
            with self._lock:
                self._show()

    def _show(self) -> None:
        elapsed = time.monotonic() - self.started
        if not self.stage:
            return
        if self.tty:
            self.stream.write(f"\r\x1b[Khax-conn graph: {self.stage} ... {elapsed:.0f} s")
            self.shown = True
        elif elapsed >= self.after_s and self._printed_stage != self.stage:
            self.stream.write(f"hax-conn graph: {self.stage} ... ({elapsed:.1f} s so far)\n")
            self._printed_stage = self.stage
            self.shown = True
        else:
            return
        self.stream.flush()


def resolve_model(name: str) -> Tuple[str, Path]:
    """(model id, model file) for a registered DNN id or a .prototxt / .onnx path."""
    from hax_conn_core.graph.resolve import resolve_model as resolve

    source = resolve(name)
    return source.id, source.path


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--model PATH`` (repeatable) and ``--input-shape [DNN=]SHAPE`` (repeatable)."""
    parser.add_argument("--model", action="append", default=[], metavar="PATH", dest="model_paths",
                        help="a user's model: .onnx, or .prototxt (seeded weights unless "
                             "--weights); named by its file stem, lowercased; repeatable")
    parser.add_argument("--input-shape", action="append", default=[], metavar="[DNN=]NxCxHxW",
                        help="input shape of a dynamic ONNX model (e.g. 1x3x640x640, or "
                             "yolo=1x3x640x640 with several models); repeatable")


def input_shapes(items: Sequence[str]) -> Dict[Optional[str], Tuple[int, ...]]:
    """``--input-shape`` values: DNN id (None for one without ``DNN=``) -> shape."""
    from hax_conn_core.graph.frontends.onnx.reader import parse_input_shape

    shapes: Dict[Optional[str], Tuple[int, ...]] = {}
    for item in items:
        name, _, shape = item.rpartition("=")
        shapes[name.strip() or None] = parse_input_shape(shape.strip())
    return shapes


def register_cli_models(names: Sequence[str], shape_items: Sequence[str] = ()) -> List[str]:
    """Model ids for ``names`` (ids or paths); each path is registered (graph.resolve) so
    that later lookups by its id find the file, with its ``--input-shape`` if any."""
    from hax_conn_core.graph.resolve import is_model_path, register_model
    from hax_conn_core.models import normalise_model_id

    shapes = input_shapes(shape_items)
    ids = []
    for name in names:
        if not is_model_path(name):
            ids.append(name)
            continue
        stem = normalise_model_id(Path(name).stem)
        shape = shapes.get(stem, shapes.get(None) if name.lower().endswith(".onnx") else None)
        ids.append(register_model(name, input_shape=shape).id)
    unknown = sorted(set(k for k in shapes if k is not None) - set(ids))
    if unknown:
        raise ConfigError(f"--input-shape for {', '.join(unknown)}, which is not one of the "
                          f"models given ({', '.join(ids)})")
    return ids


class GraphCommand(Command):
    """Show a DNN's layers, layer groups and valid cut points.

    MODEL is a registered DNN id (e.g. googlenet) or a Caffe prototxt path. Layers are listed
    with their index (the one profiles and schedules use), output shape, parameters and MFLOPs;
    then the FLOP-balanced layer groups, whether the device's DLA can run each, and every valid
    cut. Example: hax-conn graph googlenet --groups 10 --device xavier-agx
    """

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("model", metavar="MODEL", nargs="?",
                            help="registered DNN id or path to a .prototxt or .onnx file "
                                 "(or give --model PATH)")
        add_model_options(parser)
        parser.add_argument("--groups", type=int, default=10, metavar="N",
                            help="target number of layer groups (default: 10)")
        parser.add_argument("--device", default="xavier-agx", metavar="DEVICE",
                            help="device description id in config/devices or a .yaml path, "
                                 "for the DLA rules (default: xavier-agx)")
        parser.add_argument("--dtype-bytes", type=int, default=4, metavar="B",
                            help="element size for bytes moved (default: 4, fp32)")
        add_json_option(parser)

    def run(self, args: argparse.Namespace) -> int:
        from hax_conn_core.graph.capabilities import resolve_device
        from hax_conn_core.graph.cuts import cut_report
        from hax_conn_core.graph.grouping import group_layers
        from hax_conn_core.graph.resolve import resolve_model as resolve

        if args.groups < 1:
            raise ConfigError(f"--groups {args.groups}; expected an integer >= 1")
        if args.dtype_bytes < 1:
            raise ConfigError(f"--dtype-bytes {args.dtype_bytes}; expected >= 1")
        names = ([args.model] if args.model else []) + args.model_paths
        if not names:
            raise ConfigError("the following arguments are required: MODEL (an id or a path; "
                              "or --model PATH)")
        if len(names) > 1:
            raise ConfigError(f"{len(names)} models given ({', '.join(names)}); expected one "
                              "(MODEL or --model PATH)")
        shape = input_shapes(args.input_shape)
        given = shape.get(None) or next(iter(shape.values()), None)
        source = resolve(names[0], input_shape=given)
        model_id, path = source.id, source.path
        with Progress(sys.stderr) as progress:
            progress.set(f"reading {path} ({_size_text(path)})")
            graph = source.load_graph() if source.frontend == "onnx" else \
                _load_prototxt(path)
            device = resolve_device(args.device)
            dla = device.accelerator("dla")
            progress.set(f"grouping {len(graph.layers):,} layers")
            groups = group_layers(graph, args.groups, device)
            progress.set(f"finding the valid cuts of {len(graph.layers):,} layers")
            report = cut_report(graph)
            progress.set("writing the report")
            document = _document(model_id, path, graph, groups, report, device, dla,
                                 args.dtype_bytes)
            if args.json:
                json.dump(document, sys.stdout, indent=1)
                sys.stdout.write("\n")
            else:
                _print_tables(document)
            sys.stdout.flush()
        return 0


def _load_prototxt(path: Path):
    """A prototxt named as the file (``hax-conn graph`` shows the file's own name)."""
    from hax_conn_core.graph.prototxt import load_prototxt

    return load_prototxt(path)


def _size_text(path: Path) -> str:
    try:
        size = path.stat().st_size
    except OSError:
        return "size unknown"
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"


def _document(model_id, path, graph, groups, report, device, dla, dtype_bytes) -> Dict[str, Any]:
    from hax_conn_core.graph.grouping import group_costs

    stats = graph.layer_stats(dtype_bytes)
    group_by_layer = {}
    for group in groups:
        for index in range(group.first, group.last + 1):
            group_by_layer[index] = group.index
    layers = []
    for layer, cost, (_, valid, crossing, _) in zip(graph.layers, stats, report):
        reason = dla.check(graph, layer)
        layers.append({
            "index": layer.index, "name": layer.name, "type": layer.type,
            "bottoms": list(layer.bottoms), "tops": list(layer.tops),
            "output_shape": list(graph.tensors[layer.tops[0]].shape),
            "params": cost.params, "flops": cost.flops, "weight_bytes": cost.weight_bytes,
            "activation_bytes_in": cost.activation_bytes_in,
            "activation_bytes_out": cost.activation_bytes_out,
            "in_place": layer.in_place, "fused": layer.fused,
            "group": group_by_layer.get(layer.index),
            "cut_after_valid": valid, "dla_unsupported": reason,
        })
    return {
        "format": JSON_FORMAT,
        "model": model_id,
        "name": graph.name,
        "prototxt": str(path),  # the model file (.prototxt or .onnx): the key predates ONNX
        "frontend": graph.frontend,
        "device": device.id,
        "dtype_bytes": dtype_bytes,
        "inputs": {name: list(graph.tensors[name].shape) for name in graph.inputs},
        "outputs": {name: list(graph.tensors[name].shape) for name in graph.outputs},
        "totals": {"layers": len(graph.layers), "params": sum(s.params for s in stats),
                   "flops": sum(s.flops for s in stats),
                   "bytes_moved": sum(s.bytes_moved for s in stats)},
        "layers": layers,
        "groups": [{"index": g.index, "first": g.first, "last": g.last, "flops": g.flops,
                    "dla_ok": g.dla_ok, "params": c.params, "weight_bytes": c.weight_bytes,
                    "bytes_moved": c.bytes_moved, "input_bytes": c.input_bytes,
                    "output_bytes": c.output_bytes,
                    "cut_tensor": report[g.last][2][0] if g.last < len(graph.layers) - 1
                    else None} for g, c in zip(groups, group_costs(graph, groups, dtype_bytes))],
        "valid_cuts": [{"after": i, "tensor": crossing[0]}
                       for i, valid, crossing, _ in report if valid],
    }


def _print_tables(doc: Dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # piped or redirected: do not squeeze the tables to 80 columns
        console = Console(width=max(console.width, 150))
    totals = doc["totals"]
    console.print(f"[bold]{doc['name']}[/bold] ({doc['model']}, {doc['prototxt']}): "
                  f"{totals['layers']} layers, {totals['params']:,} parameters, "
                  f"{totals['flops'] / 1e9:.2f} GFLOPs; inputs "
                  + ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in doc["inputs"].items()))
    rows = [(str(layer["index"]), layer["name"], layer["type"],
             "x".join(map(str, layer["output_shape"])), f"{layer['params']:,}",
             f"{layer['flops'] / 1e6:.1f}", str(layer["group"]),
             "yes" if layer["cut_after_valid"] else "",
             "no" if layer["dla_unsupported"] else "yes") for layer in doc["layers"]]
    header = ("#", "name", "type", "output", "params", "MFLOPs", "grp", "cut", "DLA")
    if len(rows) > RICH_TABLE_LIMIT:
        _print_plain_table("Layers", header, rows, right=(0, 4, 5, 6))
    else:
        layers = Table(title="Layers", show_lines=False)
        layers.add_column("#", justify="right", no_wrap=True)
        layers.add_column("name", overflow="fold", min_width=16)
        layers.add_column("type", no_wrap=True, min_width=12)
        layers.add_column("output", no_wrap=True)
        layers.add_column("params", justify="right", no_wrap=True)
        layers.add_column("MFLOPs", justify="right", no_wrap=True)
        layers.add_column("grp", justify="right", no_wrap=True)
        layers.add_column("cut", justify="center", no_wrap=True)
        layers.add_column("DLA", justify="center", no_wrap=True)
        for row in rows:
            layers.add_row(*row)
        console.print(layers)
    groups = Table(title=f"Layer groups (DLA rules of {doc['device']})")
    for column, justify in (("group", "right"), ("layers", "left"), ("count", "right"),
                            ("GFLOPs", "right"), ("DLA", "center"), ("cut tensor", "left")):
        groups.add_column(column, justify=justify)
    for group in doc["groups"]:
        groups.add_row(str(group["index"]), f"{group['first']}-{group['last']}",
                       str(group["last"] - group["first"] + 1), f"{group['flops'] / 1e9:.3f}",
                       "yes" if group["dla_ok"] else "GPU only", group["cut_tensor"] or "-")
    console.print(groups)
    cuts = doc["valid_cuts"]
    lines = [f"Valid cuts ({len(cuts)}), after layer: "
             + ", ".join(str(c["after"]) for c in cuts)]
    blocked = [layer for layer in doc["layers"] if layer["dla_unsupported"]]
    for layer in blocked:
        lines.append(f"DLA cannot run layer {layer['index']} {layer['name']!r}: "
                     f"{layer['dla_unsupported']}")
    # Plain writes: no markup to interpret in layer names, and fast for long lists.
    sys.stdout.write("\n".join(lines) + "\n")


def _print_plain_table(title: str, header: Tuple[str, ...], rows: List[Tuple[str, ...]],
                       right: Tuple[int, ...]) -> None:
    """Columns aligned with spaces, one line per row: linear in the rows."""
    widths = [max(len(header[c]), max((len(row[c]) for row in rows), default=0))
              for c in range(len(header))]

    def line(cells) -> str:
        return "  ".join(cell.rjust(w) if c in right else cell.ljust(w)
                         for c, (cell, w) in enumerate(zip(cells, widths))).rstrip()

    out = [title, line(header), "  ".join("-" * w for w in widths)]
    out.extend(line(row) for row in rows)
    sys.stdout.write("\n".join(out) + "\n")

"""Grouping and cut analysis at scale: the same answers as the plain quadratic definitions, on
generated nets of every class (chains, residual nets, dense blocks, long-lived tensors,
unsupported layers), and large generated prototxts through the real command.

No timing is asserted (speed lives in bench/bench_graph.py, docs/bench-graph.md); the large
inputs here are sizes the quadratic code could not finish within the test's generous limit.
"""

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, HealthCheck, settings, strategies as st

from hax_conn_core.cli.graph import Progress
from hax_conn_core.graph.cuts import CROSSING_LISTED, crossing_tensors, cut_report, valid_cuts
from hax_conn_core.graph.grouping import _balanced_split, group_layers
from hax_conn_core.graph.prototxt import parse_prototxt

from . import nets
from .big_nets import chain_prototxt, residual_layer_count, residual_prototxt

REPO = Path(__file__).resolve().parents[3]
_SETTINGS = settings(max_examples=150, derandomize=True, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])


def quadratic_split(units, groups, forced=frozenset()):
    """The definition: for every j, try every i (the code before the divide and conquer)."""
    from hax_conn_core.graph.grouping import _min_max

    n = len(units)
    limit = _min_max(units, groups, forced)
    prefix = [0]
    for value in units:
        prefix.append(prefix[-1] + value)
    floor = [0] * (n + 1)
    for j in range(1, n + 1):
        floor[j] = j - 1 if (j - 1) in forced else floor[j - 1]
    inf = float("inf")
    cost = [[inf] * (n + 1) for _ in range(groups + 1)]
    back = [[-1] * (n + 1) for _ in range(groups + 1)]
    cost[0][0] = 0
    for g in range(1, groups + 1):
        for j in range(g, n - (groups - g) + 1):
            best, best_i = inf, -1
            for i in range(max(g - 1, floor[j]), j):
                size = prefix[j] - prefix[i]
                if cost[g - 1][i] == inf or size > limit:
                    continue
                value = cost[g - 1][i] + size * size
                if value < best:
                    best, best_i = value, i
            cost[g][j], back[g][j] = best, best_i
    ends, j = [], n
    for g in range(groups, 0, -1):
        ends.append(j)
        j = back[g][j]
    return ends[::-1]


@st.composite
def split_problems(draw):
    n = draw(st.integers(min_value=2, max_value=40))
    # Small values make ties common; zeros (ReLU-only units) too.
    units = draw(st.lists(st.integers(min_value=0, max_value=draw(st.sampled_from([3, 50,
                                                                                   10**9]))),
                          min_size=n, max_size=n))
    if max(units) == 0:
        units[0] = 1
    forced = frozenset(draw(st.sets(st.integers(min_value=1, max_value=n - 1), max_size=4)))
    groups = draw(st.integers(min_value=len(forced) + 1, max_value=n))
    return units, groups, forced


@_SETTINGS
@given(split_problems())
def test_divide_and_conquer_split_equals_the_quadratic_definition(problem):
    units, groups, forced = problem
    ends = _balanced_split(units, groups, forced)
    assert ends == quadratic_split(units, groups, forced)
    assert len(ends) == groups and ends[-1] == len(units)
    assert all(f in ends for f in forced)


# --- cuts against their definition ------------------------------------------------------------

def definition_crossing(graph):
    """Per i, the tensors produced at <= i (inputs: -1) and read (or delivered) after i."""
    count = len(graph.layers)
    produced = {name: -1 for name in graph.inputs}
    for layer in graph.layers:
        for top in layer.tops:
            produced[top] = layer.index
    out = []
    for i in range(count):
        crossing = []
        for tensor, start in produced.items():
            readers = [layer.index for layer in graph.layers if tensor in layer.bottoms]
            late = any(r > i for r in readers) or (tensor in graph.outputs and i < count)
            if start <= i and late:
                crossing.append(tensor)
        out.append(crossing)
    return out


@st.composite
def random_dags(draw):
    """A prototxt: Input, then convolutions / in-place ReLUs / Eltwise sums / Concats over
    earlier tensors (skips of any length), so that many tensors may cross a cut."""
    text = nets.input_layer(shape=(1, 4, 4, 4))
    tensors = ["data"]
    for k in range(draw(st.integers(min_value=1, max_value=25))):
        kind = draw(st.sampled_from(["conv", "conv", "relu", "sum", "concat"]))
        pick = draw(st.integers(min_value=0, max_value=len(tensors) - 1))
        if kind == "relu" and tensors[pick] != "data":
            text += nets.relu(f"r{k}", tensors[pick])
            continue
        if kind in ("sum", "concat") and len(tensors) > 1:
            other = draw(st.integers(min_value=0, max_value=len(tensors) - 1))
            if other != pick:
                layer_type = "Eltwise" if kind == "sum" else "Concat"
                text += nets.layer(f"m{k}", layer_type, [tensors[pick], tensors[other]],
                                   [f"m{k}"])
                tensors.append(f"m{k}")
                continue
        text += nets.conv(f"c{k}", tensors[pick], num_output=4, kernel=1, pad=0)
        tensors.append(f"c{k}")
    return text


@settings(max_examples=120, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(random_dags())
def test_cut_analysis_equals_the_definition(text):
    try:
        graph = parse_prototxt(text)
    except Exception as exc:  # a random DAG can be refused (e.g. Concat shapes): skip it
        from hax_conn_core.errors import HaxConnError

        if not isinstance(exc, HaxConnError):
            raise
        return
    expected = definition_crossing(graph)
    assert crossing_tensors(graph) == expected
    for (i, valid, listed, why), full in zip(cut_report(graph), expected):
        assert list(listed) == full[:CROSSING_LISTED]
        if len(full) > 1 and i < len(graph.layers) - 1 and "Input" not in why:
            assert f"{len(full)} tensors cross it" in why
        assert valid == (not why)
        if valid:
            assert len(full) == 1


def test_many_crossing_tensors_are_counted_and_only_the_first_listed():
    # data feeds every convolution and a final concat: after layer 19 (c18), data (still
    # read by c19) and c0 .. c18 cross: 20 tensors.
    text = nets.input_layer(shape=(1, 4, 4, 4))
    for k in range(20):
        text += nets.conv(f"c{k}", "data", kernel=1, pad=0)
    text += nets.layer("cat", "Concat", [f"c{k}" for k in range(20)], ["cat"])
    graph = parse_prototxt(text)
    _, valid, listed, why = cut_report(graph)[19]
    assert not valid and len(listed) == CROSSING_LISTED
    assert "20 tensors cross it (data, c0, c1" in why and "and 12 more" in why


@pytest.mark.parametrize("layers", [1000, 4001, 20000])
def test_generated_chain_groups_and_cuts(layers):
    graph = parse_prototxt(chain_prototxt(layers))
    assert len(graph.layers) == layers
    cuts = valid_cuts(graph)
    # A cut after every in-place ReLU (odd layers from 2 on), none after a convolution
    # whose ReLU follows, none after the last layer.
    assert cuts == tuple(range(2, layers - 1, 2))
    groups = group_layers(graph, 10)
    assert len(groups) == 10
    assert groups[0].first == 0 and groups[-1].last == layers - 1
    assert all(g.last in cuts for g in groups[:-1])
    sizes = [g.flops for g in groups]
    assert max(sizes) - min(sizes) <= max(sizes) * 0.05  # equal convolutions: balanced


@pytest.mark.parametrize("layers", [1000, 5002, 20002])
def test_generated_residual_net_cuts_only_between_blocks(layers):
    graph = parse_prototxt(residual_prototxt(layers))
    count = residual_layer_count(layers)
    assert len(graph.layers) == count
    # stem (1) is a cut; then each block's final ReLU (2 + 5k + 4) except the last layer.
    assert valid_cuts(graph) == tuple([1] + list(range(6, count - 1, 5)))
    groups = group_layers(graph, 7)
    assert len(groups) == 7 and groups[-1].last == count - 1


# --- through the real command ------------------------------------------------------------------

@pytest.mark.parametrize("kind, layers", [("chain", 30000), ("residual", 30002)])
def test_hax_conn_graph_on_a_large_generated_prototxt(kind, layers, tmp_path):
    path = tmp_path / f"{kind}.prototxt"
    path.write_text(chain_prototxt(layers) if kind == "chain" else residual_prototxt(layers))
    done = subprocess.run([sys.executable, "-m", "hax_conn_core.cli.main", "graph", str(path),
                           "--json"], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)  # stdout is the JSON document alone
    expected = layers if kind == "chain" else residual_layer_count(layers)
    assert doc["totals"]["layers"] == expected and len(doc["layers"]) == expected
    assert len(doc["groups"]) == 10
    # stderr holds progress lines at most (a pipe: only once the run has lasted a second).
    for line in done.stderr.splitlines():
        assert line.startswith("hax-conn graph: "), line


def test_hax_conn_graph_tables_for_many_layers(tmp_path):
    path = tmp_path / "chain.prototxt"
    path.write_text(chain_prototxt(5001))
    done = subprocess.run([sys.executable, "-m", "hax_conn_core.cli.main", "graph", str(path)],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    rows = [line for line in lines if line.strip().split(" ")[0].isdigit()]
    assert len(rows) >= 5001  # one line per layer (plain table), then the groups table
    assert any(line.startswith("Valid cuts (2499)") for line in lines)


# --- progress ----------------------------------------------------------------------------------

def test_progress_off_a_terminal_waits_then_prints_stage_lines():
    quiet = io.StringIO()
    with Progress(quiet, after_s=3600.0, tty=False) as progress:
        progress.set("reading x.prototxt (1.0 MB)")
        progress.set("grouping 10 layers")
    assert quiet.getvalue() == ""  # a short run says nothing
    loud = io.StringIO()
    with Progress(loud, after_s=0.0, tty=False) as progress:
        progress.set("reading x.prototxt (1.0 MB)")
        progress.set("grouping 10 layers")
    lines = loud.getvalue().splitlines()
    assert lines[0].startswith("hax-conn graph: reading x.prototxt (1.0 MB) ...")
    assert lines[1].startswith("hax-conn graph: grouping 10 layers ...")
    assert lines[-1].startswith("hax-conn graph: done in ")


def test_progress_on_a_terminal_rewrites_one_line_and_clears_it():
    out = io.StringIO()
    with Progress(out, tty=True) as progress:
        progress.set("reading x.prototxt (1.0 MB)")
    text = out.getvalue()
    assert "\r\x1b[Khax-conn graph: reading x.prototxt (1.0 MB) ..." in text
    assert text.endswith("\r\x1b[K") and "\n" not in text

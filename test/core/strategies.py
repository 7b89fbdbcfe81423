"""Small profiles for tests: a builder for hand-written cases and hypothesis strategies.

``make_profile`` turns a compact description into a validated Profile (through the real
parser). ``small_profiles`` draws random small profiles (2-3 DNNs, 2-5 groups, two accelerators
``gpu`` and ``dla``, random slowdown curves); every group runs on the GPU, some not on the DLA.
``assignments_for`` draws a valid assignment of every DNN of a profile. The planner's tests
import these too (``from test.core.strategies import ...``).
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from hypothesis import strategies as st

from hax_conn_core.profile import parse_profile, Profile, PROFILE_FORMAT

LINEAR_CURVE = [[0.0, 1.0], [1.0, 2.0]]  # S = 1 + u up to u = 1


def group(time_ms: Mapping[str, float], demand_gbps: Optional[Mapping[str, float]] = None,
          transition_ms: Optional[Mapping[str, float]] = None) -> Dict:
    """A group description for ``make_profile`` (layers are filled in there)."""
    return {"time_ms": dict(time_ms),
            "demand_gbps": dict(demand_gbps or {a: 0.0 for a in time_ms}),
            "transition_ms": dict(transition_ms or {a: 0.0 for a in time_ms})}


def profile_doc(dnns: Mapping[str, Sequence[Dict]], *,
                accelerators: Sequence[str] = ("gpu", "dla"), peak_gbps: float = 100.0,
                curves: Optional[Mapping[str, List[List[float]]]] = None,
                layers_per_group: int = 1) -> Dict:
    """The JSON document of a profile; group ``i`` covers ``layers_per_group`` layers."""
    doc_dnns = {}
    for name, groups in dnns.items():
        out = []
        for i, g in enumerate(groups):
            g = dict(g)
            g.setdefault("layers", [i * layers_per_group, (i + 1) * layers_per_group - 1])
            out.append(g)
        doc_dnns[name] = {"groups": out}
    return {"format": PROFILE_FORMAT,
            "device": {"name": "test-soc", "accelerators": list(accelerators),
                       "peak_bandwidth_gbps": peak_gbps},
            "contention": {a: (curves or {}).get(a, LINEAR_CURVE) for a in accelerators},
            "dnns": doc_dnns}


def make_profile(dnns: Mapping[str, Sequence[Dict]], **kwargs) -> Profile:
    return parse_profile(profile_doc(dnns, **kwargs), source="<test profile>")


_times = st.integers(min_value=10, max_value=500).map(lambda x: x / 100.0)  # 0.1 .. 5 ms
_demands = st.integers(min_value=0, max_value=80).map(float)  # GB/s, peak 100
_transitions = st.integers(min_value=0, max_value=50).map(lambda x: x / 100.0)


@st.composite
def curves(draw) -> List[List[float]]:
    """A slowdown curve: 1-4 breakpoints, u strictly increasing in [0, 2], s >= 1 rising."""
    n = draw(st.integers(min_value=1, max_value=4))
    us = sorted(draw(st.sets(st.integers(min_value=0, max_value=200), min_size=n, max_size=n)))
    s = 1.0
    points = []
    for u in us:
        s += draw(st.integers(min_value=0, max_value=60)) / 100.0
        points.append([u / 100.0, round(s, 2)])
    return points


@st.composite
def small_profiles(draw, min_dnns: int = 2, max_dnns: int = 3, min_groups: int = 2,
                   max_groups: int = 5, dla_everywhere: bool = False,
                   accelerators: Sequence[str] = ("gpu", "dla")) -> Profile:
    """A random profile (peak 100 GB/s). The first accelerator runs every group; each other
    one runs a group with probability 5/6 (always, with ``dla_everywhere``)."""
    n_dnns = draw(st.integers(min_value=min_dnns, max_value=max_dnns))
    dnns = {}
    for d in range(n_dnns):
        n_groups = draw(st.integers(min_value=min_groups, max_value=max_groups))
        groups = []
        for _ in range(n_groups):
            accs = [accelerators[0]]
            for other in accelerators[1:]:
                if dla_everywhere or draw(st.integers(min_value=0, max_value=5)) > 0:
                    accs.append(other)
            groups.append(group({a: draw(_times) for a in accs},
                                {a: draw(_demands) for a in accs},
                                {a: draw(_transitions) for a in accs}))
        dnns[f"dnn{d}"] = groups
    return make_profile(dnns, accelerators=accelerators,
                        curves={a: draw(curves()) for a in accelerators},
                        layers_per_group=draw(st.integers(min_value=1, max_value=3)))


@st.composite
def assignments_for(draw, profile: Profile) -> Dict[str, Tuple[str, ...]]:
    """A valid assignment (any number of transitions) of every DNN of ``profile``."""
    out = {}
    for name, dnn in profile.dnns.items():
        out[name] = tuple(draw(st.sampled_from(sorted(g.time_ms))) for g in dnn.groups)
    return out


# --- malformed documents, for "one line, never a traceback" tests ------------------------------

#: Any JSON value (small), including numbers at the edges of what a float holds.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-10 ** 40, max_value=10 ** 40)
    | st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([1e306, 5e-324, -0.0])
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, prefix + (key,))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _paths(child, prefix + (i,))


@st.composite
def mutated_documents(draw, doc: Dict) -> Dict:
    """``doc`` with one to three places replaced by any JSON value, deleted, or given a key."""
    import copy

    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=6))] = draw(json_values)
        else:
            parent[path[-1]] = draw(json_values)
    return doc


@st.composite
def mutated_texts(draw, text: str) -> str:
    """``text`` with one to three spans cut, repeated, or replaced by braces, quotes, junk."""
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        if not text:
            break
        start = draw(st.integers(min_value=0, max_value=len(text) - 1))
        end = draw(st.integers(min_value=start, max_value=min(len(text), start + 20)))
        junk = draw(st.sampled_from(["", "{", "}", "{ {", '"', "'", ":", "#", "\n", "<", ">",
                                     "layer {", "\u00e9", "\ufeff", "\x00", "9" * 30]))
        how = draw(st.sampled_from(["cut", "repeat", "replace"]))
        if how == "cut":
            text = text[:start] + text[end:]
        elif how == "repeat":
            text = text[:end] + text[start:end] + text[end:]
        else:
            text = text[:start] + junk + text[end:]
    return text

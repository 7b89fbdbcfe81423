"""Profiles: what each layer group of each DNN costs on each accelerator (``hax-conn-profile/1``).

The format and its meaning are in docs/formats.md and docs/timing-model.md. A profile is read
once, validated completely (every complaint names its JSON path and what was expected), and then
held as frozen dataclasses that the simulator, the planner and the baselines share.

``Profile.sha256`` identifies the *content*: the SHA-256 of the canonical JSON of
``profile_to_dict`` (keys sorted, no whitespace, numbers as Python writes floats), so that
re-indenting a file or reordering its keys keeps the hash, and a schedule can name the profile it
was planned on. Optional keys we do not know are accepted and ignored (the format may gain
optional keys) and do not enter the hash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

from hax_conn_core.errors import ProfileError
from hax_conn_core.jsonpath import join, load_json, Reader, write_text

PROFILE_FORMAT = "hax-conn-profile/1"
_FAMILY = "hax-conn-profile"

Curve = Tuple[Tuple[float, float], ...]

# Bounds on the numbers a profile may hold (docs/formats.md, "Bounds"). Far beyond any real
# measurement, they keep every figure the simulator and the planner derive from them finite:
# a time of 1e306 ms passes "finite" but overflows once it is scaled to the planner's units.
#: Largest time (standalone or transition) of one group, in ms: 1000 s.
MAX_MS = 1e6
#: Smallest standalone time of a group, in ms: 1 ns (smaller is a measurement error).
MIN_TIME_MS = 1e-6
#: Largest DRAM demand or peak bandwidth, in GB/s.
MAX_GBPS = 1e6
#: Smallest peak bandwidth, in GB/s (demands are divided by it).
MIN_PEAK_GBPS = 1e-3
#: Largest utilisation u of a breakpoint and largest slowdown s.
MAX_UTILISATION = 1e3
MAX_SLOWDOWN = 1e3
#: Largest layer index.
MAX_LAYER = 10 ** 9


@dataclass(frozen=True)
class Group:
    """A run of consecutive layers that is scheduled as one unit (a transition point at its end).

    ``layers`` is the inclusive range of layer indices (docs/conventions.md). ``time_ms[a]`` is the
    standalone time on accelerator ``a`` (absent: ``a`` cannot run the group), ``demand_gbps[a]``
    its standalone DRAM throughput there, ``transition_ms[a]`` the extra delay when the next
    group runs elsewhere (0 where the file leaves it out on the last group).
    """

    layers: Tuple[int, int]
    time_ms: Mapping[str, float]
    demand_gbps: Mapping[str, float]
    transition_ms: Mapping[str, float]

    def runs_on(self, acc: str) -> bool:
        return acc in self.time_ms


@dataclass(frozen=True)
class DnnProfile:
    name: str
    groups: Tuple[Group, ...]

    def accelerators_for_all_groups(self, accelerators: Sequence[str]) -> Tuple[str, ...]:
        """Those of ``accelerators`` that can run every group of this DNN (in the given order)."""
        return tuple(a for a in accelerators if all(g.runs_on(a) for g in self.groups))


@dataclass(frozen=True)
class Device:
    name: str
    accelerators: Tuple[str, ...]
    peak_bandwidth_gbps: float
    #: Where the peak comes from ("datasheet: ...", "measured: ..."); metadata, not hashed.
    peak_bandwidth_source: Optional[str] = field(default=None, compare=False)


@dataclass(frozen=True)
class Profile:
    device: Device
    contention: Mapping[str, Curve]
    dnns: Mapping[str, DnnProfile]  # insertion-ordered: the file's order
    sha256: str = field(default="", compare=False)
    #: Where the numbers come from (a measurement run, a paper's artifact); metadata, not hashed.
    source: Optional[str] = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.sha256:
            object.__setattr__(self, "sha256", _content_sha256(self))

    def subset(self, names: Sequence[str]) -> "Profile":
        """The same profile with only the DNNs ``names``, in that order (its own sha256).

        An unknown or repeated name raises ProfileError listing the DNNs this profile has.
        """
        if not names:
            raise ProfileError(f"no DNN chosen: expected one or more of {_known(self)}")
        seen = set()
        for name in names:
            if name not in self.dnns:
                raise ProfileError(f"DNN {name!r} is not in the profile: expected one of "
                                   f"{_known(self)}")
            if name in seen:
                raise ProfileError(f"DNN {name!r} is chosen twice: expected distinct names")
            seen.add(name)
        return Profile(device=self.device, contention=self.contention,
                       dnns={name: self.dnns[name] for name in names}, source=self.source)


def _known(profile: Profile) -> str:
    return ", ".join(profile.dnns)


def _content_sha256(profile: Profile) -> str:
    canonical = json.dumps(profile_to_dict(profile, metadata=False), sort_keys=True,
                           separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --- reading ---------------------------------------------------------------------------------

def load_profile(path: Union[str, Path]) -> Profile:
    """Read and validate a profile file; any problem raises ProfileError naming file and path."""
    return parse_profile(load_json(path, ProfileError, "profile"), source=str(path))


def parse_profile(obj: Any, source: str = "<profile>") -> Profile:
    """Validate a decoded JSON document as ``hax-conn-profile/1``."""
    r = Reader(source, ProfileError)
    top = r.obj(obj, "", "a JSON object with keys format, device, contention, dnns")
    r.format_tag(top, PROFILE_FORMAT, _FAMILY)
    device = _parse_device(r, r.required(top, "device", ""))
    contention = _parse_contention(r, r.required(top, "contention", ""), device)
    raw_dnns = r.obj(r.required(top, "dnns", ""), "dnns", "an object of DNN name -> DNN profile")
    if not raw_dnns:
        raise r.fail("dnns", "expected at least one DNN, found an empty object")
    dnns: Dict[str, DnnProfile] = {}
    for name, raw in raw_dnns.items():
        r.key_ident(name, "dnns", "a DNN name")
        dnns[name] = _parse_dnn(r, name, raw, device)
    source = top.get("source")
    if source is not None:
        source = r.string(source, "source", "a string (where the numbers come from)")
    return Profile(device=device, contention=contention, dnns=dnns, source=source)


def _parse_device(r: Reader, raw: Any) -> Device:
    path = "device"
    dev = r.obj(raw, path, "an object with keys name, accelerators, peak_bandwidth_gbps")
    name = r.string(r.required(dev, "name", path), join(path, "name"))
    accs_path = join(path, "accelerators")
    accs = r.lst(r.required(dev, "accelerators", path), accs_path,
                 "a non-empty list of accelerator names", non_empty=True)
    seen = set()
    for i, acc in enumerate(accs):
        r.ident(acc, join(accs_path, i), "an accelerator name")
        if acc in seen:
            raise r.fail(join(accs_path, i), f"accelerator {acc!r} is listed twice")
        seen.add(acc)
    peak = r.number(r.required(dev, "peak_bandwidth_gbps", path),
                    join(path, "peak_bandwidth_gbps"), minimum=MIN_PEAK_GBPS,
                    maximum=MAX_GBPS, unit="(GB/s)")
    peak_source = dev.get("peak_bandwidth_source")
    if peak_source is not None:
        peak_source = r.string(peak_source, join(path, "peak_bandwidth_source"),
                               "a string (datasheet or measured, and how)")
    return Device(name=name, accelerators=tuple(accs), peak_bandwidth_gbps=peak,
                  peak_bandwidth_source=peak_source)


def _parse_contention(r: Reader, raw: Any, device: Device) -> Dict[str, Curve]:
    path = "contention"
    curves_raw = r.obj(raw, path, "an object of accelerator -> list of [u, s] breakpoints")
    curves: Dict[str, Curve] = {}
    for acc in curves_raw:
        if acc not in device.accelerators:
            raise r.fail(join(path, acc), f"unknown accelerator {acc!r}: expected one of "
                                          f"device.accelerators "
                                          f"({', '.join(device.accelerators)})")
    for acc in device.accelerators:
        if acc not in curves_raw:
            raise r.fail(join(path, acc), "required key is missing: every accelerator of "
                                          "device.accelerators needs a slowdown curve")
        curve_path = join(path, acc)
        points = r.lst(curves_raw[acc], curve_path, "a non-empty list of [u, s] breakpoints",
                       non_empty=True)
        curve = []
        for i, point in enumerate(points):
            p_path = join(curve_path, i)
            if not isinstance(point, list) or len(point) != 2:
                raise r.expect(p_path, "a breakpoint [u, s] of two numbers", point)
            u = r.number(point[0], join(p_path, 0), minimum=0.0, maximum=MAX_UTILISATION,
                         unit="(utilisation u)")
            s = r.number(point[1], join(p_path, 1), minimum=1.0, maximum=MAX_SLOWDOWN,
                         unit="(slowdown s)")
            if curve and u <= curve[-1][0]:
                raise r.fail(join(p_path, 0), f"expected u > {curve[-1][0]:g} (breakpoints "
                                              f"sorted by strictly increasing u), found {u:g}")
            curve.append((u, s))
        curves[acc] = tuple(curve)
    return curves


def _parse_dnn(r: Reader, name: str, raw: Any, device: Device) -> DnnProfile:
    path = join("dnns", name)
    dnn = r.obj(raw, path, "an object with key groups")
    groups_path = join(path, "groups")
    raw_groups = r.lst(r.required(dnn, "groups", path), groups_path,
                       "a non-empty list of layer groups", non_empty=True)
    groups = []
    for i, raw_group in enumerate(raw_groups):
        last = i == len(raw_groups) - 1
        group = _parse_group(r, join(groups_path, i), raw_group, device, last)
        if groups and group.layers[0] != groups[-1].layers[1] + 1:
            prev = groups[-1].layers
            raise r.fail(join(join(groups_path, i), "layers"),
                         f"expected the range to start at layer {prev[1] + 1} (groups are "
                         f"contiguous; the previous group is {prev[0]}-{prev[1]}), found "
                         f"{group.layers[0]}")
        groups.append(group)
    return DnnProfile(name=name, groups=tuple(groups))


def _parse_group(r: Reader, path: str, raw: Any, device: Device, last: bool) -> Group:
    group = r.obj(raw, path, "an object with keys layers, time_ms, demand_gbps, transition_ms")
    layers_path = join(path, "layers")
    layers = r.required(group, "layers", path)
    if not isinstance(layers, list) or len(layers) != 2:
        raise r.expect(layers_path, "an inclusive layer range [first, last] of two integers",
                       layers)
    first = r.integer(layers[0], join(layers_path, 0), minimum=0, maximum=MAX_LAYER)
    r.integer(layers[1], join(layers_path, 1), minimum=first, maximum=MAX_LAYER)
    time_ms = _acc_map(r, group, path, "time_ms", device, "ms", minimum=MIN_TIME_MS,
                       maximum=MAX_MS)
    if not time_ms:
        raise r.fail(join(path, "time_ms"), "expected at least one accelerator that can run "
                                            "the group, found an empty object")
    demand = _acc_map(r, group, path, "demand_gbps", device, "GB/s", minimum=0.0,
                      maximum=MAX_GBPS)
    transition = _acc_map(r, group, path, "transition_ms", device, "ms", minimum=0.0,
                          maximum=MAX_MS, required=not last)
    for key, values in (("demand_gbps", demand), ("transition_ms", transition)):
        for acc in values:
            if acc not in time_ms:
                raise r.fail(join(join(path, key), acc),
                             f"accelerator {acc!r} has no time_ms entry (it cannot run the "
                             f"group): expected keys among {', '.join(time_ms)}")
    for acc in time_ms:
        if acc not in demand:
            raise r.fail(join(join(path, "demand_gbps"), acc),
                         "required key is missing: every accelerator in time_ms needs a demand")
        if acc not in transition and not last:
            raise r.fail(join(join(path, "transition_ms"), acc),
                         "required key is missing: every accelerator in time_ms needs a "
                         "transition cost (except on the last group)")
    if last:
        # Nothing follows the last group, so its transition cost is never paid
        # (docs/timing-model.md): held as 0, not written, not hashed.
        transition = {acc: 0.0 for acc in time_ms}
    return Group(layers=(layers[0], layers[1]), time_ms=time_ms, demand_gbps=demand,
                 transition_ms=transition)


def _acc_map(r: Reader, group: Dict[str, Any], path: str, key: str, device: Device, unit: str,
             minimum: float, maximum: float, required: bool = True) -> Dict[str, float]:
    map_path = join(path, key)
    if key not in group and not required:
        return {}
    raw = r.obj(r.required(group, key, path), map_path,
                f"an object of accelerator -> {unit}")
    values: Dict[str, float] = {}
    for acc, value in raw.items():
        if acc not in device.accelerators:
            raise r.fail(join(map_path, acc), f"unknown accelerator {acc!r}: expected one of "
                                              f"device.accelerators "
                                              f"({', '.join(device.accelerators)})")
        values[acc] = r.number(value, join(map_path, acc), minimum=minimum, maximum=maximum,
                               unit=f"({unit})")
    return values


# --- writing ---------------------------------------------------------------------------------

def profile_to_dict(profile: Profile, metadata: bool = True) -> Dict[str, Any]:
    """The JSON document of ``profile`` (what ``parse_profile`` reads back to an equal profile).

    ``metadata=False`` leaves out ``source`` and ``device.peak_bandwidth_source``: the content
    that ``sha256`` identifies.
    """
    device: Dict[str, Any] = {"name": profile.device.name,
                              "accelerators": list(profile.device.accelerators),
                              "peak_bandwidth_gbps": profile.device.peak_bandwidth_gbps}
    doc: Dict[str, Any] = {"format": PROFILE_FORMAT}
    if metadata and profile.source is not None:
        doc["source"] = profile.source
    if metadata and profile.device.peak_bandwidth_source is not None:
        device["peak_bandwidth_source"] = profile.device.peak_bandwidth_source
    doc.update({
        "device": device,
        "contention": {acc: [[u, s] for u, s in profile.contention[acc]]
                       for acc in profile.device.accelerators},
        "dnns": {name: {"groups": [_group_to_dict(g, last=i + 1 == len(dnn.groups))
                                   for i, g in enumerate(dnn.groups)]}
                 for name, dnn in profile.dnns.items()},
    })
    return doc


def _group_to_dict(group: Group, last: bool) -> Dict[str, Any]:
    doc = {"layers": list(group.layers),
           "time_ms": dict(group.time_ms),
           "demand_gbps": dict(group.demand_gbps)}
    if not last:
        doc["transition_ms"] = dict(group.transition_ms)
    return doc


def dump_profile(profile: Profile) -> str:
    """The profile as JSON text for people to read too: one group per line, one curve per line.

    What ``parse_profile(json.loads(text))`` reads back to an equal profile; the profile is
    validated on the way (a hand-built Profile that breaks a rule raises ProfileError).
    """
    doc = profile_to_dict(profile)
    parse_profile(json.loads(json.dumps(doc)), source="<profile being written>")
    return layout_document(doc)


#: The keys of ``hax-conn-profile/1`` itself; any other top-level key is an optional one.
CORE_KEYS = ("format", "source", "device", "contention", "dnns")


def layout_document(doc: Mapping[str, Any]) -> str:
    """``doc`` (a profile as a dict, already valid) as text in ``dump_profile``'s layout; any
    top-level keys besides the format's own (the profiler's optional keys) go one per line
    after ``source``."""
    c = json.dumps
    lines = ["{", f'  "format": {c(doc["format"])},']
    if "source" in doc:
        lines.append(f'  "source": {c(doc["source"])},')
    for key, value in doc.items():
        if key not in CORE_KEYS:
            lines.append(f"  {c(key)}: {c(value)},")
    lines += [f'  "device": {c(doc["device"])},', '  "contention": {']
    curves = list(doc["contention"].items())
    for i, (acc, curve) in enumerate(curves):
        lines.append(f"    {c(acc)}: {c(curve)}" + ("," if i + 1 < len(curves) else ""))
    lines += ["  },", '  "dnns": {']
    dnns = list(doc["dnns"].items())
    for i, (name, dnn) in enumerate(dnns):
        lines.append(f'    {c(name)}: {{"groups": [')
        groups = dnn["groups"]
        for j, group in enumerate(groups):
            lines.append(f"      {c(group)}" + ("," if j + 1 < len(groups) else ""))
        lines.append("    ]}" + ("," if i + 1 < len(dnns) else ""))
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def write_profile(profile: Profile, path: Union[str, Path]) -> None:
    """Write ``dump_profile(profile)`` to ``path``."""
    write_text(path, dump_profile(profile), ProfileError, "profile")

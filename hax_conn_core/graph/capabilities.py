"""Which layers each accelerator of a device can run (config/devices/*.yaml).

A device description (format ``hax-conn-device/1``, docs/graph.md "Device descriptions") names
its accelerators; each either runs every layer (``layers: all``), takes the rules of another
device's accelerator of the same name (``rules_from: xavier-agx``), or lists the layer types it
runs with their limits. A type not listed cannot run there. A group holding a layer the DLA
cannot run is GPU-only (docs/conventions.md, "Accelerator capabilities").

Limit keys (all optional; ranges are inclusive ``[low, high]``):

* ``kernel``, ``pad``, ``stride``, ``dilation``: each spatial value of Convolution / Pooling
  (for Pooling ``window`` is the kernel; global pooling's window is the input's H x W;
  InnerProduct's ``kernel`` is its input's H x W, as the DLA runs it as a convolution);
* ``pad_below_kernel: true``: padding must be smaller than the kernel;
* ``channels``: input and output channels; ``groups``: convolution groups;
* ``methods`` (Pooling), ``local_sizes`` and ``norm_regions`` (LRN), ``operations``
  (Eltwise): allowed values; ``axes``: allowed (non-negative) axis of Concat / Softmax;
  ``min_inputs``: fewest bottoms;
* accelerator-wide ``max_dimension``: largest non-batch dimension of any layer input/output.

Graphs of the ONNX frontend are checked against ``onnx_ops`` instead (ONNX op types -> the same
limit keys, plus ``ranks``, ``modes``, ``scales``, ``constant_weights``; the values come from
:func:`hax_conn_core.graph.frontends.onnx.ops.dla_facts`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from hax_conn_core.errors import ConfigError
from hax_conn_core.graph.model import SUPPORTED_TYPES, Graph, Layer

FORMAT = "hax-conn-device/1"
DEFAULT_DEVICE = "xavier-agx"


def device_dir() -> Path:
    """``config/devices`` of the shipped data (source tree or ament share directory)."""
    from hax_conn_core.resources import data_dir

    return data_dir("config") / "devices"


_RANGE_KEYS = ("kernel", "pad", "stride", "dilation", "channels", "groups", "window")
_SET_KEYS = ("methods", "local_sizes", "norm_regions", "operations", "axes")
_OTHER_KEYS = ("pad_below_kernel", "min_inputs")
#: Limit keys only ONNX op types take (``onnx_ops``): ``scales`` (Resize: every spatial
#: scale an integer in the range, batch and channel scales 1), ``modes`` (Resize modes),
#: ``ranks`` (allowed ranks of the first input), ``constant_weights`` (Conv / Gemm weights
#: must be initialisers).
_ONNX_RANGE_KEYS = ("scales",)
_ONNX_SET_KEYS = ("modes", "ranks")
_ONNX_OTHER_KEYS = ("constant_weights",)
_ACCELERATOR_KEYS = ("layers", "onnx_ops", "rules_from", "max_dimension", "description")


@dataclass(frozen=True)
class AcceleratorRules:
    """The layers one accelerator runs. ``layers`` None means every supported type.

    ``onnx_ops``: the ONNX op types it runs (graphs of the ONNX frontend), with their limits;
    None means every op where ``layers`` is None too, and none otherwise.
    """

    name: str
    layers: Optional[Mapping[str, Mapping[str, Any]]] = None
    max_dimension: Optional[int] = None
    onnx_ops: Optional[Mapping[str, Mapping[str, Any]]] = None

    def check(self, graph: Graph, layer: Layer) -> Optional[str]:
        """None when ``layer`` can run here, else why not (one sentence)."""
        if self.max_dimension is not None:
            for tensor in layer.bottoms + layer.tops:
                shape = graph.tensors[tensor].shape
                if any(d > self.max_dimension for d in shape[1:]):
                    return (f"tensor {tensor!r} of shape {shape} exceeds the {self.name} limit "
                            f"of {self.max_dimension} per dimension")
        if graph.frontend == "onnx":
            table = self.onnx_ops if self.onnx_ops is not None else (
                None if self.layers is None else {})
            if table is None or not layer.bottoms:  # constants only: folded at build time
                return None
            if layer.type not in table:
                return f"{self.name} does not run ONNX {layer.type} nodes"
            return _check_limits(self.name, layer.type, _facts(graph, layer),
                                 table[layer.type])
        if self.layers is None:
            return None
        if layer.type not in self.layers:
            return f"{self.name} does not run {layer.type} layers"
        return _check_limits(self.name, layer.type, _facts(graph, layer),
                             self.layers[layer.type])

    def supports(self, graph: Graph, layer: Layer) -> bool:
        return self.check(graph, layer) is None


@dataclass(frozen=True)
class DeviceCapabilities:
    """A device description: id, text, and the rules of each accelerator."""

    id: str
    description: str
    accelerators: Mapping[str, AcceleratorRules]
    path: Optional[Path] = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def accelerator(self, name: str) -> AcceleratorRules:
        try:
            return self.accelerators[name]
        except KeyError:
            raise ConfigError(f"device {self.id!r} has no accelerator {name!r}; expected one of "
                              f"{', '.join(sorted(self.accelerators))}") from None


def _in_range(value: int, bounds) -> bool:
    return bounds[0] <= value <= bounds[1]


#: Enum-valued limit keys and how messages name one value.
_ENUM_KEYS = (("methods", "method"), ("local_sizes", "local size"),
              ("norm_regions", "norm region"), ("operations", "operation"), ("modes", "mode"))


def _facts(graph: Graph, layer: Layer) -> Mapping[str, Any]:
    """The layer's values for the limit keys, from its frontend's op table."""
    if graph.frontend == "onnx":
        from hax_conn_core.graph.frontends.onnx.ops import dla_facts
    else:
        from hax_conn_core.graph.frontends.caffe.ops import dla_facts
    return dla_facts(graph, layer)


def _check_limits(accel: str, op: str, facts: Mapping[str, Any], limits: Mapping[str, Any]
                  ) -> Optional[str]:
    """None when ``facts`` (see ``dla_facts`` of the frontends) meet ``limits``, else why not."""
    spatial = facts.get("spatial", {})
    for key, values in spatial.items():
        if key in limits:
            bounds = limits[key]
            if not all(_in_range(v, bounds) for v in values):
                return (f"{op} {key} {'x'.join(map(str, values))} is outside the "
                        f"{accel} range [{bounds[0]}, {bounds[1]}]")
    if limits.get("pad_below_kernel") and "pad" in spatial:
        kernel = spatial.get("kernel", spatial.get("window")) or ()
        # Caffe gives one pad per axis, ONNX begins then ends: pad i against axis i mod rank
        if kernel and any(pad >= kernel[i % len(kernel)]
                          for i, pad in enumerate(spatial["pad"])):
            return f"{op} pad {spatial['pad']} is not below its kernel {kernel}"
    if "channels" in limits:
        bounds = limits["channels"]
        for what, value in facts.get("channels", ()):
            if not _in_range(value, bounds):
                return (f"{op} {what} channels {value} outside the {accel} range "
                        f"[{bounds[0]}, {bounds[1]}]")
    if "groups" in limits and "groups" in facts and \
            not _in_range(facts["groups"], limits["groups"]):
        return f"{op} group {facts['groups']} outside the {accel} range {limits['groups']}"
    for key, what in _ENUM_KEYS:
        if key in limits:
            for value in facts.get(key, ()):
                if value not in limits[key]:
                    return f"{op} {what} {value} is not one of {limits[key]}"
    if "axes" in limits and facts.get("axes"):
        axis = facts["axes"][0]
        if axis not in limits["axes"]:
            return f"{op} along axis {axis}; {accel} runs it only along {limits['axes']}"
    if "min_inputs" in limits and facts["inputs"] < limits["min_inputs"]:
        return f"{op} with {facts['inputs']} input(s); {accel} needs at least " \
               f"{limits['min_inputs']}"
    if "ranks" in limits and "ranks" in facts and facts["ranks"] not in limits["ranks"]:
        return f"{op} on a rank-{facts['ranks']} input; {accel} runs it only on ranks " \
               f"{', '.join(map(str, limits['ranks']))}"
    if "scales" in limits and "scales" in facts:
        scales, (low, high) = facts["scales"], limits["scales"]
        if len(scales) < 3 or any(s != 1.0 for s in scales[:2]) or any(
                s != int(s) or not low <= s <= high for s in scales[2:]):
            return (f"{op} scales {', '.join(f'{s:g}' for s in scales)}; {accel} needs 1 for "
                    f"batch and channels and integers in [{low}, {high}] for the rest")
    if limits.get("constant_weights") and not facts.get("constant_weights", True):
        return f"{op} with weights computed at run time; {accel} needs them as initialisers"
    return None


# ---------------------------------------------------------------------------------------------
# Loading


def device_ids(directory: Optional[Path] = None) -> Tuple[str, ...]:
    """Ids of the device descriptions in ``directory`` (default: the shipped ones)."""
    directory = device_dir() if directory is None else directory
    return tuple(sorted(path.stem for path in directory.glob("*.yaml")))


#: Deepest nesting of YAML lists and mappings a device description may have (it needs 5).
MAX_YAML_DEPTH = 32


def _yaml():
    from hax_conn_core.imports import required

    return required("yaml", "PyYAML", "reading device descriptions (config/devices/*.yaml)")


def _read_yaml(path: Path) -> Dict[str, Any]:
    yaml = _yaml()
    from hax_conn_core.jsonpath import read_text

    text = read_text(path, ConfigError, "device description")
    _check_yaml_depth(path, text)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        message = " ".join(str(exc).split())
        raise ConfigError(f"{path}: not valid YAML: {message}") from None
    except RecursionError:  # pragma: no cover - _check_yaml_depth stops it first
        raise ConfigError(f"{path}: nested too deeply; expected at most {MAX_YAML_DEPTH} "
                          "levels") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with 'format: {FORMAT}'")
    return data


def _check_yaml_depth(path: Path, text: str) -> None:
    """Refuse nesting deeper than MAX_YAML_DEPTH before PyYAML's recursive composer sees it."""
    yaml = _yaml()

    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    line = event.start_mark.line + 1 if event.start_mark else "?"
                    raise ConfigError(f"{path}:{line}: nested {depth} deep; expected at most "
                                      f"{MAX_YAML_DEPTH} levels of lists and mappings")
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        return  # safe_load reports it with its position


def _pair_of_ints(where: str, value: Any) -> Tuple[int, int]:
    if (isinstance(value, list) and len(value) == 2 and
            all(isinstance(v, int) and not isinstance(v, bool) for v in value) and
            value[0] <= value[1]):
        return (value[0], value[1])
    raise ConfigError(f"{where}: {value!r}; expected [low, high] integers with low <= high")


def _parse_limits(where: str, layer_type: str, limits: Any, onnx: bool = False
                  ) -> Dict[str, Any]:
    range_keys, set_keys, other_keys = _RANGE_KEYS, _SET_KEYS, _OTHER_KEYS
    if onnx:
        import re

        if not isinstance(layer_type, str) or not re.match(r"^[A-Z][A-Za-z0-9]*$",
                                                           layer_type):
            raise ConfigError(f"{where}: {layer_type!r} is not an ONNX op type; expected a "
                              "name such as Conv or BatchNormalization")
        range_keys += _ONNX_RANGE_KEYS
        set_keys = ("axes", "local_sizes") + _ONNX_SET_KEYS  # no Caffe enums for ONNX ops
        other_keys += _ONNX_OTHER_KEYS
    elif layer_type not in SUPPORTED_TYPES:
        raise ConfigError(f"{where}: unknown layer type {layer_type!r}; expected one of "
                          f"{', '.join(SUPPORTED_TYPES)}")
    if limits is None:
        return {}
    if not isinstance(limits, dict):
        raise ConfigError(f"{where}.{layer_type}: expected a mapping of limits or {{}}")
    parsed: Dict[str, Any] = {}
    for key, value in limits.items():
        at = f"{where}.{layer_type}.{key}"
        if key in range_keys:
            parsed[key] = _pair_of_ints(at, value)
        elif key in set_keys:
            if not isinstance(value, list) or not value:
                raise ConfigError(f"{at}: {value!r}; expected a non-empty list")
            parsed[key] = tuple(value)
        elif key in ("pad_below_kernel", "constant_weights") and key in other_keys:
            if not isinstance(value, bool):
                raise ConfigError(f"{at}: {value!r}; expected true or false")
            parsed[key] = value
        elif key == "min_inputs":
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{at}: {value!r}; expected a non-negative integer")
            parsed[key] = value
        else:
            raise ConfigError(f"{at}: unknown limit; expected one of "
                              f"{', '.join(range_keys + set_keys + other_keys)}")
    return parsed


def load_device(name_or_path: Union[str, Path], directory: Optional[Path] = None,
                _seen: Tuple[str, ...] = ()) -> DeviceCapabilities:
    """A device description by id (``config/devices/<id>.yaml``) or by path."""
    text = str(name_or_path)
    path = Path(text)
    if not (text.endswith((".yaml", ".yml")) or path.is_file()):
        directory = device_dir() if directory is None else directory
        path = directory / f"{text}.yaml"
        if not path.is_file():
            raise ConfigError(f"unknown device {text!r}; expected one of "
                              f"{', '.join(device_ids(directory)) or '(none found)'} or a path "
                              "to a .yaml device description")
    data = _read_yaml(path)
    if data.get("format") != FORMAT:
        raise ConfigError(f"{path}: format {data.get('format')!r}; expected {FORMAT!r}")
    device_id = data.get("id", path.stem)
    if device_id in _seen:
        raise ConfigError(f"{path}: rules_from loops back to {device_id!r}")
    accelerators = data.get("accelerators")
    if not isinstance(accelerators, dict) or not accelerators:
        raise ConfigError(f"{path}: 'accelerators' must map accelerator names to their rules")
    parsed: Dict[str, AcceleratorRules] = {}
    for name, spec in accelerators.items():
        where = f"{path}: accelerators.{name}"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: expected a mapping with 'layers' or 'rules_from'")
        unknown = sorted(set(spec) - set(_ACCELERATOR_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; expected "
                              f"{', '.join(_ACCELERATOR_KEYS)}")
        if "rules_from" in spec:
            if "layers" in spec or "onnx_ops" in spec:
                raise ConfigError(f"{where}: both 'rules_from' and 'layers' / 'onnx_ops'; "
                                  "expected one")
            other = load_device(spec["rules_from"], directory, _seen + (device_id,))
            base = other.accelerator(name)
            limit = spec.get("max_dimension", base.max_dimension)
            parsed[name] = AcceleratorRules(name, base.layers, limit, base.onnx_ops)
            continue
        layers = spec.get("layers")
        if layers == "all":
            table = None
        elif isinstance(layers, dict):
            table = {kind: _parse_limits(f"{where}.layers", kind, limits)
                     for kind, limits in layers.items()}
        else:
            raise ConfigError(f"{where}.layers: {layers!r}; expected 'all' or a mapping of "
                              "layer types to limits")
        onnx_ops = spec.get("onnx_ops")
        if onnx_ops == "all" and table is None:
            onnx_table = None
        elif isinstance(onnx_ops, dict):
            onnx_table = {kind: _parse_limits(f"{where}.onnx_ops", kind, limits, onnx=True)
                          for kind, limits in onnx_ops.items()}
        elif onnx_ops is None:
            onnx_table = None if table is None else {}
        else:
            raise ConfigError(f"{where}.onnx_ops: {onnx_ops!r}; expected a mapping of ONNX op "
                              "types to limits ('all' only with 'layers: all')")
        limit = spec.get("max_dimension")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise ConfigError(f"{where}.max_dimension: {limit!r}; expected a positive integer")
        parsed[name] = AcceleratorRules(name, table, limit, onnx_table)
    extra = {k: v for k, v in data.items()
             if k not in ("format", "id", "description", "accelerators")}
    return DeviceCapabilities(id=device_id, description=str(data.get("description", "")),
                              accelerators=parsed, path=path, extra=extra)


_CACHE: Dict[str, DeviceCapabilities] = {}


def resolve_device(device: Union[None, str, Path, DeviceCapabilities]) -> DeviceCapabilities:
    """A DeviceCapabilities from an id, a path, an already loaded one, or None (default)."""
    if isinstance(device, DeviceCapabilities):
        return device
    key = str(device if device is not None else DEFAULT_DEVICE)
    if key not in _CACHE:
        _CACHE[key] = load_device(key)
    return _CACHE[key]


def unsupported_layers(graph: Graph, device=None, accelerator: str = "dla"
                       ) -> Tuple[Tuple[Layer, str], ...]:
    """(layer, reason) for each layer ``accelerator`` of ``device`` cannot run."""
    rules = resolve_device(device).accelerator(accelerator)
    found = []
    for layer in graph.layers:
        reason = rules.check(graph, layer)
        if reason:
            found.append((layer, reason))
    return tuple(found)

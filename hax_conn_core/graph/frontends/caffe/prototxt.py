"""The Caffe frontend: prototxt files into a :class:`~hax_conn_core.graph.model.Graph`.

The text is parsed with protobuf's ``text_format`` against our own subset of Caffe's schema
(:mod:`.caffe_schema`), then each layer is checked and normalised the way Caffe's own layer
setup does, and shapes are inferred in file order. Accepted (docs/graph.md, "Reader"):

* ``layer { type: "..." }`` and the legacy V1 ``layers { type: ENUM }`` (not both in one file);
* inputs as Input layers or legacy ``input:`` with ``input_shape { dim }`` or ``input_dim`` x4;
* training-only fields (``param``, fillers, ``loss_weight``, ``propagate_down``, ...), read and
  ignored; ``include``/``exclude`` rules evaluated as Caffe does for the TEST phase (inference),
  with the level and stages of the net's ``state``; layers the rules exclude are not part of
  the net and get no index;
* comments, CRLF line ends, ``name``, ``force_backward``, ``debug_info``.

Data layers (Data, ImageData, ...) are refused: they read a database; a deploy prototxt declares
its input shape instead.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

from google.protobuf import text_format

from hax_conn_core.errors import ModelError
from hax_conn_core.graph import shapes
from hax_conn_core.graph.caffe_schema import V1_TYPE_NAMES, message_class
from hax_conn_core.graph.model import (
    SUPPORTED_TYPES, BatchNormParams, ConcatParams, ConvolutionParams, DropoutParams,
    EltwiseParams, FlattenParams, Graph, InnerProductParams, InputParams, Layer, LayerParams,
    LRNParams, PoolingParams, ReLUParams, ScaleParams, Shape, SoftmaxParams, SplitParams,
    TensorInfo)

_DATA_TYPES = ("Data", "ImageData", "HDF5Data", "MemoryData", "WindowData", "DummyData",
               "AnnotatedData", "Python")

# (min bottoms, max bottoms or None, min tops, max tops or None)
_ARITY: Dict[str, Tuple[int, Optional[int], int, Optional[int]]] = {
    "Input": (0, 0, 1, None),
    "Convolution": (1, 1, 1, 1),
    "Pooling": (1, 1, 1, 1),
    "LRN": (1, 1, 1, 1),
    "InnerProduct": (1, 1, 1, 1),
    "BatchNorm": (1, 1, 1, 1),
    "Scale": (1, 2, 1, 1),
    "Eltwise": (2, None, 1, 1),
    "Concat": (1, None, 1, 1),
    "Dropout": (1, 1, 1, 1),
    "Softmax": (1, 1, 1, 1),
    "Flatten": (1, 1, 1, 1),
    "ReLU": (1, 1, 1, 1),
    "Split": (1, 1, 1, None),
}


#: Deepest nesting of ``{ }`` / ``< >`` blocks a prototxt may have. Caffe's schema needs 4
#: (net, layer, parameter, shape); the limit keeps a hostile file (thousands of nested blocks)
#: from exhausting the recursion of protobuf's parser.
MAX_NESTING = 32


def load_prototxt(path: Union[str, Path], name: Optional[str] = None) -> Graph:
    """Read a prototxt file; ``name`` defaults to the net's ``name:`` or the file's stem."""
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"{path}: is a directory; expected a prototxt file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the prototxt: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ModelError(f"{path}:{line}: not UTF-8 text at byte {exc.start}; expected a "
                         "prototxt (text), not a binary .caffemodel") from None
    return parse_prototxt(text, source=str(path), name=name, default_name=path.stem)


def parse_prototxt(text: str, source: str = "<string>", name: Optional[str] = None,
                   default_name: str = "net") -> Graph:
    """Parse prototxt ``text``; ``source`` names it in messages."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    _check_nesting(text, source)
    net = _parse_net(text, source)
    builder = _GraphBuilder(source, _layer_lines(text))
    return builder.build(net, name or net.name or default_name)


# ---------------------------------------------------------------------------------------------
# Text -> NetParameter


def _parse_net(text: str, source: str):
    net_class = message_class("NetParameter")
    net = net_class()
    try:
        text_format.Parse(text, net)
        return net
    except text_format.ParseError as exc:
        error = exc
    except RecursionError:  # pragma: no cover - _check_nesting stops it first
        raise ModelError(f"{source}: blocks nested too deeply; expected at most "
                         f"{MAX_NESTING} levels") from None
    # A field our schema lacks is most often the parameter block of a layer type we do not
    # support: parse leniently to say so by layer, else report the syntax error.
    lenient = net_class()
    try:
        text_format.Parse(text, lenient, allow_unknown_field=True)
    except (text_format.ParseError, TypeError, RecursionError):
        lenient = None
    line = error.GetLine()
    if lenient is not None and line is not None:
        lines = _layer_lines(text)
        position = sum(1 for start in lines if start <= line) - 1
        if position >= 0:
            _GraphBuilder(source, lines).check_type_at(lenient, position)
    raise ModelError(_syntax_message(source, error, text)) from None


_COMMENT = re.compile(r"""("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')|#[^\n]*""")


def _code(line: str) -> str:
    """``line`` without its comment (a ``#`` inside a string is kept)."""
    return _COMMENT.sub(lambda m: m.group(1) or "", line).rstrip()


def _syntax_message(source: str, exc: "text_format.ParseError", text: str) -> str:
    """``file:line:column: message``, blaming the line where the mistake is.

    protobuf reports the token *after* a missing value: for ``name:`` with nothing after it, it
    blames the next line (``type: ...``); we report the end of the line whose value is missing.
    A file that ends inside a block is reported at the line that opened the block.
    """
    message = str(exc)
    line, column = exc.GetLine(), exc.GetColumn()
    if line is None:
        return f"{source}: {message}"
    prefix = f"{line}:{column} : "
    if message.startswith(prefix):
        message = message[len(prefix):]
    lines = text.split("\n")
    here = lines[line - 1] if 0 < line <= len(lines) else ""
    echo = f"'{here}': "
    if message.startswith(echo):  # protobuf's echo of the line it blames
        message = message[len(echo):]
    else:
        echo = ""
    unclosed = _unclosed_block(text)
    if unclosed is not None and message.startswith('Expected "}"'):
        return (f"{source}:{unclosed[0]}:{unclosed[1]}: this block is not closed when the file "
                "ends; expected a matching \"}\"")
    before = _code(here[:max(column - 1, 0)])
    previous = next((n for n in range(line - 1, 0, -1) if _code(lines[n - 1]).strip()), None)
    if not before.strip() and previous is not None:
        code = _code(lines[previous - 1])
        if code.endswith(":"):
            found = message.split(" but found", 1)[1].lstrip(": ") \
                if " but found" in message else ""
            return (f"{source}:{previous}:{len(code) + 1}: '{code.strip()}' has no value"
                    + (f" (found {found} on line {line})" if found else f"; {message}"))
    return f"{source}:{line}:{column}: {echo}{message}"


def _unclosed_block(text: str) -> Optional[Tuple[int, int]]:
    """(line, column) of the outermost ``{`` / ``<`` left open at the end of ``text``, if any."""
    opened: List[Tuple[int, int]] = []
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in ("{", "<"):
            start = match.start()
            opened.append((text.count("\n", 0, start) + 1,
                           start - (text.rfind("\n", 0, start) + 1) + 1))
        elif token in ("}", ">") and opened:
            opened.pop()
    return opened[0] if opened else None


def _check_nesting(text: str, source: str) -> None:
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in ("{", "<"):
            depth += 1
            if depth > MAX_NESTING:
                line = text.count("\n", 0, match.start()) + 1
                raise ModelError(f"{source}:{line}: blocks nested {depth} deep; expected at "
                                 f"most {MAX_NESTING} levels of {{ }}")
        elif token in ("}", ">"):
            depth -= 1


_TOKENS = re.compile(r"""#[^\n]*|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|[{}<>]|\b(layers?)\b""")


def _layer_lines(text: str) -> List[int]:
    """1-based line of each top-level ``layer``/``layers`` entry, in file order."""
    lines: List[int] = []
    depth, line, counted = 0, 1, 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in ("{", "<"):
            depth += 1
        elif token in ("}", ">"):
            depth -= 1
        elif depth == 0 and match.group(1):
            line += text.count("\n", counted, match.start())
            counted = match.start()
            lines.append(line)
    return lines


# ---------------------------------------------------------------------------------------------
# NetParameter -> Graph


def _enum_name(message, field: str) -> str:
    descriptor = message.DESCRIPTOR.fields_by_name[field].enum_type
    return descriptor.values_by_number[getattr(message, field)].name


def _has(message, field: str) -> bool:
    return field in message.DESCRIPTOR.fields_by_name and message.HasField(field)


def _state_meets_rule(state, rule) -> bool:
    """Caffe's Net::StateMeetsRule for our (TEST phase) state."""
    if rule.HasField("phase") and rule.phase != state.phase:
        return False
    if rule.HasField("min_level") and state.level < rule.min_level:
        return False
    if rule.HasField("max_level") and state.level > rule.max_level:
        return False
    if any(stage not in state.stage for stage in rule.stage):
        return False
    return not any(stage in state.stage for stage in rule.not_stage)


class _Entry(NamedTuple):
    position: int
    message: Any
    kind: str
    name: str
    bottoms: List[str]
    tops: List[str]


class _GraphBuilder:
    def __init__(self, source: str, lines: Sequence[int]) -> None:
        self.source = source
        self.lines = lines

    # -- entries -------------------------------------------------------------------------
    def _entries(self, net):
        """(file position, layer message, normalised type) of the layers the TEST net has."""
        if len(net.layer) and len(net.layers):
            raise ModelError(f"{self.source}: the net uses both 'layer' and the legacy 'layers' "
                             "entries; expected one form (Caffe refuses the mix too)")
        v1 = not len(net.layer)
        entries = net.layers if v1 else net.layer
        state = message_class("NetState")()
        state.CopyFrom(net.state)
        state.phase = 1  # TEST: inference, whatever the file says
        kept = []
        for position, entry in enumerate(entries):
            if len(entry.include) and len(entry.exclude):
                raise ModelError(f"{self._where_raw(entry, position)}: has both include and "
                                 "exclude rules; expected one kind (as Caffe requires)")
            if len(entry.include):
                if not any(_state_meets_rule(state, rule) for rule in entry.include):
                    continue
            elif any(_state_meets_rule(state, rule) for rule in entry.exclude):
                continue
            if v1:
                enum = _enum_name(entry, "type")
                kind = V1_TYPE_NAMES.get(enum, enum)
            else:
                kind = entry.type
            kept.append(_Entry(position, entry, kind, entry.name, list(entry.bottom),
                               list(entry.top)))
        return kept

    def _line(self, position: int) -> Optional[int]:
        return self.lines[position] if position < len(self.lines) else None

    def _where_raw(self, entry, position: int) -> str:
        line = self._line(position)
        at = f"{self.source}:{line}" if line else self.source
        return f"{at}: layer {entry.name!r} (entry {position})"

    def check_type_at(self, net, position: int) -> None:
        """Refuse the entry at file ``position`` if it names a type we lack (and has one)."""
        for index, entry in enumerate(self._entries(net)):
            if entry.position == position and entry.kind:
                self._check_type(entry, index)

    def _check_type(self, entry: _Entry, index: int) -> None:
        kind = entry.kind
        if kind in SUPPORTED_TYPES:
            return
        line = self._line(entry.position)
        at = f"{self.source}:{line}" if line else self.source
        where = f"{at}: layer {entry.name!r} (index {index})"
        if not kind:
            raise ModelError(f"{where} has no type; expected one of {', '.join(SUPPORTED_TYPES)}")
        if kind in _DATA_TYPES:
            raise ModelError(
                f"{where} has type {kind!r}, which reads training data; expected a deploy "
                "prototxt whose input is an Input layer or 'input:' with 'input_shape'")
        lowered = {name.lower(): name for name in SUPPORTED_TYPES}
        close = difflib.get_close_matches(kind.lower(), lowered, n=1)
        hint = f" (did you mean {lowered[close[0]]!r}?)" if close else ""
        raise ModelError(f"{where} has unsupported type {kind!r}{hint}; supported types: "
                         f"{', '.join(SUPPORTED_TYPES)}")

    # -- build ---------------------------------------------------------------------------
    def build(self, net, name: str) -> Graph:
        self.tensors: Dict[str, TensorInfo] = {}
        self.current: Dict[str, str] = {}  # Caffe blob name -> our unique tensor name
        self.producer_index: Dict[str, int] = {}
        inputs = self._legacy_inputs(net)
        entries = self._entries(net)
        future: Dict[str, List[Tuple[int, str]]] = {}
        for index, entry in enumerate(entries):
            for top in entry.tops:
                future.setdefault(top, []).append((index, entry.name))
        layers: List[Layer] = []
        names: Dict[str, int] = {}
        for index, entry in enumerate(entries):
            self._check_type(entry, index)
            kind = entry.kind
            layer_name = entry.name or f"layer{index}"
            line = self._line(entry.position)
            where = (f"{self.source}:{line}: " if line else f"{self.source}: ") + \
                f"layer {layer_name!r} (index {index})"
            if layer_name in names:
                raise ModelError(f"{where}: the name is already used by the layer at index "
                                 f"{names[layer_name]}; expected unique layer names (weights "
                                 "are matched by layer name)")
            names[layer_name] = index
            self._check_arity(where, kind, entry)
            params = _params(where, kind, entry.message)
            bottoms = tuple(self._resolve(where, blob, future, index) for blob in entry.bottoms)
            tops, in_place = self._name_tops(where, layer_name, entry)
            layer = Layer(index=index, name=layer_name, type=kind, bottoms=bottoms, tops=tops,
                          params=params, source_line=line, in_place=in_place,
                          fused=in_place)
            try:
                out = shapes.output_shapes(layer, [self.tensors[b].shape for b in bottoms])
            except ModelError as exc:
                # same "file:line: layer 'x' (index i)" form as the reader's own messages
                message, prefix = str(exc), layer.where()
                if message.startswith(prefix):
                    message = where + message[len(prefix):]
                raise ModelError(message) from None
            for blob, top, shape in zip(entry.tops, tops, out):
                self.tensors[top] = TensorInfo(top, tuple(int(d) for d in shape))
                self.current[blob] = top
            if kind == "Input":
                inputs.extend(tops)
            layers.append(layer)
        if not layers:
            raise ModelError(f"{self.source}: the net has no layers; expected at least one "
                             "'layer { ... }' entry")
        consumed = {b for layer in layers for b in layer.bottoms}
        outputs = tuple(t for layer in layers for t in layer.tops if t not in consumed)
        return Graph(name=name, layers=tuple(layers), tensors=dict(self.tensors),
                     inputs=tuple(inputs), outputs=outputs, source=self.source)

    def _legacy_inputs(self, net) -> List[str]:
        names = list(net.input)
        dims = list(net.input_dim)
        declared = list(net.input_shape)
        if not names:
            if dims or declared:
                raise ModelError(f"{self.source}: 'input_dim'/'input_shape' without an 'input:' "
                                 "name; expected 'input: \"data\"' before them")
            return []
        if declared and dims:
            raise ModelError(f"{self.source}: both 'input_shape' and 'input_dim' given; "
                             "expected one of them")
        if declared:
            if len(declared) != len(names):
                raise ModelError(f"{self.source}: {len(names)} 'input:' names but "
                                 f"{len(declared)} 'input_shape' entries; expected one each")
            found = [tuple(shape.dim) for shape in declared]
        else:
            if len(dims) != 4 * len(names):
                raise ModelError(f"{self.source}: {len(names)} 'input:' names need "
                                 f"{4 * len(names)} 'input_dim' values (N, C, H, W each); "
                                 f"found {len(dims)}")
            found = [tuple(dims[4 * i:4 * i + 4]) for i in range(len(names))]
        for blob, shape in zip(names, found):
            _check_shape(f"{self.source}: input {blob!r}", shape)
            if blob in self.current:
                raise ModelError(f"{self.source}: input {blob!r} is declared twice; expected "
                                 "unique input names")
            self.tensors[blob] = TensorInfo(blob, shape)
            self.current[blob] = blob
        return names

    def _check_arity(self, where: str, kind: str, entry: _Entry) -> None:
        min_b, max_b, min_t, max_t = _ARITY[kind]
        for what, found, low, high in (("bottom", len(entry.bottoms), min_b, max_b),
                                       ("top", len(entry.tops), min_t, max_t)):
            if found < low or (high is not None and found > high):
                want = (f"{low}" if low == high else
                        f"at least {low}" if high is None else f"{low} to {high}")
                raise ModelError(f"{where}: {kind} has {found} {what}(s); expected {want}")

    def _resolve(self, where: str, blob: str, future, index: int) -> str:
        if blob in self.current:
            return self.current[blob]
        later = next((p for p in future.get(blob, ()) if p[0] > index), None)
        known = sorted(self.current)
        if later is None and any(p[0] == index for p in future.get(blob, ())):
            # in place (top == bottom) with nothing earlier producing the bottom
            raise ModelError(
                f"{where}: bottom {blob!r} is not produced by any earlier layer or input, and "
                f"this layer works in place (its top is its bottom), so it needs an earlier "
                f"producer of {blob!r}; expected one of {', '.join(known) or '(none)'}")
        if later:
            raise ModelError(
                f"{where}: bottom {blob!r} is produced only later, by layer {later[1]!r} "
                f"(index {later[0]}); expected a tensor produced by an earlier layer or an "
                "input (layers run in file order; a cycle cannot run)")
        close = difflib.get_close_matches(blob, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ModelError(f"{where}: bottom {blob!r} is not produced by any earlier layer or "
                         f"input{hint}; expected one of {', '.join(known) or '(none)'}")

    def _name_tops(self, where: str, layer_name: str, entry: _Entry
                   ) -> Tuple[Tuple[str, ...], bool]:
        tops: List[str] = []
        in_place = False
        for position, blob in enumerate(entry.tops):
            if position < len(entry.bottoms) and entry.bottoms[position] == blob:
                in_place = True
                tops.append(self._fresh(f"{layer_name}:{position}"))
            elif blob in self.current:
                raise ModelError(f"{where}: top {blob!r} is already produced by another layer "
                                 "or input; expected a new name, or the bottom's name at the "
                                 "same position for an in-place layer")
            elif blob in entry.tops[:position]:
                raise ModelError(f"{where}: top {blob!r} is listed twice; expected unique tops")
            else:
                tops.append(self._fresh(blob))
        return tuple(tops), in_place

    def _fresh(self, base: str) -> str:
        candidate, suffix = base, 1
        while candidate in self.tensors:
            suffix += 1
            candidate = f"{base}~{suffix}"
        # reserve the name so that a second top of the same layer cannot take it
        self.tensors[candidate] = TensorInfo(candidate, ())
        return candidate


# ---------------------------------------------------------------------------------------------
# Per-type parameters, checked as Caffe's LayerSetUp does


def _check_shape(where: str, shape: Shape) -> None:
    if not shape or any(d <= 0 for d in shape):
        raise ModelError(f"{where}: shape {list(shape)}; expected positive dimensions")


def _pair(where: str, message, what: str, single: str, h: str, w: str,
          default: Optional[int]) -> Tuple[int, int]:
    """Caffe's ``kernel_size`` / ``kernel_h``+``kernel_w`` rule, also for pad and stride."""
    values = list(getattr(message, single))
    has_h, has_w = _has(message, h), _has(message, w)
    if has_h or has_w:
        if values:
            raise ModelError(f"{where}: both {single} and {h}/{w} given; expected either "
                             f"{single} or {h} and {w}")
        if not (has_h and has_w) and default is None:
            raise ModelError(f"{where}: only one of {h}/{w} given; expected both")
        return (int(getattr(message, h)), int(getattr(message, w)))
    if not values:
        if default is None:
            raise ModelError(f"{where}: no {what} given; expected {single} or {h} and {w}")
        return (default, default)
    if len(values) == 1:
        return (int(values[0]), int(values[0]))
    if len(values) == 2:
        return (int(values[0]), int(values[1]))
    raise ModelError(f"{where}: {len(values)} {single} values; expected 1 or 2 (2-D only)")


def _positive_pair(where: str, what: str, pair: Tuple[int, int]) -> Tuple[int, int]:
    if min(pair) < 1:
        raise ModelError(f"{where}: {what} {pair[0]}x{pair[1]}; expected >= 1")
    return pair


def _convolution(where: str, entry) -> ConvolutionParams:
    p = entry.convolution_param
    if not _has(entry, "convolution_param") or not p.num_output:
        raise ModelError(f"{where}: Convolution needs convolution_param with num_output >= 1")
    if p.axis != 1:
        raise ModelError(f"{where}: convolution axis {p.axis}; expected 1 (NCHW)")
    kernel = _positive_pair(where, "kernel", _pair(where, p, "kernel size", "kernel_size",
                                                   "kernel_h", "kernel_w", None))
    stride = _positive_pair(where, "stride", _pair(where, p, "stride", "stride", "stride_h",
                                                   "stride_w", 1))
    pad = _pair(where, p, "pad", "pad", "pad_h", "pad_w", 0)
    dilation = list(p.dilation)
    if len(dilation) > 2:
        raise ModelError(f"{where}: {len(dilation)} dilation values; expected 1 or 2")
    dil = (tuple(dilation) * 2)[:2] if dilation else (1, 1)
    _positive_pair(where, "dilation", dil)
    if p.group < 1:
        raise ModelError(f"{where}: group {p.group}; expected >= 1")
    return ConvolutionParams(num_output=int(p.num_output), kernel=kernel, stride=stride,
                             pad=pad, dilation=(int(dil[0]), int(dil[1])), group=int(p.group),
                             bias_term=bool(p.bias_term))


def _pooling(where: str, entry) -> PoolingParams:
    p = entry.pooling_param
    method = _enum_name(p, "pool")
    if method not in ("MAX", "AVE"):
        raise ModelError(f"{where}: pooling method {method}; expected MAX or AVE")
    round_mode = _enum_name(p, "round_mode")
    if _has(p, "ceil_mode"):  # the forks' spelling of round_mode
        fork_mode = "CEIL" if p.ceil_mode else "FLOOR"
        if _has(p, "round_mode") and fork_mode != round_mode:
            raise ModelError(f"{where}: round_mode {round_mode} and ceil_mode "
                             f"{str(p.ceil_mode).lower()} disagree; expected one of them")
        round_mode = fork_mode
    if p.global_pooling:
        if list(p.kernel_size) or _has(p, "kernel_h") or _has(p, "kernel_w"):
            raise ModelError(f"{where}: global_pooling with a kernel size; expected no kernel "
                             "(Caffe: 'With Global_pooling: true Filter size cannot specified')")
        pad = _pair(where, p, "pad", "pad", "pad_h", "pad_w", 0)
        stride = _pair(where, p, "stride", "stride", "stride_h", "stride_w", 1)
        if pad != (0, 0) or stride != (1, 1):
            raise ModelError(f"{where}: global_pooling with pad {pad} / stride {stride}; "
                             "expected pad 0 and stride 1 (as Caffe requires)")
        return PoolingParams(method=method, kernel=(0, 0), global_pooling=True,
                             round_mode=round_mode)
    kernel = _positive_pair(where, "kernel", _pair(where, p, "kernel size", "kernel_size",
                                                   "kernel_h", "kernel_w", None))
    stride = _positive_pair(where, "stride", _pair(where, p, "stride", "stride", "stride_h",
                                                   "stride_w", 1))
    pad = _pair(where, p, "pad", "pad", "pad_h", "pad_w", 0)
    if pad[0] >= kernel[0] or pad[1] >= kernel[1]:
        raise ModelError(f"{where}: pad {pad} is not smaller than kernel {kernel}; expected "
                         "pad < kernel (as Caffe requires)")
    return PoolingParams(method=method, kernel=kernel, stride=stride, pad=pad,
                         round_mode=round_mode)


def _lrn(where: str, entry) -> LRNParams:
    p = entry.lrn_param
    if p.local_size % 2 == 0:
        raise ModelError(f"{where}: LRN local_size {p.local_size}; expected an odd number")
    return LRNParams(local_size=int(p.local_size), alpha=float(p.alpha), beta=float(p.beta),
                     k=float(p.k), norm_region=_enum_name(p, "norm_region"))


def _inner_product(where: str, entry) -> InnerProductParams:
    p = entry.inner_product_param
    if not p.num_output:
        raise ModelError(f"{where}: InnerProduct needs inner_product_param with num_output >= 1")
    if p.transpose:
        # it only changes how the weight blob is stored, but every weight consumer here
        # (caffemodel loading, ONNX export) assumes Caffe's default (num_output, K) layout
        raise ModelError(f"{where}: InnerProduct with transpose: true is not supported; "
                         "expected transpose false (weights stored as num_output x K)")
    return InnerProductParams(num_output=int(p.num_output), bias_term=bool(p.bias_term),
                              axis=int(p.axis))


def _concat(where: str, entry) -> ConcatParams:
    p = entry.concat_param
    if _has(p, "concat_dim"):
        if _has(p, "axis"):
            raise ModelError(f"{where}: both axis and concat_dim given; expected one")
        return ConcatParams(axis=int(p.concat_dim))
    return ConcatParams(axis=int(p.axis))


def _eltwise(where: str, entry) -> EltwiseParams:
    p = entry.eltwise_param
    operation = _enum_name(p, "operation")
    if len(p.coeff) and operation != "SUM":
        raise ModelError(f"{where}: coeff given for Eltwise {operation}; expected coeff only "
                         "with operation SUM")
    return EltwiseParams(operation=operation, coeff=tuple(float(c) for c in p.coeff))


def _input(where: str, entry) -> InputParams:
    declared = [tuple(int(d) for d in shape.dim) for shape in entry.input_param.shape]
    if not declared:
        raise ModelError(f"{where}: Input layer without input_param {{ shape {{ dim ... }} }}; "
                         "expected the input shape")
    if len(declared) not in (1, len(entry.top)):
        raise ModelError(f"{where}: {len(declared)} shapes for {len(entry.top)} tops; expected "
                         "one shape, or one per top")
    for shape in declared:
        _check_shape(where, shape)
    top_shapes = tuple(declared) if len(declared) > 1 else ()
    return InputParams(shape=declared[0], top_shapes=top_shapes)


def _params(where: str, kind: str, entry) -> LayerParams:
    if kind == "Convolution":
        return _convolution(where, entry)
    if kind == "Pooling":
        return _pooling(where, entry)
    if kind == "LRN":
        return _lrn(where, entry)
    if kind == "InnerProduct":
        return _inner_product(where, entry)
    if kind == "Concat":
        return _concat(where, entry)
    if kind == "Eltwise":
        return _eltwise(where, entry)
    if kind == "Input":
        return _input(where, entry)
    if kind == "BatchNorm":
        p = entry.batch_norm_param
        stats = bool(p.use_global_stats) if _has(p, "use_global_stats") else None
        return BatchNormParams(eps=float(p.eps), use_global_stats=stats)
    if kind == "Scale":
        p = entry.scale_param
        return ScaleParams(bias_term=bool(p.bias_term), axis=int(p.axis),
                           num_axes=int(p.num_axes))
    if kind == "Softmax":
        return SoftmaxParams(axis=int(entry.softmax_param.axis))
    if kind == "Flatten":
        if "flatten_param" not in entry.DESCRIPTOR.fields_by_name:  # V1: no parameters
            return FlattenParams()
        p = entry.flatten_param
        return FlattenParams(axis=int(p.axis), end_axis=int(p.end_axis))
    if kind == "Dropout":
        return DropoutParams(ratio=float(entry.dropout_param.dropout_ratio))
    if kind == "ReLU":
        return ReLUParams(negative_slope=float(entry.relu_param.negative_slope))
    if kind == "Split":
        return SplitParams()
    raise ModelError(f"{where}: unsupported type {kind!r}")  # pragma: no cover - checked

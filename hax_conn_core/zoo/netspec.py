"""A small builder that writes Caffe deploy prototxt text, one layer per call.

The zoo's networks are written as Python (loops for repeated blocks) with :class:`NetBuilder`
and emitted as the text format of Caffe's ``NetParameter`` (``layer { name: ... type: ...
bottom: ... top: ... <type>_param { ... } }``). Only the layer types of our subset are offered
(docs/conventions.md): Input, Convolution, Pooling, ReLU, LRN, InnerProduct, BatchNorm, Scale,
Eltwise, Concat, Dropout, Softmax and Flatten.

Each method returns the name of the tensor it produces, so that blocks chain naturally. In-place
layers (ReLU, Dropout, and BatchNorm/Scale where the reference nets do so) reuse their bottom as
their top, as Caffe deploy files do. The builder refuses a duplicate layer name or a bottom that no
earlier layer produced: those are mistakes in a zoo builder, hence :class:`InternalError`.

Output is deterministic: fields in a fixed order, floats written with ``repr`` (shortest
round-trip form), no timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Set, Tuple, Union

from hax_conn_core.errors import InternalError

Scalar = Union[bool, int, float, str, "CaffeEnum"]
IntPair = Union[int, Tuple[int, int]]


class CaffeEnum(str):
    """A Caffe enum value (``MAX``, ``SUM``...): written bare, not quoted."""


@dataclass(frozen=True)
class Field:
    """One ``key: value`` entry, or a nested message ``key { ... }`` when value is a tuple."""

    key: str
    value: Union[Scalar, Tuple["Field", ...]]


@dataclass(frozen=True)
class LayerSpec:
    """One ``layer { ... }`` entry of a prototxt."""

    name: str
    type: str
    bottoms: Tuple[str, ...]
    tops: Tuple[str, ...]
    params: Tuple[Field, ...] = ()  # e.g. (Field("convolution_param", (...)),)


def _pair(value: IntPair) -> Tuple[int, int]:
    if isinstance(value, tuple):
        return value
    return (value, value)


def _format_scalar(value: Scalar) -> str:
    if isinstance(value, CaffeEnum):
        return str(value)
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _format_fields(fields: Sequence[Field], indent: int) -> List[str]:
    pad = "  " * indent
    lines = []
    for field in fields:
        if isinstance(field.value, tuple):
            lines.append(f"{pad}{field.key} {{")
            lines.extend(_format_fields(field.value, indent + 1))
            lines.append(f"{pad}}}")
        else:
            lines.append(f"{pad}{field.key}: {_format_scalar(field.value)}")
    return lines


def _kernel_fields(prefix: str, value: IntPair, default: Optional[int]) -> List[Field]:
    """``kernel_size: k`` for square values, ``kernel_h``/``kernel_w`` otherwise.

    Fields equal to ``default`` are left out, as the reference deploy files do.
    """
    h, w = _pair(value)
    if h == w:
        if h == default:
            return []
        name = "kernel_size" if prefix == "kernel" else prefix
        return [Field(name, h)]
    return [Field(f"{prefix}_h", h), Field(f"{prefix}_w", w)]


class NetBuilder:
    """Collects layers in file order and writes them as prototxt text."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.layers: List[LayerSpec] = []
        self._layer_names: Set[str] = set()
        self._tensors: Set[str] = set()

    # -- the generic entry -------------------------------------------------------------------
    def add(self, name: str, type_: str, bottoms: Sequence[str], tops: Sequence[str],
            params: Sequence[Field] = ()) -> str:
        """Append one layer; returns its first top."""
        if name in self._layer_names:
            raise InternalError(f"{self.name}: layer name {name!r} used twice")
        for bottom in bottoms:
            if bottom not in self._tensors:
                raise InternalError(f"{self.name}: layer {name!r} reads {bottom!r}, "
                                    "which no earlier layer produces")
        self._layer_names.add(name)
        self._tensors.update(tops)
        self.layers.append(LayerSpec(name, type_, tuple(bottoms), tuple(tops), tuple(params)))
        return tops[0]

    # -- one method per layer type -------------------------------------------------------------
    def input(self, name: str, shape: Sequence[int]) -> str:
        dims = tuple(Field("dim", int(d)) for d in shape)
        return self.add(name, "Input", [], [name],
                        [Field("input_param", (Field("shape", dims),))])

    def conv(self, name: str, bottom: str, num_output: int, kernel: IntPair, *,
             stride: IntPair = 1, pad: IntPair = 0, group: int = 1, dilation: int = 1,
             bias: bool = True, top: Optional[str] = None) -> str:
        fields = [Field("num_output", num_output)]
        if not bias:
            fields.append(Field("bias_term", False))
        fields += _kernel_fields("pad", pad, 0)
        fields += _kernel_fields("kernel", kernel, None)
        fields += _kernel_fields("stride", stride, 1)
        if group != 1:
            fields.append(Field("group", group))
        if dilation != 1:
            fields.append(Field("dilation", dilation))
        return self.add(name, "Convolution", [bottom], [top or name],
                        [Field("convolution_param", tuple(fields))])

    def relu(self, name: str, blob: str) -> str:
        """In place, as every reference deploy file writes it."""
        return self.add(name, "ReLU", [blob], [blob])

    def pool(self, name: str, bottom: str, method: str, kernel: Optional[int] = None, *,
             stride: int = 1, pad: int = 0, global_pooling: bool = False) -> str:
        fields = [Field("pool", CaffeEnum(method))]
        if global_pooling:
            fields.append(Field("global_pooling", True))
        else:
            if kernel is None:
                raise InternalError(f"{self.name}: pooling {name!r} needs a kernel size")
            fields.append(Field("kernel_size", kernel))
            fields += _kernel_fields("stride", stride, 1)
            fields += _kernel_fields("pad", pad, 0)
        return self.add(name, "Pooling", [bottom], [name],
                        [Field("pooling_param", tuple(fields))])

    def lrn(self, name: str, bottom: str, local_size: int, alpha: float, beta: float) -> str:
        fields = (Field("local_size", local_size), Field("alpha", alpha), Field("beta", beta))
        return self.add(name, "LRN", [bottom], [name], [Field("lrn_param", fields)])

    def inner_product(self, name: str, bottom: str, num_output: int) -> str:
        return self.add(name, "InnerProduct", [bottom], [name],
                        [Field("inner_product_param", (Field("num_output", num_output),))])

    def batch_norm(self, name: str, bottom: str, *, top: Optional[str] = None,
                   eps: Optional[float] = None) -> str:
        """Inference BatchNorm (running statistics); in place unless ``top`` is given."""
        fields = [Field("use_global_stats", True)]
        if eps is not None:
            fields.append(Field("eps", eps))
        return self.add(name, "BatchNorm", [bottom], [top or bottom],
                        [Field("batch_norm_param", tuple(fields))])

    def scale(self, name: str, blob: str) -> str:
        """Per-channel gamma and beta, in place: the learnable half of a Caffe batch norm."""
        return self.add(name, "Scale", [blob], [blob],
                        [Field("scale_param", (Field("bias_term", True),))])

    def eltwise_sum(self, name: str, bottoms: Sequence[str],
                    coeff: Optional[Sequence[float]] = None) -> str:
        fields = [Field("operation", CaffeEnum("SUM"))]
        fields += [Field("coeff", float(c)) for c in coeff or ()]
        return self.add(name, "Eltwise", bottoms, [name],
                        [Field("eltwise_param", tuple(fields))])

    def concat(self, name: str, bottoms: Sequence[str]) -> str:
        return self.add(name, "Concat", bottoms, [name],
                        [Field("concat_param", (Field("axis", 1),))])

    def dropout(self, name: str, blob: str, ratio: float) -> str:
        """In place; a no-op at inference, kept because the reference deploy files keep it."""
        return self.add(name, "Dropout", [blob], [blob],
                        [Field("dropout_param", (Field("dropout_ratio", ratio),))])

    def softmax(self, name: str, bottom: str) -> str:
        return self.add(name, "Softmax", [bottom], [name])

    def flatten(self, name: str, bottom: str) -> str:
        return self.add(name, "Flatten", [bottom], [name])

    # -- composite units used by several nets --------------------------------------------------
    def conv_bn(self, name: str, bottom: str, num_output: int, kernel: IntPair, *,
                stride: IntPair = 1, pad: IntPair = 0, group: int = 1, relu: bool = True,
                bn_name: str, scale_name: str, relu_name: str = "",
                bn_top: Optional[str] = None, eps: Optional[float] = None) -> str:
        """Bias-free Convolution, BatchNorm, Scale and (optionally) ReLU: 3 or 4 layers.

        With ``bn_top`` the BatchNorm writes a new tensor (shicai's MobileNet and DenseNet);
        without, BatchNorm, Scale and ReLU all work in place on the convolution's output
        (KaimingHe's ResNets, the Caffe Inception-v4 ports).
        """
        out = self.conv(name, bottom, num_output, kernel, stride=stride, pad=pad, group=group,
                        bias=False)
        out = self.batch_norm(bn_name, out, top=bn_top, eps=eps)
        self.scale(scale_name, out)
        if relu:
            self.relu(relu_name, out)
        return out

    # -- output --------------------------------------------------------------------------------
    def to_prototxt(self, header: Sequence[str] = ()) -> str:
        """The whole net as prototxt text; ``header`` lines are written as ``#`` comments."""
        lines = [f"# {line}".rstrip() for line in header]
        lines.append(f"name: {_format_scalar(self.name)}")
        for layer in self.layers:
            lines.append("layer {")
            lines.append(f"  name: {_format_scalar(layer.name)}")
            lines.append(f"  type: {_format_scalar(layer.type)}")
            lines += [f"  bottom: {_format_scalar(b)}" for b in layer.bottoms]
            lines += [f"  top: {_format_scalar(t)}" for t in layer.tops]
            lines += _format_fields(layer.params, 1)
            lines.append("}")
        return "\n".join(lines) + "\n"

"""Weights from (and to) a binary ``.caffemodel`` (a serialised NetParameter with blobs)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from hax_conn_core.errors import ModelError
from hax_conn_core.graph.model import (
    ConvolutionParams, Graph, InnerProductParams, Layer, ScaleParams)

if TYPE_CHECKING:  # numpy is imported where used
    import numpy


def _blob_array(blob, where: str):
    import numpy as np

    if len(blob.double_data):
        data = np.asarray(blob.double_data, dtype=np.float64)
    else:
        data = np.asarray(blob.data, dtype=np.float32)
    if blob.HasField("shape"):
        shape: Tuple[int, ...] = tuple(int(d) for d in blob.shape.dim)
    else:  # legacy 4-D num/channels/height/width
        shape = (blob.num, blob.channels, blob.height, blob.width)
    if int(np.prod(shape)) != data.size:
        raise ModelError(f"{where}: blob shape {shape} holds {int(np.prod(shape))} values but "
                         f"{data.size} are stored; expected equal counts")
    return data.reshape(shape)


def expected_blob_shapes(graph: Graph, layer: Layer) -> List[Tuple[int, ...]]:
    """The blob shapes Caffe gives ``layer`` (conv: OIHW + bias; BN: mean, var, factor)."""
    p = layer.params
    bottom = graph.tensors[layer.bottoms[0]].shape if layer.bottoms else ()
    if isinstance(p, ConvolutionParams):
        shapes = [(p.num_output, bottom[1] // p.group) + tuple(p.kernel)]
        return shapes + ([(p.num_output,)] if p.bias_term else [])
    if isinstance(p, InnerProductParams):
        inner = 1
        for d in bottom[p.axis % len(bottom):]:
            inner *= d
        return [(p.num_output, inner)] + ([(p.num_output,)] if p.bias_term else [])
    if layer.type == "BatchNorm":
        return [(bottom[1],), (bottom[1],), (1,)]
    if isinstance(p, ScaleParams) and len(layer.bottoms) == 1:
        axis = p.axis % len(bottom)
        end = len(bottom) if p.num_axes == -1 else axis + p.num_axes
        shape = tuple(bottom[axis:end])
        return [shape] + ([shape] if p.bias_term else [])
    return []


def load_caffemodel_weights(path: Union[str, Path], graph: Optional[Graph] = None
                            ) -> Dict[str, List["numpy.ndarray"]]:
    """Layer name -> its blobs in Caffe order (conv: [W (OIHW), b]; BN: [mean, var, factor];
    Scale: [gamma, beta]).

    With ``graph``, each blob is checked against (and reshaped to, when only the legacy 4-D
    form differs) the shape the graph's layer expects; layers the graph lacks are refused.
    """
    from hax_conn_core.graph.caffe_schema import message_class
    from google.protobuf.message import DecodeError

    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the caffemodel: {exc.strerror or exc}") from None
    net = message_class("NetParameter")()
    try:
        net.ParseFromString(raw)
    except DecodeError as exc:
        raise ModelError(f"{path}: not a binary caffemodel (NetParameter): {exc}") from None
    entries = list(net.layer) or list(net.layers)
    weights: Dict[str, List] = {}
    for position, entry in enumerate(entries):
        if not len(entry.blobs):
            continue
        where = f"{path}: layer {entry.name!r} (entry {position})"
        blobs = [_blob_array(blob, f"{where} blob {i}") for i, blob in enumerate(entry.blobs)]
        if graph is not None:
            blobs = _fit(graph, entry.name, blobs, where)
        weights[entry.name] = blobs
    return weights


def _fit(graph: Graph, name: str, blobs: List, where: str) -> List:
    try:
        layer = graph.layer(name)
    except ModelError:
        raise ModelError(f"{where}: the graph {graph.name!r} has no layer of that name; "
                         "expected the caffemodel of this prototxt") from None
    expected = expected_blob_shapes(graph, layer)
    if len(blobs) != len(expected):
        raise ModelError(f"{where}: {len(blobs)} blobs; {layer.type} layer {layer.name!r} "
                         f"expects {len(expected)} ({expected})")
    fitted = []
    for i, (blob, shape) in enumerate(zip(blobs, expected)):
        if tuple(blob.shape) != shape:
            # Only legacy 4-D padding ((1, 1, O, K) for (O, K)) is reshaped: the same number
            # of values in another arrangement (a transposed matrix) is a different network.
            if _strip_leading_ones(tuple(blob.shape)) != _strip_leading_ones(shape):
                raise ModelError(f"{where} blob {i}: the caffemodel's shape "
                                 f"{tuple(blob.shape)} does not match {shape}, what the "
                                 f"prototxt's {layer.type} layer {layer.name!r} expects")
            blob = blob.reshape(shape)
        fitted.append(blob)
    return fitted


def _strip_leading_ones(shape: Tuple[int, ...]) -> Tuple[int, ...]:
    while shape and shape[0] == 1:
        shape = shape[1:]
    return shape


def write_caffemodel(path: Union[str, Path], weights: Mapping[str, Sequence["numpy.ndarray"]],
                     graph: Optional[Graph] = None) -> None:
    """Write ``weights`` (layer name -> blobs in Caffe order, as load_caffemodel_weights
    gives them) as a binary caffemodel, one LayerParameter per layer with its blobs' N-D shapes
    (and, given ``graph``, the net's name and each layer's type)."""
    import numpy as np

    from hax_conn_core.files import atomic_write
    from hax_conn_core.graph.caffe_schema import message_class

    net = message_class("NetParameter")()
    if graph is not None:
        net.name = graph.name
    for name, blobs in weights.items():
        entry = net.layer.add(name=name)
        if graph is not None:
            entry.type = graph.layer(name).type
        for array in blobs:
            array = np.asarray(array, np.float32)
            blob = entry.blobs.add()
            blob.shape.dim.extend(int(d) for d in array.shape)
            blob.data.extend(array.reshape(-1).tolist())
    try:
        atomic_write(path, net.SerializeToString())
    except OSError as exc:
        raise ModelError(f"{path}: cannot write the caffemodel: {exc.strerror or exc}") from None

"""The ONNX frontend: an ``.onnx`` file as the typed graph (docs/graph.md, "Frontends").

:mod:`.reader` (``load_onnx``), :mod:`.ops` (per op type: costs, fusion rule, DLA facts),
:mod:`.extract` (``extract_range``: a range of layers as its own ONNX model). Importing this
package loads no onnx; the functions do.
"""

from hax_conn_core.graph.frontends.onnx.reader import (  # noqa: F401
    OPSET_MAX, OPSET_MIN, load_onnx, parse_input_shape)
from hax_conn_core.graph.frontends.onnx.extract import extract_range  # noqa: F401

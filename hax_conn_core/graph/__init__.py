"""The model graph: reading Caffe prototxts, shapes, costs, cut points and layer groups.

Modules: :mod:`.model` (types), :mod:`.prototxt` (reader), :mod:`.shapes`, :mod:`.stats`,
:mod:`.cuts`, :mod:`.grouping`, :mod:`.capabilities`, :mod:`.subgraph`, :mod:`.caffemodel`.
Only the plain types are imported here; import the others from their modules.
"""

from hax_conn_core.graph.model import (  # noqa: F401
    SUPPORTED_TYPES, BatchNormParams, ConcatParams, ConvolutionParams, DropoutParams,
    EltwiseParams, FlattenParams, Graph, InnerProductParams, InputParams, Layer, LayerParams,
    LayerStats, LRNParams, PoolingParams, ReLUParams, ScaleParams, SoftmaxParams, SplitParams,
    TensorInfo)

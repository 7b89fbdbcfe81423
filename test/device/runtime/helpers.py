"""What the device tests share: calibrated seeded weights and onnxruntime references.

Works with both signatures of ``graph.weights.seeded_weights`` (with a ``run`` callable that
calibrates BatchNorm, and the older one that ran onnxruntime itself), and with onnxruntime's
runner in ``runtime.backends.onnxrt`` or, before that move, ``graph.onnx_run``.
"""

import inspect

from hax_conn_core.graph.onnx_export import export
from hax_conn_core.graph.weights import seeded_weights


def seeded(graph, seed=0):
    """Seeded weights with BatchNorm statistics calibrated by onnxruntime."""
    if "run" in inspect.signature(seeded_weights).parameters:
        from hax_conn_core.runtime.backends.onnxrt import run_onnx

        return seeded_weights(graph, seed, run=run_onnx)
    return seeded_weights(graph, seed)


def onnx_runner():
    try:
        from hax_conn_core.runtime.backends.onnxrt import OnnxRunner
    except ImportError:
        from hax_conn_core.graph.onnx_run import OnnxRunner
    return OnnxRunner


def ort(graph, weights, inputs, **kwargs):
    """onnxruntime fp32 (basic optimisation: unfused kernels) on the range ``kwargs`` name."""
    external = {}
    model = export(graph, weights, check=False, external=external, **kwargs)
    return onnx_runner()(model, external=external, optimize=False).run(inputs)

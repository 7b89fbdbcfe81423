"""Frontends: readers that turn a model file into the typed graph (:mod:`..model`).

``caffe`` (prototxt, optional .caffemodel) and ``onnx``. Both give the same ``Graph``; each
sets ``Graph.frontend`` and the fusion rule (``Layer.fused``) the cut rule reads.
:func:`hax_conn_core.graph.resolve.resolve_model` picks one for a model id or path.
"""

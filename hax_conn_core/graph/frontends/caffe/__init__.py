"""The Caffe frontend: a ``.prototxt`` (and optionally a ``.caffemodel``) as the typed graph.

:mod:`.prototxt` reads the network (``load_prototxt``, ``parse_prototxt``; also reachable as
``hax_conn_core.graph.prototxt``). Layer index = the entry's position among the prototxt's
``layer`` entries; an in-place layer (top == bottom) is ``Layer.fused`` with its producer.
The ``.caffemodel`` reader stays :mod:`hax_conn_core.graph.caffemodel`. Importing this package
loads no protobuf; the modules do.
"""

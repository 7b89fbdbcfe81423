"""The Caffe prototxt reader's old import path; the reader is
:mod:`hax_conn_core.graph.frontends.caffe.prototxt` (docs/graph.md, "Frontends")."""

from hax_conn_core.graph.frontends.caffe.prototxt import *  # noqa: F401,F403
from hax_conn_core.graph.frontends.caffe.prototxt import (  # noqa: F401
    load_prototxt, parse_prototxt)

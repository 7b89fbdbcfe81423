"""`hax_conn_core.graph` imports light and reaches its main functions lazily."""

import subprocess
import sys

PROBE = """
import sys
import hax_conn_core.graph as graph
light = not any(m in ('google.protobuf', 'yaml', 'numpy') for m in sys.modules)
from hax_conn_core.graph import load_prototxt, group_layers, LayerGroup, valid_cuts
from hax_conn_core.graph.prototxt import load_prototxt as direct
print(light, load_prototxt is direct, LayerGroup.__name__)
"""


def test_package_is_light_and_lazy():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "LayerGroup"]

"""Tiny prototxts for the profiler tests (written to files, so that the CLI takes them)."""

from test.core.graph.nets import conv, input_layer, layer, relu

#: data -> conv -> relu -> conv -> relu -> pool -> fc -> prob: runs in a millisecond.
SMALL = (input_layer((1, 3, 16, 16)) + conv("c1", "data", num_output=8) + relu("r1", "c1") +
         conv("c2", "c1", num_output=8) + relu("r2", "c2") +
         conv("c3", "c2", num_output=8) + relu("r3", "c3") +
         layer("pool", "Pooling", ["c3"], ["pool"],
               "pooling_param { pool: MAX kernel_size: 2 stride: 2 }") +
         layer("fc", "InnerProduct", ["pool"], ["fc"], "inner_product_param { num_output: 10 }") +
         layer("prob", "Softmax", ["fc"], ["prob"]))

#: Softmax only: Xavier's DLA runs none of it.
SOFTMAX_ONLY = input_layer((1, 10, 1, 1)) + layer("prob", "Softmax", ["data"], ["prob"])


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / f"{name}.prototxt"
    path.write_text(text, encoding="utf-8")
    return str(path)

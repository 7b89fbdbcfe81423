"""The ONNX frontend: reading, cuts over skip connections, groups, costs, DLA rules, and
split execution of extracted ranges on onnxruntime (docs/graph.md, "Frontends")."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402

from hax_conn_core.errors import ModelError  # noqa: E402
from hax_conn_core.graph.capabilities import unsupported_layers  # noqa: E402
from hax_conn_core.graph.cuts import cut_report, valid_cuts  # noqa: E402
from hax_conn_core.graph.frontends.onnx import OPSET_MAX, OPSET_MIN, load_onnx  # noqa: E402
from hax_conn_core.graph.grouping import group_layers  # noqa: E402
from hax_conn_core.graph.onnx_export import export  # noqa: E402
from hax_conn_core.runtime.backends.onnxrt import run_model  # noqa: E402

from test.core.graph import onnx_nets  # noqa: E402


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    return {net: load_onnx(onnx_nets.save(build(), folder / f"{net}.onnx"))
            for net, build in onnx_nets.NETS.items()}


def _frame(net, seed=0):
    return np.random.default_rng(seed).random(onnx_nets.INPUT_SHAPES[net]).astype(np.float32)


def _max_diff(got, want):
    assert set(got) == set(want)
    return max(float(np.abs(got[name] - want[name]).max()) for name in want)


def _brute_crossing(graph, i):
    """Tensors crossing the cut after layer i, straight from the definition."""
    produced = {name: -1 for name in graph.inputs}
    for layer in graph.layers:
        for top in layer.tops:
            produced[top] = layer.index
    crossing = set()
    for layer in graph.layers[i + 1:]:
        crossing |= {b for b in layer.bottoms if produced[b] <= i}
    crossing |= {o for o in graph.outputs if produced[o] <= i}
    return crossing


@pytest.mark.parametrize("net", sorted(onnx_nets.NETS))
def test_layers_are_the_nodes_in_node_list_order(graphs, net):
    model = onnx_nets.NETS[net]()
    graph = graphs[net]
    assert [layer.name for layer in graph.layers] == [node.name for node in model.graph.node]
    assert [layer.type for layer in graph.layers] == [node.op_type for node in model.graph.node]
    assert graph.frontend == "onnx" and graph.name == net
    assert graph.shape("image") == onnx_nets.INPUT_SHAPES[net]
    initialisers = {init.name for init in model.graph.initializer}
    assert not any(b in initialisers for layer in graph.layers for b in layer.bottoms)


@pytest.mark.parametrize("net", sorted(onnx_nets.NETS))
def test_every_group_boundary_part_a_then_part_b_equals_the_whole(graphs, net):
    graph = graphs[net]
    frame = {"image": _frame(net)}
    whole = run_model(export(graph), frame)
    groups = group_layers(graph, 4)
    assert len(groups) >= 3
    for group in groups[:-1]:
        part_a = run_model(export(graph, first=0, last=group.last), frame)
        part_b = run_model(export(graph, first=group.last + 1), part_a)
        assert _max_diff(part_b, whole) <= 1e-4, (net, group)


@pytest.mark.parametrize("net", sorted(onnx_nets.NETS))
def test_every_valid_cut_splits_and_groups_chain_back_to_the_whole(graphs, net):
    graph = graphs[net]
    frame = {"image": _frame(net, seed=1)}
    whole = run_model(export(graph), frame)
    for cut in valid_cuts(graph):
        part_b = run_model(export(graph, first=cut + 1),
                           run_model(export(graph, first=0, last=cut), frame))
        assert _max_diff(part_b, whole) <= 1e-4, (net, cut)
    values = dict(frame)
    for group in group_layers(graph, 10):  # each group its own extracted model, in turn
        part = export(graph, first=group.first, last=group.last)
        values.update(run_model(part, {i.name: values[i.name] for i in part.graph.input}))
    assert _max_diff({"out": values[graph.outputs[0]]}, {"out": whole[graph.outputs[0]]}) \
        <= 1e-4


def test_extracted_parts_keep_the_users_initialisers(graphs):
    graph = graphs["classifier"]
    model = onnx_nets.classifier_net()
    original = {init.name: onnx.numpy_helper.to_array(init) for init in model.graph.initializer}
    cut = valid_cuts(graph)[len(valid_cuts(graph)) // 2]
    for part in (export(graph, first=0, last=cut), export(graph, first=cut + 1)):
        assert part.graph.initializer
        for init in part.graph.initializer:
            np.testing.assert_array_equal(onnx.numpy_helper.to_array(init),
                                          original[init.name])
        assert {n.name for n in part.graph.node} <= {n.name for n in model.graph.node}


@pytest.mark.parametrize("net", sorted(onnx_nets.NETS))
def test_cut_report_matches_the_single_crossing_tensor_definition(graphs, net):
    graph = graphs[net]
    for i, valid, tensors, why in cut_report(graph):
        crossing = _brute_crossing(graph, i)
        assert set(tensors) == crossing
        if valid:
            assert len(crossing) == 1


def test_no_cut_inside_a_residual_block_or_between_branches(graphs):
    graph = graphs["classifier"]
    cuts = set(valid_cuts(graph))
    mixed, add = graph.layer("mixed").index, graph.layer("res_add").index
    pool = graph.layer("pool1").index
    assert pool in cuts  # before the branches split
    assert not cuts & set(range(pool + 1, mixed))  # the two branches
    assert mixed in cuts  # the branches joined
    assert not cuts & set(range(mixed + 1, add))  # the skip around the residual block
    why = cut_report(graph)[graph.layer("res_bn1").index][3]
    assert "2 tensors cross it" in why and "mixed" in why


def test_conv_batchnorm_relu_are_never_cut_apart(graphs):
    graph = graphs["classifier"]
    report = cut_report(graph)
    for name in ("stem", "stem_bn"):  # one tensor crosses, but it is fused
        _, valid, tensors, why = report[graph.layer(name).index]
        assert len(tensors) == 1 and not valid
        assert "would separate fused layer" in why
    assert graph.layer("stem_bn").fused and graph.layer("stem_relu").fused
    assert not graph.layer("mixed").fused and not graph.layer("res_add").fused
    assert report[graph.layer("stem_relu").index][1]


def test_detector_skip_over_the_deep_stage(graphs):
    graph = graphs["detector"]
    cuts = set(valid_cuts(graph))
    shallow = graph.layer("c2_relu").index
    fuse = graph.layer("fuse").index
    assert shallow in cuts and fuse in cuts
    assert not cuts & set(range(shallow + 1, fuse))  # 'c2_relu' is read by Concat too
    # The Resize scales come from a Constant node: a layer, never a crossing tensor.
    constant = graph.layer("up_scales")
    assert constant.bottoms == () and constant.tops == ("up_scales",)
    assert all("up_scales" not in tensors for _, _, tensors, _ in cut_report(graph))


def _tiny(nodes, initializers=(), inputs=None, opset=17, out_shape=(1, 4, 8, 8)):
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])]
    graph = helper.make_graph(nodes, "tiny", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                             list(out_shape))],
                              initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def test_constants_never_cross_a_cut(tmp_path):
    value = helper.make_tensor("c", TensorProto.FLOAT, [1], [0.5])
    nodes = [helper.make_node("Constant", [], ["c"], name="c", value=value),
             helper.make_node("Relu", ["x"], ["a"], name="a"),
             helper.make_node("Sigmoid", ["a"], ["b"], name="b"),
             helper.make_node("Mul", ["b", "c"], ["m"], name="m"),
             helper.make_node("Add", ["m", "w"], ["y"], name="add")]
    w = onnx.numpy_helper.from_array(np.full((1, 4, 1, 1), 0.25, np.float32), "w")
    graph = load_onnx(onnx_nets.save(_tiny(nodes, [w]), tmp_path / "tiny.onnx"))
    report = cut_report(graph)
    assert report[0][3] == "only constants come before it"
    assert [i for i, valid, _, _ in report if valid] == [1, 2, 3]
    frame = {"x": np.random.default_rng(2).normal(size=(1, 4, 8, 8)).astype(np.float32)}
    whole = run_model(export(graph), frame)
    for cut in (1, 2, 3):
        part_b = run_model(export(graph, first=cut + 1),
                           run_model(export(graph, first=0, last=cut), frame))
        assert _max_diff(part_b, whole) <= 1e-4


def test_costs_per_op_type(graphs):
    graph = graphs["classifier"]
    stats = {s.name: s for s in graph.layer_stats()}
    # stem: 8 x 32 x 32 outputs, each 3 x 3 x 3 multiply-adds
    assert stats["stem"].flops == 2 * 8 * 32 * 32 * 3 * 3 * 3
    assert stats["stem"].params == 8 * 3 * 3 * 3 + 8
    assert stats["fc"].flops == 2 * 10 * 32 and stats["fc"].params == 10 * 32 + 10
    assert stats["stem_bn"].params == 2 * 8 and stats["stem_bn"].weight_bytes == 4 * 8 * 4
    assert stats["stem_bn"].flops == 2 * 8 * 32 * 32
    assert stats["pool1"].flops == 8 * 16 * 16 * 4
    assert stats["flatten"].flops == 0 and stats["flatten"].bytes_moved == 0
    assert stats["mixed"].flops == 0 and stats["mixed"].activation_bytes_out == 16 * 16 * 16 * 4
    seg = {s.name: s for s in graphs["segmenter"].layer_stats()}
    # dec1: each of the 16 x 8 x 8 inputs scatters into 8 x 2 x 2 outputs
    assert seg["dec1"].flops == 2 * 16 * 8 * 8 * 8 * 2 * 2
    model = onnx_nets.classifier_net()
    total = sum(onnx.numpy_helper.to_array(i).size for i in model.graph.initializer)
    running = sum(onnx.numpy_helper.to_array(i).size for i in model.graph.initializer
                  if i.name.endswith((".mean", ".var")))
    assert graph.param_count() == total - running


def test_dla_capability_over_onnx_ops(graphs):
    xavier = {layer.name: why for layer, why in unsupported_layers(graphs["classifier"],
                                                                   "xavier-agx")}
    assert set(xavier) == {"flatten", "prob"}
    assert "Softmax" in xavier["prob"]
    orin = {layer.name for layer, _ in unsupported_layers(graphs["classifier"], "orin-agx")}
    assert orin == {"flatten"}  # Softmax runs on Orin's DLA
    for group in group_layers(graphs["classifier"], 10, capabilities="xavier-agx"):
        names = {layer.name for layer in graphs["classifier"].layers[group.first:group.last + 1]}
        assert group.dla_ok == (not names & set(xavier))
    assert all(g.dla_ok for g in group_layers(graphs["segmenter"], 4, capabilities="orin-agx"))
    assert not group_layers(graphs["segmenter"], 4, capabilities="xavier-agx")[-1].dla_ok


def test_dla_refuses_fractional_resize_and_concat_off_the_channel_axis(tmp_path):
    scales = onnx.numpy_helper.from_array(np.array([1, 1, 1.5, 1.5], np.float32), "s")
    nodes = [helper.make_node("Resize", ["x", "", "s"], ["r"], name="up", mode="nearest"),
             helper.make_node("Concat", ["r", "r"], ["y"], name="cat", axis=2)]
    graph = load_onnx(onnx_nets.save(_tiny(nodes, [scales], out_shape=(1, 4, 24, 12)),
                                     tmp_path / "r.onnx"))
    found = {layer.name: why for layer, why in unsupported_layers(graph, "orin-agx")}
    assert "scales 1, 1, 1.5, 1.5" in found["up"]
    assert "axis 2" in found["cat"]
    assert not any(g.dla_ok for g in group_layers(graph, 2, capabilities="orin-agx"))


def test_dynamic_batch_needs_an_input_shape(tmp_path):
    path = onnx_nets.save(onnx_nets.classifier_net(dynamic_batch=True), tmp_path / "dyn.onnx")
    with pytest.raises(ModelError) as error:
        load_onnx(path)
    message = str(error.value)
    assert "dynamic dimensions (Nx3x32x32)" in message and "--input-shape 1x3x32x32" in message
    assert "\n" not in message
    graph = load_onnx(path, input_shape=(2, 3, 32, 32))
    assert graph.shape("image") == (2, 3, 32, 32) and graph.shape("prob") == (2, 10)
    static = load_onnx(onnx_nets.save(onnx_nets.classifier_net(), tmp_path / "static.onnx"))
    assert valid_cuts(load_onnx(path, input_shape={"image": (1, 3, 32, 32)})) == \
        valid_cuts(static)
    with pytest.raises(ModelError, match="does not fit the model's Nx3x32x32"):
        load_onnx(path, input_shape=(1, 3, 32))
    with pytest.raises(ModelError, match="no input called"):
        load_onnx(path, input_shape={"images": (1, 3, 32, 32)})


def test_truncated_and_non_onnx_files_are_one_clear_line(tmp_path):
    data = onnx_nets.classifier_net().SerializeToString()
    for cut in (len(data) // 2, len(data) - 7, 40):
        truncated = tmp_path / f"cut{cut}.onnx"
        truncated.write_bytes(data[:cut])
        with pytest.raises(ModelError) as error:
            load_onnx(truncated)
        assert str(truncated) in str(error.value) and "\n" not in str(error.value)
    text = tmp_path / "notes.onnx"
    text.write_text("layer { name: 'conv1' type: 'Convolution' }\n")
    with pytest.raises(ModelError, match="not an ONNX model"):
        load_onnx(text)
    with pytest.raises(ModelError, match="no such ONNX file"):
        load_onnx(tmp_path / "missing.onnx")


@pytest.mark.parametrize("opset", [OPSET_MIN - 1, OPSET_MAX + 1])
def test_opset_outside_the_read_range_is_refused_with_the_range(tmp_path, opset):
    model = _tiny([helper.make_node("Relu", ["x"], ["y"], name="r")], opset=opset)
    path = onnx_nets.save(model, tmp_path / "old.onnx")
    with pytest.raises(ModelError) as error:
        load_onnx(path)
    assert f"opset {opset}" in str(error.value)
    assert f"{OPSET_MIN}..{OPSET_MAX}" in str(error.value)


def test_shape_arithmetic_of_a_dynamic_export_is_folded_for_shapes(tmp_path):
    path = onnx_nets.save(onnx_nets.exported_flatten_net(), tmp_path / "exported.onnx")
    graph = load_onnx(path, input_shape=(1, 3, 8, 8))
    assert graph.inputs == ("x",)  # 'W' is an initialiser, not an input
    assert graph.shape("flat") == (1, 256) and graph.shape("y") == (1, 5)
    assert [layer.type for layer in graph.layers][3:9] == [
        "Shape", "Constant", "Gather", "Unsqueeze", "Concat", "Reshape"]
    report = cut_report(graph)
    reshape = graph.layer("Reshape_8").index
    assert [i for i, valid, _, _ in report if valid] == [1, 2, reshape]
    assert "2 tensors cross it (d, s)" in report[3][3]
    frame = {"x": np.random.default_rng(3).random((1, 3, 8, 8)).astype(np.float32)}
    whole = run_model(export(graph), frame)
    for cut in valid_cuts(graph):
        part_b = run_model(export(graph, first=cut + 1),
                           run_model(export(graph, first=0, last=cut), frame))
        assert _max_diff(part_b, whole) <= 1e-4
    assert graph.layer_stats()[graph.layer("fc").index].flops == 2 * 5 * 256


@pytest.mark.parametrize("dla,pattern", [
    ("{layers: {ReLU: {}}, onnx_ops: {relu: {}}}", "'relu' is not an ONNX op type"),
    ("{layers: {ReLU: {}}, onnx_ops: {Conv: {kernels: [1, 3]}}}", "Conv.kernels: unknown limit"),
    ("{layers: {ReLU: {}}, onnx_ops: {Resize: {scales: [3, 1]}}}", "expected [low, high]"),
    ("{layers: {ReLU: {}}, onnx_ops: all}", "'all' only with 'layers: all'"),
    ("{rules_from: xavier-agx, onnx_ops: {Relu: {}}}", "both 'rules_from' and 'layers'"),
    ("{layers: {ReLU: {}}, onnx_ops: {MaxPool: {methods: [MAX]}}}", "MaxPool.methods: unknown"),
    ("{layers: {ReLU: {}}, onnx_ops: {Relu: {}, Resize: {modes: [nearest]}}}", None),
])
def test_onnx_ops_in_device_descriptions_are_validated(tmp_path, dla, pattern):
    from hax_conn_core.errors import ConfigError
    from hax_conn_core.graph.capabilities import load_device

    path = tmp_path / "d.yaml"
    path.write_text("format: hax-conn-device/1\nid: d\naccelerators:\n  gpu: {layers: all}\n"
                    f"  dla: {dla}\n")
    if pattern is None:
        assert "Relu" in load_device(path).accelerator("dla").onnx_ops
        return
    with pytest.raises(ConfigError) as error:
        load_device(path)
    assert pattern in str(error.value)


def test_an_accelerator_without_onnx_ops_runs_no_onnx_node_but_layers_all_runs_every_one(
        tmp_path, graphs):
    from hax_conn_core.graph.capabilities import load_device

    path = tmp_path / "d.yaml"
    path.write_text("format: hax-conn-device/1\nid: d\naccelerators:\n  gpu: {layers: all}\n"
                    "  dla: {layers: {ReLU: {}}}\n")
    device = load_device(path)
    graph = graphs["segmenter"]
    assert not unsupported_layers(graph, device, "gpu")
    refused = unsupported_layers(graph, device, "dla")
    assert len(refused) == len(graph.layers)  # no node reads constants only here


def test_an_integer_tensor_is_never_handed_over_at_a_cut(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="a"),
             helper.make_node("ArgMax", ["a"], ["idx"], name="argmax", axis=1, keepdims=1),
             helper.make_node("Cast", ["idx"], ["cast"], name="cast", to=TensorProto.FLOAT),
             helper.make_node("Relu", ["cast"], ["y"], name="b")]
    graph = load_onnx(onnx_nets.save(_tiny(nodes, out_shape=(1, 1, 8, 8)), tmp_path / "i.onnx"))
    assert graph.tensors["idx"].dtype == "int64" and graph.tensors["a"].dtype == "float32"
    report = cut_report(graph)
    assert report[1][2] == ("idx",) and not report[1][1]
    assert "'idx', is int64; expected a floating-point activation" in report[1][3]
    assert valid_cuts(graph) == (0, 2)


def test_conv_then_constant_scale_and_shift_stay_together_but_two_activations_do_not(tmp_path):
    w = onnx.numpy_helper.from_array(np.full((4, 4, 1, 1), 0.1, np.float32), "w")
    k = onnx.numpy_helper.from_array(np.full((1, 4, 1, 1), 2.0, np.float32), "k")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Mul", ["c", "k"], ["m"], name="scale"),
             helper.make_node("Add", ["m", "k"], ["a"], name="shift"),
             helper.make_node("Relu", ["a"], ["r"], name="relu"),
             helper.make_node("Mul", ["r", "x"], ["y"], name="gate")]
    graph = load_onnx(onnx_nets.save(_tiny(nodes, [w, k]), tmp_path / "s.onnx"))
    assert [layer.name for layer in graph.layers if layer.fused] == ["scale", "shift", "relu"]
    assert valid_cuts(graph) == ()  # 'x' is read by the last layer: it crosses every cut


@pytest.mark.parametrize("dnn", ["googlenet", "mobilenet_v1"])
def test_a_paper_dnn_exported_to_onnx_reads_back_with_the_caffe_cuts(tmp_path, dnn):
    """Our own export of a paper DNN, read by the ONNX frontend: every Caffe valid cut is
    valid there too (more may be, where the export splits a Caffe in-place chain), the costs
    agree, and splits at Caffe cuts equal the whole."""
    from hax_conn_core.graph.prototxt import load_prototxt
    from hax_conn_core.graph.weights import seeded_weights
    from hax_conn_core.models import get_model

    caffe = load_prototxt(get_model(dnn).prototxt, name=dnn)
    path = onnx_nets.save(export(caffe, seeded_weights(caffe, 0)), tmp_path / f"{dnn}.onnx")
    graph = load_onnx(path)
    caffe_cuts = {cut_report(caffe)[i][2][0] for i in valid_cuts(caffe)}
    onnx_cuts = {cut_report(graph)[i][2][0]: i for i in valid_cuts(graph)}
    assert caffe_cuts <= set(onnx_cuts)
    assert graph.flops() == pytest.approx(caffe.flops(), rel=0.01)
    frame = {graph.inputs[0]: _frame_of(graph)}
    whole = run_model(export(graph), frame)
    for tensor in sorted(caffe_cuts)[::max(1, len(caffe_cuts) // 3)]:
        cut = onnx_cuts[tensor]
        part_b = run_model(export(graph, first=cut + 1),
                           run_model(export(graph, first=0, last=cut), frame))
        assert _max_diff(part_b, whole) <= 1e-4, (dnn, tensor)


def _frame_of(graph):
    shape = graph.shape(graph.inputs[0])
    return np.random.default_rng(4).random(shape).astype(np.float32)

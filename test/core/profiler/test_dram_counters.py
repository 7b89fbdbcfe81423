"""DRAM counters for demand: ncu's CSV parsed, kernels cut at the markers and mapped to groups,
demand and the cross-check written into a profile; the fallback when there are no counters.
CSV text is written here in ncu's documented layouts (``--csv``, details and raw pages)."""

import csv
import io

import pytest

from hax_conn_core.errors import ProfileError
from hax_conn_core.profile import parse_profile
from hax_conn_core.profiler import dram_counters as dc

HEADER = ["ID", "Process ID", "Process Name", "Host Name", "Kernel Name", "Context", "Stream",
          "Block Size", "Grid Size", "Device", "CC", "Section Name", "Metric Name",
          "Metric Unit", "Metric Value"]
SPIN = "at::cuda::(anonymous namespace)::spin_kernel(long)"


def kernels_of(stretches):
    """Kernels in launch order: a marker, then each stretch's (name, read, write) kernels,
    then the closing marker."""
    out = []
    for stretch in stretches:
        out.append((SPIN, 0, 0))
        out.extend(stretch)
    out.append((SPIN, 0, 0))
    return out


def details_csv(kernels, unit="byte", scale=1, thousands=False):
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
    buffer.write("==PROF== Connected to process 4242 (/usr/bin/python3.12)\n")
    writer.writerow(HEADER)
    for ident, (name, read, write) in enumerate(kernels):
        for metric, value in zip(dc.METRICS, (read, write)):
            text = f"{value / scale:,.2f}" if thousands else f"{value / scale:g}"
            writer.writerow([ident, 4242, "python3.12", "127.0.0.1", name, 1, 13, "(256, 1, 1)",
                             "(132, 1, 1)", 0, "9.0", "Command line profiler metrics", metric,
                             unit, text])
    buffer.write("==PROF== Disconnected from process 4242\n")
    return buffer.getvalue()


def raw_csv(kernels):
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(["ID", "Kernel Name", "Stream", *dc.METRICS])
    writer.writerow(["", "", "", "byte", "byte"])
    for ident, (name, read, write) in enumerate(kernels):
        writer.writerow([ident, name, 13, read, write])
    return buffer.getvalue()


STRETCHES = [[("conv_a", 1.5e6, 0.5e6), ("relu", 2e5, 2e5)],
             [("gemm", 7e6, 1e5)],
             [("conv_b", 3e6, 1e6), ("pool", 4e5, 1e5), ("cast", 1e4, 2e4)]]


@pytest.mark.parametrize("render", [
    lambda k: details_csv(k),
    lambda k: details_csv(k, unit="Kbyte", scale=1e3),
    lambda k: details_csv(k, thousands=True),
    raw_csv,
], ids=["details", "details-kbyte", "details-thousands", "raw"])
def test_parse_and_cut_at_markers(render):
    kernels = dc.parse_ncu_csv(render(kernels_of(STRETCHES)))
    assert [k.id for k in kernels] == sorted(k.id for k in kernels)
    assert sum(dc.MARKER in k.name for k in kernels) == len(STRETCHES) + 1
    got = dc.bytes_per_stretch(kernels)
    want = [(sum(r + w for _, r, w in s), len(s)) for s in STRETCHES]
    assert len(got) == len(want)
    for (total, count), (expected, n) in zip(got, want):
        assert count == n and total == pytest.approx(expected, rel=1e-6)


def test_manifest_maps_stretches_to_groups_and_a_mismatch_is_refused():
    stretches = dc.bytes_per_stretch(dc.parse_ncu_csv(details_csv(kernels_of(STRETCHES))))
    manifest = {"format": dc.MANIFEST_FORMAT,
                "runs": [["net", "gpu", 0], ["net", "gpu", 1], ["net", "dla", 0]]}
    mapped = dc.map_to_groups(stretches, manifest)
    assert mapped["net"]["gpu"][1] == stretches[1][0]
    assert mapped["net"]["dla"][0] == stretches[2][0]
    with pytest.raises(ProfileError, match="cannot be mapped"):
        dc.map_to_groups(stretches[:2], manifest)
    with pytest.raises(ProfileError, match="format"):
        dc.map_to_groups(stretches, {"runs": manifest["runs"]})


def test_a_table_without_values_or_header_is_one_clear_error():
    with pytest.raises(ProfileError, match="no CSV table"):
        dc.parse_ncu_csv("==PROF== ERR_NVGPUCTRPERM - The user does not have permission\n")
    text = details_csv([("conv", 1, 1)]).replace('"1"\n', '"n/a"\n', 1)
    with pytest.raises(ProfileError, match="not a number"):
        dc.parse_ncu_csv(text)


def test_ncu_command_profiles_only_the_marked_runs():
    command = dc.ncu_command("/usr/bin/ncu", ["python3", "child.py"], "log.csv")
    joined = " ".join(command)
    for part in ("--csv", "--profile-from-start off", "--graph-profiling node",
                 "--metrics dram__bytes_read.sum,dram__bytes_write.sum", "--log-file log.csv",
                 "--cache-control none"):
        assert part in joined
    assert command[-2:] == ["python3", "child.py"]
    with pytest.raises(ProfileError):
        dc.ncu_command("ncu", [], "x", cache_control="some")
    whole = " ".join(dc.ncu_command("ncu", ["child"], "x", graph_profiling="graph"))
    assert "--graph-profiling graph" in whole and "--graph-profiling node" not in whole
    with pytest.raises(ProfileError, match="node or graph"):
        dc.ncu_command("ncu", [], "x", graph_profiling="kernel")


def estimated_document(tmp_path):
    from hax_conn_core.graph.prototxt import load_prototxt
    from hax_conn_core.profiler.estimate import estimate_profile
    from test.core.profiler.nets import SMALL, write

    graph = load_prototxt(write(tmp_path, "small", SMALL), name="small")
    doc = estimate_profile(["small"], "cpu", target_groups=3, graphs={"small": graph})
    return doc, graph


def test_measured_bytes_set_demand_and_the_ratio_to_the_graph_estimate(tmp_path):
    doc, graph = estimated_document(tmp_path)
    dc.note_no_counters(doc, "an earlier run without ncu")
    groups = doc["dnns"]["small"]["groups"]
    ranges = [g["layers"] for g in groups]
    estimate = dc.graph_bytes(graph, ranges, "fp32")
    measured = {"gpu": {i: 2.5 * b for i, b in enumerate(estimate)}}
    check = dc.apply_dram_demand(doc, "small", measured, estimate, "test")
    for i, (row, guess) in enumerate(zip(groups, estimate)):
        ms = row["time_ms"]["gpu"]
        assert row["demand_gbps"]["gpu"] == pytest.approx(2.5 * guess / 1e9 / (ms / 1e3),
                                                          rel=1e-2, abs=1e-3)
    assert check["median_ratio"]["gpu"] == pytest.approx(2.5)
    assert all(key.endswith(":dla") for key in check["kept_graph_estimate"])
    assert doc["demand_source"].startswith("DRAM byte counters")
    assert doc["profiler"]["dnns"]["small"]["dram_check"] is check
    assert doc["profiler"]["dram_counters"] == {"used": True, "how": "test"}
    parse_profile(doc)


def test_without_counters_the_file_says_why(tmp_path):
    doc, _ = estimated_document(tmp_path)
    dc.note_no_counters(doc, "ncu not found on PATH")
    assert "ncu not found" in doc["demand_source"]
    assert doc["profiler"]["dram_counters"] == {"used": False,
                                                "reason": "ncu not found on PATH"}
    parse_profile(doc)

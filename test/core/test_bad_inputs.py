"""Bad inputs through the real command: one line and exit 2, never a traceback (issue 14).

Each test covers a class of input (numbers a profile may not hold, nesting, decoding, option
values, ...) with several inputs, generated where that is natural. The commands run in-process
through ``hax_conn_core.cli.main.main`` (the entry point ``hax-conn`` calls) or, where the
installed script matters, as a subprocess.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, HealthCheck, settings, strategies as st

from hax_conn_core.cli.main import EXIT_INTERNAL, main
from test.core.strategies import group, mutated_documents, mutated_texts, profile_doc

HAX_CONN = Path(sys.executable).with_name("hax-conn")
REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "profiles" / "xavier_googlenet_alexnet.json"

DOC = profile_doc({"a": [group({"gpu": 1.0, "dla": 2.0}, {"gpu": 10.0, "dla": 5.0},
                               {"gpu": 0.1, "dla": 0.1}),
                         group({"gpu": 1.0}, {"gpu": 10.0})],
                   "b": [group({"gpu": 2.0, "dla": 1.0}, {"gpu": 10.0, "dla": 5.0})]})

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def run(capsys, argv):
    """(status, stdout, stderr) of ``hax-conn argv`` run in-process."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse exits itself
        status = exc.code
    out = capsys.readouterr()
    return status, out.out, out.err


def assert_one_line(status, err, command, pattern=None, expected_status=2):
    assert status == expected_status, err
    assert "Traceback" not in err, err
    assert err.count("\n") == 1 and err.startswith(f"hax-conn {command}: error: "), err
    if pattern is not None:
        assert re.search(pattern, err), err


def write(tmp_path, name, content) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content),
                        encoding="utf-8")
    return path


# --- numbers a profile may hold ---------------------------------------------------------------

_HUGE = st.one_of(st.floats(min_value=1.0000001e6, max_value=1e308),
                  st.integers(min_value=10 ** 6 + 1, max_value=10 ** 29))
_NOT_POSITIVE = st.one_of(st.floats(max_value=0.0, allow_nan=False, allow_infinity=False),
                          st.floats(min_value=0.0, max_value=9.9e-7, exclude_max=False))
_SLOTS = [  # (JSON path in the profile, values that must be refused there)
    (["dnns", "a", "groups", 0, "time_ms", "gpu"], st.one_of(_HUGE, _NOT_POSITIVE)),
    (["dnns", "a", "groups", 0, "transition_ms", "dla"],
     st.one_of(_HUGE, st.floats(max_value=-1e-300, allow_infinity=False, allow_nan=False))),
    (["dnns", "b", "groups", 0, "demand_gbps", "gpu"], _HUGE),
    (["device", "peak_bandwidth_gbps"], st.one_of(_HUGE, st.floats(min_value=0.0,
                                                                   max_value=9e-4))),
    (["contention", "gpu", 0, 1], st.one_of(st.floats(min_value=1000.5, max_value=1e308),
                                            st.floats(max_value=0.999, allow_nan=False,
                                                      allow_infinity=False))),
]


def _json_path(keys) -> str:
    out = ""
    for key in keys:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else key)
    return out


@SETTINGS
@given(slot=st.sampled_from(range(len(_SLOTS))), data=st.data())
def test_numbers_out_of_bounds_are_refused_with_their_path(tmp_path, capsys, slot, data):
    keys, values = _SLOTS[slot]
    value = data.draw(values)
    doc = copy.deepcopy(DOC)
    node = doc
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    status, _, err = run(capsys, ["plan", "--profile", write(tmp_path, "p.json", doc)])
    assert_one_line(status, err, "plan",
                    re.escape(_json_path(keys)) + ": expected a finite number")


@pytest.mark.parametrize("literal", ["1e306", "1e999", "-1e999", "NaN", "Infinity", "-Infinity",
                                     "1" + "0" * 40, "9" * 5000])
@pytest.mark.parametrize("where", ["time_ms", "transition_ms"])
def test_huge_and_non_finite_literals_name_their_path(tmp_path, capsys, literal, where):
    # 1e306 is a finite float that used to overflow in the planner's formulation; 5000 digits
    # exceed Python's int conversion limit; NaN and Infinity are not JSON at all.
    text = json.dumps(DOC).replace(f'"{where}": {{"gpu": {1.0 if where == "time_ms" else 0.1}',
                                   f'"{where}": {{"gpu": {literal}', 1)
    assert literal in text
    status, _, err = run(capsys, ["plan", "--profile", write(tmp_path, "p.json", text)])
    assert_one_line(status, err, "plan", re.escape(f"dnns.a.groups[0].{where}.gpu: "))


@pytest.mark.parametrize("layers, pattern", [
    ([10, 0], r"layers\[0\]: expected an integer from 0 to 1000000000, found the number 10"
              r"|layers\[1\]: expected an integer from 10"),
    ([0.5, 10], r"layers\[0\]: expected an integer .*found the number 0.5"),
    ([0, 2 ** 40], r"layers\[1\]: expected an integer from 0 to 1000000000"),
    ([-1, 0], r"layers\[0\]: expected an integer from 0"),
    ([0, True], r"layers\[1\]: .*found the boolean true"),
    ([0], r"layers: expected an inclusive layer range \[first, last\] of two integers"),
])
def test_bad_layer_ranges_name_the_element(tmp_path, capsys, layers, pattern):
    doc = copy.deepcopy(DOC)
    doc["dnns"]["b"]["groups"][0]["layers"] = layers
    status, _, err = run(capsys, ["plan", "--profile", write(tmp_path, "p.json", doc)])
    assert_one_line(status, err, "plan", r"dnns.b.groups\[0\]." + pattern)


# --- nesting ----------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [65, 1000, 100_000])
@pytest.mark.parametrize("kind", ["profile", "schedule"])
def test_deeply_nested_json_is_one_line(tmp_path, capsys, depth, kind):
    body = "[" * depth + "]" * depth
    text = '{"format": "hax-conn-%s/1", "x": %s}' % (kind, body)
    path = write(tmp_path, "deep.json", text)
    if kind == "profile":
        argv = ["plan", "--profile", path]
    else:
        argv = ["simulate", "--profile", SHIPPED, "--schedule", path]
    status, _, err = run(capsys, argv)
    assert_one_line(status, err, argv[0], r"deep.json:1:\d+: nested too deeply; expected at "
                                          r"most 64 levels")


@SETTINGS
@given(depth=st.integers(min_value=33, max_value=3000),
       opener=st.sampled_from(["layer {", "foo {", "input_param { shape ", "x <"]))
def test_deeply_nested_prototxt_is_one_line(tmp_path, capsys, depth, opener):
    closer = ">" if opener.endswith("<") else "}"
    text = 'name: "n"\nlayer { name: "a" type: "Input" ' + (opener + " ") * depth \
        + closer * depth + " }\n"
    status, _, err = run(capsys, ["graph", write(tmp_path, "deep.prototxt", text)])
    assert_one_line(status, err, "graph", r"deep.prototxt:\d+: blocks nested \d+ deep; "
                                          r"expected at most 32")


def test_deeply_nested_device_yaml_is_one_line(tmp_path, capsys):
    for text in ("format: hax-conn-device/1\naccelerators: " + "[" * 50_000 + "]" * 50_000,
                 "format: hax-conn-device/1\naccelerators:\n"
                 + "".join("  " * i + f"k{i}:\n" for i in range(100))):
        path = write(tmp_path, "deep.yaml", text)
        status, _, err = run(capsys, ["graph", "alexnet", "--device", path])
        assert_one_line(status, err, "graph", r"deep.yaml:\d+: nested 33 deep")


# --- decoding of every file we read -----------------------------------------------------------

_NOT_UTF8 = st.sampled_from([b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xe2\x82", b"\x80",
                             b"\xed\xa0\x80"])


@SETTINGS
@given(bad=_NOT_UTF8, at=st.integers(min_value=0, max_value=3))
def test_non_utf8_files_are_one_line(tmp_path, capsys, bad, at):
    profile_text = json.dumps(DOC, indent=1).encode()
    schedule_text = json.dumps({"format": "hax-conn-schedule/1", "objective": "latency",
                                "dnns": {"a": {"assignment": ["gpu", "gpu"]}}},
                               indent=1).encode()
    prototxt = (REPO / "prototxts" / "alexnet.prototxt").read_bytes()
    device = (REPO / "config" / "devices" / "xavier-agx.yaml").read_bytes()

    def spoil(raw: bytes) -> bytes:
        cut = raw.index(b"\n", len(raw) * at // 4) + 1
        return raw[:cut] + b"# " + bad + b"\n" + raw[cut:]

    cases = [
        (["plan", "--profile", write(tmp_path, "p.json", spoil(profile_text))], "plan"),
        (["simulate", "--profile", write(tmp_path, "ok.json", profile_text), "--schedule",
          write(tmp_path, "s.json", spoil(schedule_text))], "simulate"),
        (["graph", write(tmp_path, "n.prototxt", spoil(prototxt))], "graph"),
        (["graph", "alexnet", "--device", write(tmp_path, "d.yaml", spoil(device))], "graph"),
    ]
    for argv, command in cases:
        status, _, err = run(capsys, argv)
        assert_one_line(status, err, command, r":\d+: (expected UTF-8 text|not UTF-8 text)")


def test_a_utf8_byte_order_mark_is_accepted_everywhere(tmp_path, capsys):
    bom = "\ufeff"
    profile = write(tmp_path, "p.json", bom + json.dumps(DOC))
    schedule = write(tmp_path, "s.json", bom + json.dumps(
        {"format": "hax-conn-schedule/1", "objective": "latency",
         "dnns": {"a": {"assignment": ["gpu", "gpu"]}, "b": {"assignment": ["dla"]}}}))
    prototxt = write(tmp_path, "n.prototxt",
                     bom + (REPO / "prototxts" / "alexnet.prototxt").read_text())
    device = write(tmp_path, "d.yaml",
                   bom + (REPO / "config" / "devices" / "xavier-agx.yaml").read_text())
    for argv in (["plan", "--profile", profile, "--json"],
                 ["simulate", "--profile", profile, "--schedule", schedule, "--json"],
                 ["graph", prototxt, "--json"], ["graph", "alexnet", "--device", device,
                                                 "--json"]):
        status, out, err = run(capsys, argv)
        assert status == 0, err
        json.loads(out)


def test_directories_where_files_are_expected(tmp_path, capsys):
    folder = tmp_path / "x.prototxt"
    folder.mkdir()
    status, _, err = run(capsys, ["graph", folder])
    assert_one_line(status, err, "graph", "is a directory; expected a prototxt file")
    status, _, err = run(capsys, ["plan", "--profile", tmp_path])
    assert_one_line(status, err, "plan", "is a directory; expected a profile file")
    status, _, err = run(capsys, ["simulate", "--profile", SHIPPED, "--schedule", tmp_path])
    assert_one_line(status, err, "simulate", "is a directory; expected a schedule file")
    status, _, err = run(capsys, ["graph", "alexnet", "--device", folder])
    assert status == 2 and "Traceback" not in err and err.count("\n") == 1, err


# --- option values ----------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e300", "0", "-1", "1e-400"])
def test_timeout_values_that_cannot_be_a_deadline(capsys, value):
    status, _, err = run(capsys, ["plan", "--profile", SHIPPED, f"--timeout={value}"])
    assert_one_line(status, err, "plan", r"--timeout: expected a finite number of seconds > 0")


@pytest.mark.parametrize("argv, command, pattern", [
    (["plan"], "plan", "the following arguments are required: --profile"),
    (["plan", "--profile", SHIPPED, "--objective", "speed"], "plan", "invalid choice: 'speed'"),
    (["plan", "--profile", SHIPPED, "--max-transitions", "x"], "plan", "invalid int value"),
    (["plan", "--profile", SHIPPED, "--bogus"], "hax-conn", "unrecognized arguments: --bogus"),
    (["simulate", "--profile", SHIPPED], "simulate", "required: --schedule"),
    (["graph"], "graph", "required: MODEL"),
    (["graph", "alexnet", "--groups", "many"], "graph", "invalid int value: 'many'"),
    (["fly"], "hax-conn", "invalid choice: 'fly'"),
    (["demo", "--timeout"], "demo", "expected one argument"),
])
def test_option_errors_are_one_line(capsys, argv, command, pattern):
    status, _, err = run(capsys, argv)
    assert status == 2, err
    prefix = "hax-conn: error: " if command == "hax-conn" else f"hax-conn {command}: error: "
    assert err.count("\n") == 1 and "usage:" not in err, err
    assert err.startswith(prefix) or err.startswith("hax-conn: error: "), err
    assert pattern in err, err


def test_option_errors_are_one_line_from_the_installed_command():
    out = subprocess.run([str(HAX_CONN), "plan", "--max-transitions", "two"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("hax-conn plan: error: "), \
        out.stderr


@pytest.mark.parametrize("value", ["1", "3", "16"])
def test_frames_in_flight_is_refused_for_latency(capsys, value):
    status, _, err = run(capsys, ["plan", "--profile", SHIPPED, "--frames-in-flight", value])
    assert_one_line(status, err, "plan", "--frames-in-flight .*applies to --objective "
                                         "throughput only")


@pytest.mark.parametrize("value", ["0", "17", "100000"])
def test_frames_in_flight_out_of_range(capsys, value):
    status, _, err = run(capsys, ["plan", "--profile", SHIPPED, "--objective", "throughput",
                                  "--frames-in-flight", value])
    assert_one_line(status, err, "plan", "expected an integer from 1 to 16")


def test_a_huge_transition_budget_plans_with_what_can_be_used(capsys):
    status, out, err = run(capsys, ["plan", "--profile", SHIPPED, "--max-transitions",
                                    "1000000000", "--json", "--timeout", "60"])
    assert status == 0, err
    assert "planning with" in err
    assert json.loads(out)["max_transitions"] < 100


# --- schedules and prototxts: the message names the actual mistake -----------------------------

@pytest.mark.parametrize("wrong", ["npu", "cpu", "gpu0", "dlaa"])
@pytest.mark.parametrize("budget", [0, 1])
def test_unknown_accelerator_is_not_a_budget_problem(tmp_path, capsys, wrong, budget):
    profile = json.loads(SHIPPED.read_text())
    groups = len(profile["dnns"]["alexnet"]["groups"])
    assignment = ["gpu"] * groups
    assignment[2] = wrong  # two changes of accelerator: over either budget
    schedule = {"format": "hax-conn-schedule/1", "objective": "latency",
                "max_transitions": budget, "dnns": {"alexnet": {"assignment": assignment}}}
    status, _, err = run(capsys, ["simulate", "--profile", SHIPPED, "--schedule",
                                  write(tmp_path, "s.json", schedule)])
    assert_one_line(status, err, "simulate", rf"dnns.alexnet.assignment\[2\]: unknown "
                                             rf"accelerator '{wrong}'")


INPUT = 'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 ' \
        'dim: 8 dim: 8 } } }\n'


@pytest.mark.parametrize("layers", [
    'layer { name: "r" type: "ReLU" bottom: "x" top: "x" }\n',
    'layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { '
    'num_output: 2 kernel_size: 1 } }\nlayer { name: "bn" type: "BatchNorm" bottom: "cc" '
    'top: "cc" }\n',
    'layer { name: "d" type: "Dropout" bottom: "y" top: "y" }\n'
    'layer { name: "r" type: "ReLU" bottom: "data" top: "z" }\n',
])
def test_in_place_layer_without_producer_is_not_a_cycle(tmp_path, capsys, layers):
    status, _, err = run(capsys, ["graph", write(tmp_path, "n.prototxt", INPUT + layers)])
    assert_one_line(status, err, "graph", "is not produced by any earlier layer or input, "
                                          "and this layer works in place")
    assert "cycle" not in err


_KEYS = ["name", "type", "bottom", "top"]


@SETTINGS
@given(layer=st.integers(min_value=1, max_value=6), key=st.sampled_from(_KEYS),
       comment=st.booleans())
def test_a_missing_value_is_blamed_on_its_own_line(tmp_path, capsys, layer, key, comment):
    # A generated chain of ReLUs, one field per line; the value of one field is removed.
    lines = INPUT.splitlines()
    previous = "data"
    for i in range(1, 7):
        lines += ["layer {", f'  name: "r{i}"', '  type: "ReLU"', f'  bottom: "{previous}"',
                  f'  top: "t{i}"', "}"]
        previous = f"t{i}"
    target = 1 + (layer - 1) * 6 + 1 + _KEYS.index(key)  # 0-based line of the field
    lines[target] = f"  {key}:" + ("  # no value" if comment else "")
    status, _, err = run(capsys, ["graph", write(tmp_path, "n.prototxt", "\n".join(lines))])
    assert_one_line(status, err, "graph", rf"n.prototxt:{target + 1}:\d+: '{key}:' has no "
                                          r"value")


def test_an_unclosed_block_names_the_line_that_opens_it(tmp_path, capsys):
    text = INPUT + 'layer {\n  name: "r"\n  type: "ReLU"\n  bottom: "data"\n  top: "r"\n'
    status, _, err = run(capsys, ["graph", write(tmp_path, "n.prototxt", text)])
    assert_one_line(status, err, "graph", r"n.prototxt:2:7: this block is not closed")


# --- the last resort --------------------------------------------------------------------------

PLUGIN = textwrap.dedent('''
    """A command that fails the way a bug of ours would (registered like a plugin command)."""
    import sys

    from hax_conn_core.cli import registry
    from hax_conn_core.cli.base import Command
    from hax_conn_core.cli.main import main
    from hax_conn_core.errors import InternalError

    FAILURES = {"value": lambda: int("x"), "zero": lambda: 1 / 0,
                "recursion": lambda: (_ for _ in ()).throw(RecursionError("too deep")),
                "internal": lambda: (_ for _ in ()).throw(InternalError("state went bad")),
                "key": lambda: {}["missing"], "multi": lambda: (_ for _ in ()).throw(
                    RuntimeError("line one\\nline two"))}


    class Boom(Command):
        """Fail on purpose."""

        def add_arguments(self, parser):
            parser.add_argument("kind")

        def run(self, args):
            FAILURES[args.kind]()


    registry.BUILTIN_COMMANDS["boom"] = "boom_plugin:Boom"
    sys.exit(main(sys.argv[1:]))
''')


@pytest.mark.parametrize("kind, name", [("value", "ValueError"), ("zero", "ZeroDivisionError"),
                                        ("recursion", "RecursionError"),
                                        ("internal", "InternalError"), ("key", "KeyError"),
                                        ("multi", "RuntimeError")])
def test_an_internal_error_is_one_line_naming_it(tmp_path, kind, name):
    (tmp_path / "boom_plugin.py").write_text(PLUGIN)
    env = {"PYTHONPATH": f"{tmp_path}:{REPO}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, str(tmp_path / "boom_plugin.py"), "boom", kind],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == EXIT_INTERNAL == 70, out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.startswith(f"hax-conn boom: internal error: {name}"), out.stderr
    assert "this is a bug in hax_conn" in out.stderr and "HAX_CONN_DEBUG=1" in out.stderr
    debug = subprocess.run([sys.executable, str(tmp_path / "boom_plugin.py"), "boom", kind],
                           capture_output=True, text=True, timeout=120,
                           env=dict(env, HAX_CONN_DEBUG="1"))
    assert debug.returncode == 70 and "Traceback" in debug.stderr
    assert debug.stderr.rstrip().splitlines()[-1].startswith("hax-conn boom: internal error")


# --- what used to be a traceback, through the installed command -------------------------------

def test_former_tracebacks_from_the_installed_command(tmp_path):
    huge = copy.deepcopy(DOC)
    huge["dnns"]["a"]["groups"][0]["time_ms"]["gpu"] = 1e306
    bad_yaml = write(tmp_path, "d.yaml", b"format: hax-conn-device/1\n\xff\xfe\n")
    for argv in (["plan", "--profile", SHIPPED, "--timeout", "inf"],
                 ["plan", "--profile", write(tmp_path, "huge.json", huge)],
                 ["plan", "--profile", write(tmp_path, "deep.json", "[" * 100_000)],
                 ["graph", write(tmp_path, "deep.prototxt", "layer { " * 300 + "}" * 300)],
                 ["graph", "alexnet", "--device", bad_yaml]):
        out = subprocess.run([str(HAX_CONN)] + [str(a) for a in argv], capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 2, out.stderr
        assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr


# --- any malformed input: one line and 0 or 2, never an internal error ------------------------

def _never_internal(status, err):
    assert status in (0, 2), err
    assert "Traceback" not in err and "internal error" not in err, err
    if status == 2:
        assert err.count("\n") == 1, err


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(doc=mutated_documents(DOC))
def test_mutated_profiles_never_reach_the_last_resort(tmp_path, capsys, doc):
    status, _, err = run(capsys, ["plan", "--profile", write(tmp_path, "p.json", doc),
                                  "--timeout", "10", "--json"])
    _never_internal(status, err)


SCHEDULE = {"format": "hax-conn-schedule/1", "objective": "throughput", "max_transitions": 1,
            "frames_in_flight": 2, "dnns": {"a": {"assignment": ["dla", "gpu"]},
                                            "b": {"assignment": ["dla"]}}}


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(doc=mutated_documents(SCHEDULE))
def test_mutated_schedules_never_reach_the_last_resort(tmp_path, capsys, doc):
    profile = write(tmp_path, "p.json", DOC)
    status, _, err = run(capsys, ["simulate", "--profile", profile, "--schedule",
                                  write(tmp_path, "s.json", doc), "--json"])
    _never_internal(status, err)


SMALL_NET = INPUT + textwrap.dedent('''\
    layer { name: "c" type: "Convolution" bottom: "data" top: "c"
            convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
    layer { name: "r" type: "ReLU" bottom: "c" top: "c" }
    layer { name: "p" type: "Pooling" bottom: "c" top: "p"
            pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
    layer { name: "f" type: "InnerProduct" bottom: "p" top: "f"
            inner_product_param { num_output: 3 } }
    layer { name: "s" type: "Softmax" bottom: "f" top: "s" }
''')


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=mutated_texts(SMALL_NET))
def test_mutated_prototxts_never_reach_the_last_resort(tmp_path, capsys, text):
    path = tmp_path / "n.prototxt"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    status, _, err = run(capsys, ["graph", path, "--groups", "3", "--json"])
    _never_internal(status, err)


DEVICE = (REPO / "config" / "devices" / "xavier-agx.yaml").read_text()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=mutated_texts(DEVICE))
def test_mutated_device_descriptions_never_reach_the_last_resort(tmp_path, capsys, text):
    path = tmp_path / "d.yaml"
    path.write_text(text, encoding="utf-8")
    status, _, err = run(capsys, ["graph", "alexnet", "--device", path, "--json"])
    _never_internal(status, err)

"""launch/perception.launch.py checked without `launch` installed (pip-based setup): its
structure by ast, the executables it names, and config/perception.yaml against the nodes."""

import ast
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = ROOT / "launch" / "perception.launch.py"
CONFIG = ROOT / "config" / "perception.yaml"


def _calls(tree, name):
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", None)) == name]


def _keywords(call):
    return {k.arg: k.value for k in call.keywords}


def _entry_points():
    """setup.py's NODE_EXECUTABLES as (name, module, function)."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    (value,) = [n.value for n in tree.body if isinstance(n, ast.Assign)
                and n.targets[0].id == "NODE_EXECUTABLES"]
    return [re.fullmatch(r"(\w+) = ([\w.]+):(\w+)", e.value).groups() for e in value.elts]


def _executables():
    """setup.py's node console scripts, and scripts/nodes/ (what CMake installs)."""
    listed = {name for name, _, _ in _entry_points()}
    installed = {p.name for p in (ROOT / "scripts" / "nodes").iterdir()
                 if p.is_file() and os.access(p, os.X_OK)}
    return listed, installed


def test_launch_file_declares_every_argument_with_a_description():
    tree = ast.parse(LAUNCH.read_text())
    declared = {}
    for call in _calls(tree, "DeclareLaunchArgument"):
        name = call.args[0].value
        keywords = _keywords(call)
        assert "description" in keywords and keywords["description"].value.strip(), name
        assert "default_value" in keywords, name
        declared[name] = keywords
    assert set(declared) == {"config", "namespace", "backend", "log_level"}
    used = {c.args[0].value for c in _calls(tree, "LaunchConfiguration")}
    assert used == set(declared)
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description"
               for n in tree.body)


def test_launch_nodes_name_executables_of_the_package():
    tree = ast.parse(LAUNCH.read_text())
    listed, installed = _executables()
    nodes = _calls(tree, "Node")
    assert nodes
    executables = set()
    for call in nodes:
        keywords = _keywords(call)
        assert keywords["package"].value == "hax_conn_ros"
        executable = keywords["executable"].value
        assert executable in listed and executable in installed, executable
        executables.add(executable)
        assert isinstance(keywords["parameters"], ast.List)
        assert getattr(keywords["parameters"].elts[0], "id", None) == "config"
    assert executables == {"planner", "executors"}


def test_node_scripts_call_the_entry_points_setup_py_names():
    listed, installed = _executables()
    assert listed == installed
    for name, module, function in _entry_points():
        script = (ROOT / "scripts" / "nodes" / name).read_text()
        assert f"from {module} import {function}" in script, name
    cmake = (ROOT / "CMakeLists.txt").read_text()
    assert "scripts/nodes/*" in cmake and "DESTINATION lib/${PROJECT_NAME}" in cmake


@pytest.mark.ros
def test_config_keys_are_parameters_the_nodes_declare(ros_context):
    from hax_conn_ros.bringup import make_nodes, NODE_NAMES, read_parameters

    nodes = make_nodes(CONFIG, context=ros_context)
    try:
        assert sorted(n.get_name() for n in nodes) == sorted(NODE_NAMES)
        for node in nodes:
            keys = read_parameters(CONFIG, node.get_name())
            assert keys, node.get_name()
            for key, value in keys.items():
                assert node.has_parameter(key), f"{node.get_name()}: {key} is not declared"
                assert node.get_parameter(key).value == value
                assert node.describe_parameter(key).description, key
        tree = ast.parse(LAUNCH.read_text())
        overrides = [k.value for c in _calls(tree, "Node")
                     for p in _keywords(c)["parameters"].elts if isinstance(p, ast.Dict)
                     for k in p.keys]
        executor = next(n for n in nodes if n.get_name() == "gpu_executor")
        assert overrides == ["backend"] and executor.has_parameter("backend")
    finally:
        for node in nodes:
            node.destroy_node()

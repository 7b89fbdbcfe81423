"""imports.required: a missing optional dependency is one SetupError saying what to install."""

import sys

import pytest

from hax_conn_core.errors import SetupError
from hax_conn_core.imports import required


def test_a_present_module_is_returned():
    assert required("json", "json", "tests").dumps([1]) == "[1]"


def test_a_missing_module_names_the_purpose_the_package_and_the_way_around(monkeypatch):
    monkeypatch.setitem(sys.modules, "z3", None)
    with pytest.raises(SetupError) as caught:
        required("z3", "z3-solver", "planning", instead="bring the schedules")
    message = str(caught.value)
    assert message.startswith("planning needs z3-solver")
    assert "pip install z3-solver, or bring the schedules" in message

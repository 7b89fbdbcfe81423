"""Without z3 the planner says what is missing and how to go on, as one setup error."""

import sys
from pathlib import Path

import pytest

from hax_conn_core.cli.main import main
from hax_conn_core.errors import SetupError
from hax_conn_core.planner.formulation import import_z3


@pytest.fixture
def no_z3(monkeypatch):
    monkeypatch.setitem(sys.modules, "z3", None)  # `import z3` raises ImportError


def test_import_z3_names_the_package_and_the_way_around(no_z3):
    with pytest.raises(SetupError, match=r"z3-solver.*--schedule"):
        import_z3()


def test_the_cli_turns_it_into_one_line_and_exit_2(no_z3, capsys):
    profile = Path(__file__).resolve().parents[3] / "profiles" / "xavier_googlenet_alexnet.json"
    status = main(["plan", "--profile", str(profile),
                   "--dnns", "googlenet,alexnet"])
    err = capsys.readouterr().err
    assert status == 2
    assert "z3-solver" in err and "internal error" not in err and "Traceback" not in err

"""The `hax-conn` entry point itself: help, version, subcommand registry, error convention."""

import subprocess
import sys
from pathlib import Path

import pytest

import hax_conn_core
from hax_conn_core.cli import main as cli_main
from hax_conn_core.cli.registry import BUILTIN_COMMANDS, load_commands

HAX_CONN = Path(sys.executable).with_name("hax-conn")


def test_installed_command_prints_version():
    out = subprocess.run([str(HAX_CONN), "--version"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"hax-conn {hax_conn_core.__version__}"


def test_help_lists_every_subcommand_with_a_summary():
    out = subprocess.run([str(HAX_CONN), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for name in ("profile", "plan", "simulate", "run", "bench", "demo", "graph", "bringup"):
        assert f"\n    {name} " in out.stdout, f"{name} missing from --help:\n{out.stdout}"


def test_every_registered_command_has_a_name_and_summary():
    commands = load_commands()
    names = [cls.name for cls in commands]
    assert names[:len(BUILTIN_COMMANDS)] == list(BUILTIN_COMMANDS)
    for cls in commands:
        assert cls.summary(), f"{cls.name} has no help text"


def test_subcommand_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main.main(["plan", "--help"])
    assert exc.value.code == 0
    assert "usage: hax-conn plan" in capsys.readouterr().out


def test_no_command_prints_help_and_exits_2(capsys):
    assert cli_main.main([]) == 2
    assert "commands:" in capsys.readouterr().out


def test_unknown_command_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main.main(["fly"])
    assert exc.value.code == 2
    assert "invalid choice: 'fly'" in capsys.readouterr().err


def test_user_error_is_one_line_and_exit_2(capsys, tmp_path):
    # A user's mistake (here a profile file that does not exist) is one line and status 2.
    status = cli_main.main(["run", "--profile", str(tmp_path / "missing.json")])
    err = capsys.readouterr().err
    if status == 0:
        pytest.fail("hax-conn run succeeded without a profile")
    assert status == 2
    assert err.startswith("hax-conn run: error: ") and "missing.json" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_closed_pipe_is_not_a_traceback():
    # `hax-conn --help | head -1`: the reader goes away before we finish writing.
    # 300 kB of JSON: far more than a pipe buffers, so the write meets the closed pipe.
    proc = subprocess.Popen([str(HAX_CONN), "graph", "resnet152", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.read(10)
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert b"Traceback" not in err and b"BrokenPipeError" not in err, err.decode()
    # 141 is ours (128 + SIGPIPE); rich, printing the tables, exits 1 on a broken pipe itself.
    assert proc.returncode in (0, 1, 141)

"""Shipped data is found in the source tree, in an ament share directory, or where told."""

from pathlib import Path

import pytest

from hax_conn_core import resources
from hax_conn_core.errors import SetupError

REPO = Path(__file__).resolve().parents[2]


def test_source_tree_directories_are_found(monkeypatch):
    monkeypatch.delenv("HAX_CONN_SHARE", raising=False)
    assert resources.data_dir("prototxts") == REPO / "prototxts"


def test_share_override_wins(monkeypatch, tmp_path):
    (tmp_path / "prototxts").mkdir()
    monkeypatch.setenv("HAX_CONN_SHARE", str(tmp_path))
    assert resources.data_dir("prototxts") == tmp_path / "prototxts"


def test_ament_install_layout_is_found(monkeypatch, tmp_path):
    # <prefix>/lib/python3.10/site-packages/hax_conn_core and <prefix>/share/hax_conn_ros/...
    monkeypatch.delenv("HAX_CONN_SHARE", raising=False)
    package = tmp_path / "lib" / "python3.10" / "site-packages" / "hax_conn_core"
    package.mkdir(parents=True)
    share = tmp_path / "share" / "hax_conn_ros" / "profiles"
    share.mkdir(parents=True)
    monkeypatch.setattr(resources, "_HERE", package)
    assert resources.data_dir("profiles") == share


def test_missing_directory_names_where_it_looked(monkeypatch):
    monkeypatch.delenv("HAX_CONN_SHARE", raising=False)
    with pytest.raises(SetupError, match="cannot find the shipped 'nonexistent' directory.*"
                                         "HAX_CONN_SHARE"):
        resources.data_dir("nonexistent")

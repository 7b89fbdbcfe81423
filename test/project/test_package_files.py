"""The ROS package description is valid and agrees with the tree (what colcon would build)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_package_xml_is_valid_format_3_with_its_dependencies():
    from catkin_pkg.package import parse_package

    package = parse_package(str(ROOT / "package.xml"))  # validates against format 3 rules
    assert package.package_format == 3
    assert package.name == "hax_conn_ros"
    assert package.get_build_type() == "ament_cmake"
    deps = {d.name for d in
            package.build_depends + package.exec_depends + package.buildtool_depends}
    for name in ("rclpy", "std_msgs", "sensor_msgs", "diagnostic_msgs", "launch_ros",
                 "rosidl_default_generators", "rosidl_default_runtime", "python3-numpy"):
        assert name in deps, f"package.xml lacks a dependency on {name}"
    assert "rosidl_interface_packages" in [g.name for g in package.member_of_groups]


def test_cmakelists_generates_every_message_in_msg():
    cmake = (ROOT / "CMakeLists.txt").read_text()
    listed = set(re.findall(r'"msg/(\w+\.msg)"', cmake))
    on_disk = {p.name for p in (ROOT / "msg").glob("*.msg")}
    assert on_disk, "msg/ is empty"
    assert listed == on_disk


def test_project_name_matches_package_name():
    cmake = (ROOT / "CMakeLists.txt").read_text()
    assert re.search(r"^project\(hax_conn_ros\)", cmake, re.M)


def test_generated_messages_import_from_the_same_package_as_our_modules():
    import hax_conn_ros
    import hax_conn_ros.msg as msg

    assert Path(hax_conn_ros.__path__[0]) == ROOT / "hax_conn_ros"
    assert msg.Schedule.__name__ == "Schedule"


def test_plain_pip_install_ships_the_data_and_finds_it(tmp_path):
    """A non-editable install puts prototxts/profiles/config under <prefix>/share/hax_conn_ros."""
    import shutil
    import subprocess
    import sys

    # Build from a copy: an in-tree build would leave build/ and *.egg-info in the checkout.
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "build", "*.egg-info", "__pycache__", ".hypothesis"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                              "--no-deps", str(source)], capture_output=True, text=True,
                             timeout=600)
    assert install.returncode == 0, install.stdout + install.stderr
    probe = ("from hax_conn_core.resources import data_dir; "
             "print(data_dir('prototxts')); print(data_dir('profiles')); "
             "print(data_dir('config'))")
    out = subprocess.run([str(venv / "bin" / "python"), "-c", probe], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    share = venv / "share" / "hax_conn_ros"
    assert out.stdout.split() == [str(share / "prototxts"), str(share / "profiles"),
                                  str(share / "config")]
    assert (share / "prototxts" / "googlenet.prototxt").is_file()


def test_top_level_layout_of_the_ros_package():
    for name in ("hax_conn_ros", "hax_conn_core", "launch", "config", "msg", "prototxts",
                 "test", "package.xml", "setup.py", "CMakeLists.txt"):
        assert (ROOT / name).exists(), f"{name} missing at the repository root"

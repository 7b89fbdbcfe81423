"""The ``tensorrt`` backend's decisions, as pure functions (no TensorRT, no CUDA needed).

Everything here is plain Python so that it is tested on machines without a Jetson
(test/core/runtime/backends/test_tensorrt.py); the modules that touch TensorRT
(:mod:`.tensorrt_build`, :mod:`.tensorrt`) and CUDA (:mod:`.tensorrt_cuda`) only apply what
these functions decide:

* :func:`trt_api`: which TensorRT API a version string gets (8.x bindings and
  ``execute_async_v2`` vs 10.x tensor names, ``set_tensor_address`` and
  ``execute_async_v3``; the explicit-batch network flag), and which versions are refused.
* :func:`check_settings` / :func:`accelerator_settings`: the device description's
  ``runtime: tensorrt:`` section, validated, with defaults.
* :func:`precisions_for`: fp32 / fp16 / int8 on the GPU, fp16 / int8 on a DLA.
* :func:`build_plan`: which builder flags, default device type, DLA core and memory pools an
  engine is built with. GPU fallback is never among them (docs/conventions.md).
* :func:`cache_settings`: what enters the engine cache key beyond the spec.
* :func:`missing_frameworks_message`: the one SetupError message when TensorRT or the CUDA
  bindings are missing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from hax_conn_core.errors import ConfigError, InternalError, SetupError

#: Oldest TensorRT supported: ``IBuilderConfig.set_memory_pool_limit`` arrived in 8.4
#: (JetPack 5.0.2). Versions from 11 on are refused: 11.x removed the per-precision builder
#: flags (networks are strongly typed) and dropped DLA from several JetPack releases.
MIN_VERSION = (8, 4)
MAX_MAJOR = 10

#: Device types of an accelerator (``runtime.tensorrt.<acc>.device_type``).
DEVICE_TYPES = ("gpu", "dla")

#: Per-accelerator settings and their defaults; ``device_type`` defaults from the name
#: (:func:`default_device_type`), ``dla_core`` to 0 on a DLA (and is refused on a GPU).
SETTINGS: Mapping[str, Any] = {"device_type": None, "dla_core": None, "workspace_mb": 1024}

#: Backend options (``get_backend("tensorrt", **options)``) and their defaults.
OPTIONS: Mapping[str, Any] = {
    "profile_layers": False,       # IProfiler per-layer times each run (synchronises the run)
    "calibration_dir": None,       # int8 calibration caches; default next to the engine cache
    "calibration_batches": 16,     # frames the int8 calibrator reads (batch size 1 each)
    "calibration_inputs": None,    # callable(spec, count) -> list of {input name: array}
}

#: Builder flags by precision. int8 keeps fp16 allowed so that a layer TensorRT leaves out
#: of int8 runs in fp16 rather than fp32, which a DLA cannot run.
PRECISION_FLAGS: Mapping[str, Tuple[str, ...]] = {
    "fp32": (),
    "fp16": ("FP16",),
    "int8": ("INT8", "FP16"),
}

#: Flags this backend never sets, whatever is asked (docs/conventions.md: a layer the DLA cannot
#: run fails the build instead of adding a GPU segment the simulator never sees).
FORBIDDEN_FLAGS = ("GPU_FALLBACK",)


# --- versions --------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrtApi:
    """How to talk to one TensorRT version.

    ``io``: ``"bindings"`` (8.x: binding indices, ``execute_async_v2(bindings=...)``) or
    ``"tensors"`` (9.x, 10.x: ``get_tensor_name``, ``set_tensor_address``,
    ``execute_async_v3``). 8.5 and 8.6 have both; 8.x keeps the bindings API so that one path
    serves every 8.x. ``explicit_batch``: create networks with the EXPLICIT_BATCH flag
    (required before 10.0, deprecated and ignored from 10.0).
    """

    version: Tuple[int, int, int]
    io: str
    explicit_batch: bool


def parse_version(text: str) -> Tuple[int, int, int]:
    """``"8.6.2.3"`` -> (8, 6, 2); a version with fewer parts is padded with zeros."""
    match = re.match(r"^\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?", str(text))
    if not match:
        raise SetupError(f"TensorRT reports version {text!r}, which is not of the form "
                         "MAJOR.MINOR.PATCH")
    return tuple(int(part or 0) for part in match.groups())  # type: ignore[return-value]


def trt_api(version_text: str) -> TrtApi:
    """The API choices for TensorRT ``version_text``; an unsupported version is a SetupError."""
    version = parse_version(version_text)
    if version[:2] < MIN_VERSION:
        raise SetupError(f"TensorRT {version_text} is too old: the tensorrt backend needs "
                         f"{MIN_VERSION[0]}.{MIN_VERSION[1]} or newer (JetPack 5.0.2 or newer "
                         "ships it)")
    if version[0] > MAX_MAJOR:
        raise SetupError(f"TensorRT {version_text} is not supported: the tensorrt backend "
                         f"runs TensorRT 8.4 to {MAX_MAJOR}.x (11.x removed the precision "
                         "builder flags it uses)")
    if version[0] == 8:
        return TrtApi(version, io="bindings", explicit_batch=True)
    return TrtApi(version, io="tensors", explicit_batch=version[0] < 10)


# --- settings --------------------------------------------------------------------------------

def default_device_type(accelerator: str) -> str:
    """``dla`` for an accelerator whose name starts with ``dla`` (``dla``, ``dla1``), else
    ``gpu``."""
    return "dla" if accelerator.lower().startswith("dla") else "gpu"


def accelerator_settings(accelerator: str, raw: Mapping[str, Any], where: str = ""
                         ) -> Dict[str, Any]:
    """The settings of one accelerator, checked, with defaults filled in.

    ``raw`` is ``runtime.tensorrt.<accelerator>`` of the device description; ``where`` names
    it in messages. Returns ``device_type``, ``dla_core`` (None on a GPU) and ``workspace_mb``.
    """
    where = where or f"runtime.tensorrt.{accelerator}"
    unknown = sorted(set(raw) - set(SETTINGS))
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}; expected "
                          f"{', '.join(SETTINGS)}")
    device_type = raw.get("device_type") or default_device_type(accelerator)
    if device_type not in DEVICE_TYPES:
        raise ConfigError(f"{where}.device_type: {device_type!r}; expected one of "
                          f"{', '.join(DEVICE_TYPES)}")
    dla_core = raw.get("dla_core")
    if device_type == "gpu":
        if dla_core is not None:
            raise ConfigError(f"{where}.dla_core: set on a GPU accelerator; a DLA core is "
                              "chosen only where device_type is dla")
    else:
        dla_core = 0 if dla_core is None else dla_core
        if isinstance(dla_core, bool) or not isinstance(dla_core, int) or dla_core < 0:
            raise ConfigError(f"{where}.dla_core: {dla_core!r}; expected an integer >= 0 "
                              "(Xavier and Orin have DLA cores 0 and 1)")
    workspace_mb = raw.get("workspace_mb", SETTINGS["workspace_mb"])
    if (isinstance(workspace_mb, bool) or not isinstance(workspace_mb, int)
            or workspace_mb < 1):
        raise ConfigError(f"{where}.workspace_mb: {workspace_mb!r}; expected an integer >= 1 "
                          "(MiB of builder workspace)")
    return {"device_type": device_type, "dla_core": dla_core, "workspace_mb": workspace_mb}


def check_settings(device_id: str, accelerators: Sequence[str],
                   runtime: Mapping[str, Mapping[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """Every accelerator's settings (see :func:`accelerator_settings`); two DLA accelerators
    on one DLA core are refused."""
    result = {}
    cores: Dict[int, str] = {}
    for acc in accelerators:
        where = f"device {device_id!r}: runtime.tensorrt.{acc}"
        settings = accelerator_settings(acc, runtime.get(acc, {}) or {}, where)
        core = settings["dla_core"]
        if core is not None:
            if core in cores:
                raise ConfigError(f"{where}.dla_core: core {core} is already {cores[core]}'s; "
                                  "give each DLA accelerator its own core")
            cores[core] = acc
        result[acc] = settings
    return result


def check_options(options: Mapping[str, Any]) -> Dict[str, Any]:
    """The backend options, checked, with defaults filled in (see :data:`OPTIONS`)."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"backend 'tensorrt': unknown option(s) {', '.join(unknown)}; "
                          f"expected {', '.join(OPTIONS)}")
    result = dict(OPTIONS)
    result.update(options)
    if not isinstance(result["profile_layers"], bool):
        raise ConfigError("backend 'tensorrt': profile_layers: expected true or false, found "
                          f"{result['profile_layers']!r}")
    batches = result["calibration_batches"]
    if isinstance(batches, bool) or not isinstance(batches, int) or batches < 1:
        raise ConfigError(f"backend 'tensorrt': calibration_batches: {batches!r}; expected an "
                          "integer >= 1")
    if result["calibration_inputs"] is not None and not callable(result["calibration_inputs"]):
        raise ConfigError("backend 'tensorrt': calibration_inputs: expected a callable "
                          "(spec, count) -> list of {input name: array}")
    if result["calibration_dir"] is not None:
        result["calibration_dir"] = Path(result["calibration_dir"])
    return result


def precisions_for(device_type: str) -> Tuple[str, ...]:
    """What TensorRT builds on a device type: a DLA runs fp16 and int8 only."""
    if device_type == "dla":
        return ("fp16", "int8")
    return ("fp32", "fp16", "int8")


# --- building --------------------------------------------------------------------------------

@dataclass(frozen=True)
class BuildPlan:
    """What the builder configuration gets (applied by ``tensorrt_build.apply_plan``).

    ``flags``: ``trt.BuilderFlag`` member names to set; ``clear_flags``: names to clear where
    the version has them (TF32 for fp32, so that fp32 means fp32); ``device_type``: ``gpu``
    or ``dla`` (``config.default_device_type``); ``dla_core``: ``config.DLA_core`` (and the
    runtime's) or None; ``memory_pools``: ``trt.MemoryPoolType`` name -> bytes;
    ``calibrate``: an int8 calibrator is attached.
    """

    flags: Tuple[str, ...]
    clear_flags: Tuple[str, ...]
    device_type: str
    dla_core: Optional[int]
    memory_pools: Mapping[str, int]
    calibrate: bool


def build_plan(settings: Mapping[str, Any], precision: str) -> BuildPlan:
    """The builder configuration for an accelerator's ``settings`` (from
    :func:`accelerator_settings`) at ``precision``."""
    device_type = settings["device_type"]
    if precision not in precisions_for(device_type):
        raise ConfigError(f"TensorRT builds {', '.join(precisions_for(device_type))} on a "
                          f"{device_type.upper()}; {precision} was asked for")
    flags = PRECISION_FLAGS[precision]
    bad = [flag for flag in flags if flag in FORBIDDEN_FLAGS]
    if bad:  # pragma: no cover - a guard against editing PRECISION_FLAGS
        raise InternalError(f"builder flags {bad} must never be set")
    return BuildPlan(flags=flags, clear_flags=("TF32",) if precision == "fp32" else (),
                     device_type=device_type,
                     dla_core=settings["dla_core"] if device_type == "dla" else None,
                     memory_pools={"WORKSPACE": int(settings["workspace_mb"]) << 20},
                     calibrate=precision == "int8")


# --- the engine cache ------------------------------------------------------------------------

def file_sha256(path: Optional[Path]) -> Optional[str]:
    """SHA-256 of a file's bytes, or None where there is no such file."""
    if path is None:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def cache_settings(device_id: str, settings: Mapping[str, Any], precision: str,
                   calibration_sha256: Optional[str] = None) -> Dict[str, Any]:
    """The fields beyond the spec that decide a plan's content, for ``cache.engine_key``.

    A plan is specific to the device it was built on (Xavier's Volta GPU vs Orin's Ampere
    GPU; DLA 1.0 vs 2.0), to the builder settings and, for int8, to the calibration cache it
    was built from. The TensorRT version enters the key as the backend version.
    """
    fields: Dict[str, Any] = {"device": device_id, "device_type": settings["device_type"],
                              "dla_core": settings["dla_core"],
                              "workspace_mb": settings["workspace_mb"],
                              "flags": sorted(build_plan(settings, precision).flags)}
    if precision == "int8":
        if calibration_sha256 is None:
            raise InternalError("an int8 engine's cache key needs its calibration cache's hash")
        fields["calibration_sha256"] = calibration_sha256
    return fields


def calibration_file_name(dnn: str, first: int, last: int, weights_id: str,
                          graph_sha256: str) -> str:
    """The calibration cache file of a range: one per range, graph and weights (its scales
    depend on all three; the device does not change them)."""
    tag = hashlib.sha256(f"{graph_sha256}|{weights_id}".encode()).hexdigest()[:16]
    return f"{dnn}-{first}-{last}-{tag}.calib"


# --- setup -----------------------------------------------------------------------------------

def missing_frameworks_message(tensorrt_error: Optional[str], cuda_error: Optional[str]
                               ) -> Optional[str]:
    """One message naming what is missing (TensorRT, CUDA bindings or both) and how to get
    it; None when nothing is."""
    missing = []
    if tensorrt_error is not None:
        missing.append(f"TensorRT's Python bindings (import tensorrt: {tensorrt_error}); on a "
                       "Jetson they come with JetPack: sudo apt install python3-libnvinfer "
                       "(or nvidia-jetpack), and a virtual environment made with "
                       "--system-site-packages to see them")
    if cuda_error is not None:
        missing.append(f"CUDA's Python bindings ({cuda_error}); pip install cuda-python "
                       "matching JetPack's CUDA (12.x on JetPack 6, 11.x on JetPack 5), or "
                       "pip install pycuda")
    if not missing:
        return None
    return ("the tensorrt backend runs on a Jetson (AGX Xavier, AGX Orin) and needs "
            + "; and ".join(missing)
            + ". Without a Jetson, use --backend onnxruntime (CPU) or cuda-sm (a CUDA GPU)")

"""DRAM (EMC) utilisation samples: jetson-stats (jtop) on a Jetson, NVML on a discrete GPU.

``EmcSampler(source="auto")`` picks the first that works: ``jtop`` (needs the jtop service),
then ``nvml`` (pynvml and an NVIDIA driver: the memory controller's busy percentage), else
``unavailable`` (its samples are NaN). ``sample(peak_gbps)`` returns {percent, gbps, source};
``gbps`` is the percentage of ``peak_gbps`` (NaN without a peak). Nothing is imported until a
sampler is made, and a failing source is left for the next one, never raised.
"""

from __future__ import annotations

import math
from typing import Dict, Optional

SOURCES = ("auto", "jtop", "nvml", "unavailable")


class EmcSampler:
    def __init__(self, source: str = "auto"):
        if source not in SOURCES:
            from hax_conn_core.errors import ConfigError

            raise ConfigError(f"EMC source {source!r}: expected one of {', '.join(SOURCES)}")
        self.source, self._handle = "unavailable", None
        for name in (("jtop", "nvml") if source == "auto" else (source,)):
            opener = getattr(self, f"_open_{name}", None)
            try:
                if opener is not None and opener():
                    self.source = name
                    break
            except Exception:  # noqa: BLE001 - an absent or broken source: try the next
                self._handle = None

    def _open_jtop(self) -> bool:
        from jtop import jtop

        self._handle = jtop()
        self._handle.start()
        return bool(self._handle.ok())

    def _open_nvml(self) -> bool:
        import pynvml

        pynvml.nvmlInit()
        self._handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        return True

    def sample(self, peak_gbps: Optional[float] = None) -> Dict[str, object]:
        percent = math.nan
        try:
            if self.source == "jtop":
                emc = self._handle.memory.get("EMC", {})
                percent = float(emc.get("val", math.nan))
            elif self.source == "nvml":
                import pynvml

                percent = float(pynvml.nvmlDeviceGetUtilizationRates(self._handle).memory)
        except Exception:  # noqa: BLE001 - a failed read is a missing sample, not a crash
            percent = math.nan
        gbps = percent * peak_gbps / 100.0 if peak_gbps else math.nan
        return {"percent": percent, "gbps": gbps, "source": self.source}

    def close(self) -> None:
        if self.source == "jtop" and self._handle is not None:
            self._handle.close()
        self._handle = None

"""CUDA green contexts: one GPU split into SM partitions that run at once and share its memory.

The ``cuda-sm`` backend (cuda_sm.py) emulates a GPU + DLA SoC on one data-centre GPU: each
accelerator of the device description is a partition of the card's SMs, with its own stream.
This module holds the two halves of that:

* :func:`plan_split` (pure, no GPU): checks the requested SM counts against the split
  granularity and the card's SM count and says how to carve them. Tested here
  (test/core/runtime/backends/test_cuda_sm.py).
* :func:`create_partitions` (cuda.bindings, on the GPU machine): the driver-API recipe of
  docs/runtime-cuda-sm.md: ``cuDeviceGetDevResource(dev, SM)`` ->
  ``cuDevSmResourceSplitByCount`` -> ``cuDevResourceGenerateDesc`` -> ``cuGreenCtxCreate`` ->
  ``cuGreenCtxStreamCreate(NON_BLOCKING)``, each raw stream wrapped in
  ``torch.cuda.ExternalStream``.

How a split is carved: the driver splits the card's SMs into groups of a multiple of the
granularity (8 on Hopper, compute capability 9.x) and leaves a remainder (132 SMs: 4). For two
partitions where one takes "the rest" (124 + 8 on 132 SMs) that is the note's recipe: one group
of the small size, the remainder is the other partition. Otherwise the card is split into
groups of the granularity and each partition is the union of whole groups (the largest one
also takes the remainder when its size asks for it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from hax_conn_core.errors import BackendError, ConfigError, SetupError

#: SMs per green-context group on Hopper (compute capability 9.x; CUDA driver API docs,
#: cuDevSmResourceSplitByCount: minimum and granularity 8 there).
SM_GRANULARITY = 8


@dataclass(frozen=True)
class SplitPlan:
    """How to carve partitions: ``sizes`` (accelerator -> SMs, the request), ``rest`` (the
    accelerator that takes the remainder of the card, or None), ``recipe``: ``"one-group"``
    (one split call of one group, the remainder is ``rest``) or ``"groups"`` (the card split
    into groups of the granularity, each partition a union of whole groups)."""

    sizes: Mapping[str, int]
    total_sms: Optional[int]
    granularity: int
    rest: Optional[str]
    recipe: str

    def describe(self) -> str:
        """``gpu 124 + dla 8 SMs``: how results name the split."""
        return " + ".join(f"{acc} {sms}" for acc, sms in self.sizes.items()) + " SMs"


def plan_split(sizes: Mapping[str, Any], total_sms: Optional[int] = None,
               granularity: int = SM_GRANULARITY, where: str = "cuda-sm") -> SplitPlan:
    """Check ``sizes`` (accelerator -> SM count) and say how to carve them.

    Every partition has at least ``granularity`` SMs; all but one are multiples of it; that
    one (the largest) may instead be exactly what the others leave of the card
    (``total_sms - sum(others)``), since the driver's remainder is not a multiple of the
    granularity (132 = 16 x 8 + 4). The sum must not exceed ``total_sms``. With ``total_sms``
    None (the card not yet known) a non-multiple is accepted as "the rest" and checked when
    the card is. A ConfigError says what was wrong and what would do.
    """
    if not sizes:
        raise ConfigError(f"{where}: no partitions; expected an SM count per accelerator "
                          "(e.g. gpu: {sms: 124}, dla: {sms: 8})")
    checked: Dict[str, int] = {}
    for acc, sms in sizes.items():
        if isinstance(sms, bool) or not isinstance(sms, int):
            raise ConfigError(f"{where}.{acc}.sms: {sms!r}; expected an integer number of SMs")
        if sms < granularity:
            raise ConfigError(f"{where}.{acc}.sms: {sms}; a green-context partition has at "
                              f"least {granularity} SMs")
        checked[acc] = sms
    total = sum(checked.values())
    if total_sms is not None and total > total_sms:
        raise ConfigError(f"{where}: the partitions ask for {total} SMs "
                          f"({_sizes_text(checked)}); the card has {total_sms}")
    largest = max(checked, key=lambda acc: (checked[acc], acc))
    off = [acc for acc, sms in checked.items() if sms % granularity]
    bad = [acc for acc in off if acc != largest]
    if bad:
        acc = bad[0]
        raise ConfigError(f"{where}.{acc}.sms: {checked[acc]}; partitions come in multiples "
                          f"of {granularity} SMs (only the largest partition may take the "
                          f"card's remainder): try {_nearest(checked[acc], granularity)}")
    rest: Optional[str] = None
    others = total - checked[largest]
    if off:  # the largest is not a multiple: it must be the remainder of the card
        if total_sms is not None and checked[largest] != total_sms - others:
            raise ConfigError(
                f"{where}.{largest}.sms: {checked[largest]}; not a multiple of {granularity} "
                f"SMs, so it must be the rest of the card: {total_sms} - {others} = "
                f"{total_sms - others} (or a multiple of {granularity}: "
                f"{_nearest(checked[largest], granularity)})")
        rest = largest
    elif total_sms is not None and total == total_sms:
        rest = largest
    recipe = "one-group" if (len(checked) == 2 and rest is not None) else "groups"
    return SplitPlan(sizes=dict(checked), total_sms=total_sms, granularity=granularity,
                     rest=rest, recipe=recipe)


def _nearest(sms: int, granularity: int) -> str:
    low = max(granularity, sms - sms % granularity)
    high = low + granularity
    return f"{low} or {high}" if low != sms else str(low)


def _sizes_text(sizes: Mapping[str, int]) -> str:
    return " + ".join(f"{acc} {sms}" for acc, sms in sizes.items())


# --- the driver side (GPU machine) -----------------------------------------------------------

def driver():
    """``cuda.bindings.driver`` (cuda-python), or a SetupError saying what to install."""
    try:
        from cuda.bindings import driver as cu
    except ImportError:
        try:  # cuda-python < 12.6 spelled it cuda.cuda
            from cuda import cuda as cu
        except ImportError as error:
            raise SetupError("cuda-python (cuda.bindings) is not installed; the cuda-sm "
                             "backend creates its green-context partitions with it: pip "
                             f"install cuda-bindings ({error})") from None
    return cu


def _check(result, what: str):
    """Unpack a cuda.bindings call: (CUresult, *values) -> values; raise on an error."""
    cu = driver()
    if isinstance(result, tuple):
        err, values = result[0], result[1:]
    else:
        err, values = result, ()
    if err != cu.CUresult.CUDA_SUCCESS:
        try:
            name = cu.cuGetErrorName(err)[1].decode()
        except Exception:  # the name is a courtesy
            name = str(err)
        raise BackendError(f"green contexts: {what} failed: {name}")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


@dataclass
class Partition:
    """One green-context partition: its accelerator name, SM count (what the driver gave),
    the green context, the raw stream and its torch wrapper."""

    name: str
    sms: int
    context: Any = field(repr=False)
    raw_stream: Any = field(repr=False)
    stream: Any = field(repr=False)

    def destroy(self) -> None:
        cu = driver()
        if self.raw_stream is not None:
            try:
                self.stream.synchronize()
            finally:
                cu.cuStreamDestroy(self.raw_stream)
                self.raw_stream = None
        if self.context is not None:
            cu.cuGreenCtxDestroy(self.context)
            self.context = None


def card_sms(device_index: int = 0) -> int:
    """SMs of the card, read through the driver (what the split starts from)."""
    cu = driver()
    dev = _check(cu.cuDeviceGet(device_index), "cuDeviceGet")
    resource = _check(cu.cuDeviceGetDevResource(dev, cu.CUdevResourceType.CU_DEV_RESOURCE_TYPE_SM),
                      "cuDeviceGetDevResource(SM)")
    return int(resource.sm.smCount)


def split_groups(device_index: int, min_count: int, groups: int = 1
                 ) -> Tuple[List[int], int]:
    """Probe: split the card into ``groups`` groups of at least ``min_count`` SMs; returns
    (the groups' SM counts, the remainder's). Shows the driver's granularity (run 1)."""
    cu = driver()
    dev = _check(cu.cuDeviceGet(device_index), "cuDeviceGet")
    resource = _check(cu.cuDeviceGetDevResource(dev, cu.CUdevResourceType.CU_DEV_RESOURCE_TYPE_SM),
                      "cuDeviceGetDevResource(SM)")
    made, count, remaining = _check(cu.cuDevSmResourceSplitByCount(groups, resource, 0,
                                                                   min_count),
                                    f"cuDevSmResourceSplitByCount(minCount={min_count})")
    return [int(g.sm.smCount) for g in list(made)[:int(count)]], int(remaining.sm.smCount)


def create_partitions(plan: SplitPlan, device_index: int = 0) -> Dict[str, Partition]:
    """Green-context partitions for ``plan`` on CUDA device ``device_index``, each with a
    non-blocking stream wrapped for torch. torch's CUDA context must exist first. Destroys
    what it made if any step fails."""
    import torch

    cu = driver()
    dev = _check(cu.cuDeviceGet(device_index), "cuDeviceGet")
    whole = _check(cu.cuDeviceGetDevResource(dev, cu.CUdevResourceType.CU_DEV_RESOURCE_TYPE_SM),
                   "cuDeviceGetDevResource(SM)")
    resources: Dict[str, List[Any]] = {}
    if plan.recipe == "one-group":
        (small,) = [acc for acc in plan.sizes if acc != plan.rest]
        made, count, remaining = _check(
            cu.cuDevSmResourceSplitByCount(1, whole, 0, plan.sizes[small]),
            f"cuDevSmResourceSplitByCount(1 group of {plan.sizes[small]} SMs)")
        resources[small] = [list(made)[0]]
        resources[plan.rest] = [remaining]
    else:
        wanted = int(whole.sm.smCount) // plan.granularity
        made, count, remaining = _check(
            cu.cuDevSmResourceSplitByCount(wanted, whole, 0, plan.granularity),
            f"cuDevSmResourceSplitByCount({wanted} groups of {plan.granularity} SMs)")
        pool = list(made)[:int(count)]
        for acc, sms in plan.sizes.items():
            take = sms // plan.granularity
            if take > len(pool):
                raise ConfigError(
                    f"cuda-sm: {plan.describe()}: {acc} needs {take} groups of "
                    f"{plan.granularity} SMs and only {len(pool)} are left: the driver splits "
                    f"this card's {int(whole.sm.smCount)} SMs into {int(count)} groups of "
                    f"{plan.granularity} + {int(remaining.sm.smCount)} left over; use fewer "
                    "SMs, or let the larger partition take the rest of the card (e.g. 124 + 8 "
                    "on 132 SMs)")
            resources[acc], pool = pool[:take], pool[take:]
            if acc == plan.rest and sms % plan.granularity:
                resources[acc].append(remaining)
    partitions: Dict[str, Partition] = {}
    try:
        for acc in plan.sizes:
            parts = resources[acc]
            got = sum(int(r.sm.smCount) for r in parts)
            if got != plan.sizes[acc]:
                raise ConfigError(f"cuda-sm.{acc}.sms: {plan.sizes[acc]} asked for; the driver "
                                  f"gave {got} SMs (card: {int(whole.sm.smCount)} SMs, groups "
                                  f"of {plan.granularity})")
            desc = _check(cu.cuDevResourceGenerateDesc(parts, len(parts)),
                          f"cuDevResourceGenerateDesc({acc})")
            context = _check(cu.cuGreenCtxCreate(
                desc, dev, cu.CUgreenCtxCreate_flags.CU_GREEN_CTX_DEFAULT_STREAM),
                f"cuGreenCtxCreate({acc})")
            partition = Partition(acc, got, context, None, None)
            partitions[acc] = partition
            partition.raw_stream = _check(cu.cuGreenCtxStreamCreate(
                context, cu.CUstream_flags.CU_STREAM_NON_BLOCKING, 0),
                f"cuGreenCtxStreamCreate({acc})")
            partition.stream = torch.cuda.ExternalStream(int(partition.raw_stream),
                                                         device=device_index)
    except BaseException:
        for partition in partitions.values():
            try:
                partition.destroy()
            except Exception:  # already failing: keep the first error
                pass
        raise
    return partitions

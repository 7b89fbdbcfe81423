"""What a DNN's output tensors become in a result: its top-k classes, or the tensors themselves.

Each model chooses one (docs/outputs.md):

``classify``
    The first output, flattened, is one score per class (the paper DNNs end in Softmax, so the
    scores are probabilities). The ``top_k`` best, best first (ties: lower index first), with
    their names from a labels file (line i names class i) or, without one, indices only.
``raw``
    Every output tensor as it is: name, shape and data (float32, row-major), for detectors,
    segmenters and anything else whose outputs are not one score per class.

Bad settings are ConfigErrors naming the model and what was expected: an unknown choice, a
``top_k`` below 1 or above the number of classes, a labels file that cannot be read or whose
line count is not the number of classes. No ROS here: the nodes turn the results into messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from hax_conn_core.errors import ConfigError

CLASSIFY = "classify"
RAW = "raw"
KINDS = (CLASSIFY, RAW)
DEFAULT_TOP_K = 5
#: The keys an ``outputs:`` entry may have.
KEYS = ("kind", "top_k", "labels")


@dataclass(frozen=True)
class OutputsConfig:
    """One model's choice: ``kind`` (classify | raw), and for classify ``top_k`` and
    ``labels`` (a labels file's path, or None for indices only)."""

    kind: str = CLASSIFY
    top_k: int = DEFAULT_TOP_K
    labels: Optional[str] = None


@dataclass(frozen=True)
class ClassifyResult:
    """The best classes, best first: their indices, scores and (with a labels file) names."""

    class_ids: Tuple[int, ...]
    scores: Tuple[float, ...]
    names: Tuple[str, ...] = ()  # empty without a labels file


@dataclass(frozen=True)
class OutputTensor:
    """One output tensor: its graph name, shape and values (float32, flat, row-major)."""

    name: str
    shape: Tuple[int, ...]
    data: np.ndarray


@dataclass(frozen=True)
class RawOutputs:
    """Every output tensor of the DNN, in the graph's output order."""

    tensors: Tuple[OutputTensor, ...]


PostprocessResult = Union[ClassifyResult, RawOutputs]


def parse_outputs_config(entry: Optional[Mapping[str, Any]], where: str) -> OutputsConfig:
    """An ``outputs:`` mapping (missing keys take the defaults) -> OutputsConfig.

    ``labels`` of '' or None means indices only. ``where`` names the entry in errors.
    """
    entry = dict(entry or {})
    unknown = sorted(set(entry) - set(KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; expected "
                          f"{', '.join(KEYS)}")
    kind = entry.get("kind", CLASSIFY)
    if kind not in KINDS:
        raise ConfigError(f"{where}: kind {kind!r} is unknown; expected one of "
                          f"{', '.join(KINDS)}")
    top_k = entry.get("top_k", DEFAULT_TOP_K)
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ConfigError(f"{where}: top_k {top_k!r}; expected an integer >= 1")
    labels = entry.get("labels") or None
    if labels is not None and not isinstance(labels, (str, Path)):
        raise ConfigError(f"{where}: labels {labels!r}; expected a path to a labels file "
                          "(one class name per line) or '' for indices")
    return OutputsConfig(kind=kind, top_k=int(top_k),
                         labels=None if labels is None else str(labels))


def read_labels(path: Union[str, Path], where: str) -> Tuple[str, ...]:
    """Class names, one per line (line i names class i); trailing blank lines are ignored."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise ConfigError(f"{where}: cannot read labels file {path}: {reason}; expected a "
                          "text file with one class name per line") from None
    names = [line.strip() for line in text.splitlines()]
    while names and not names[-1]:
        names.pop()
    if not names:
        raise ConfigError(f"{where}: labels file {path} is empty; expected one class name "
                          "per line")
    return tuple(names)


class Postprocessor:
    """Applies one model's OutputsConfig to its output tensors (labels read once, here)."""

    def __init__(self, config: OutputsConfig, dnn: str):
        self.config = config
        self.dnn = dnn
        self._where = f"{dnn}: outputs"
        self.labels: Tuple[str, ...] = () if config.labels is None or config.kind == RAW \
            else read_labels(config.labels, self._where)
        self._checked: Optional[Tuple] = None  # the output shapes last found to fit

    def check(self, output_shapes: Mapping[str, Sequence[int]]) -> None:
        """ConfigError unless the config fits outputs of these shapes (name -> shape)."""
        if self.config.kind == RAW:
            return
        if not output_shapes:
            raise ConfigError(f"{self._where}: the model has no outputs; expected one with a "
                              "score per class for 'classify'")
        name, shape = next(iter(output_shapes.items()))
        classes = int(np.prod(tuple(shape), dtype=np.int64))
        if self.config.top_k > classes:
            raise ConfigError(f"{self._where}: top_k {self.config.top_k} exceeds the "
                              f"{classes} classes of output {name!r} {tuple(shape)}; expected "
                              f"1 to {classes}")
        if self.labels and len(self.labels) != classes:
            raise ConfigError(f"{self._where}: labels file {self.config.labels} names "
                              f"{len(self.labels)} classes, output {name!r} {tuple(shape)} "
                              f"has {classes}; expected one line per class")

    def __call__(self, outputs: Mapping[str, Any]) -> PostprocessResult:
        """The DNN's outputs (name -> array, the graph's output order) -> its result."""
        # The runtime hands numpy arrays on: used as they are (each np.asarray is one more
        # numpy call, 5-10 us with the cold caches after a frame's inference).
        arrays = outputs if all(type(v) is np.ndarray for v in outputs.values()) else \
            {name: np.asarray(value) for name, value in outputs.items()}
        shapes = tuple([(name, array.shape) for name, array in arrays.items()])
        if shapes != self._checked:  # a model's output shapes do not change frame to frame
            self.check(dict(shapes))
            self._checked = shapes
        if self.config.kind == RAW:
            return RawOutputs(tuple(
                OutputTensor(name=name, shape=tuple(int(d) for d in array.shape),
                             data=np.ascontiguousarray(array, np.float32).reshape(-1))
                for name, array in arrays.items()))
        scores = next(iter(arrays.values()))
        if scores.dtype is not _FLOAT32:
            scores = scores.astype(np.float32)
        ids, values = best_scores(scores.reshape(-1), self.config.top_k)
        return ClassifyResult(class_ids=tuple(ids), scores=tuple(values),
                              names=tuple(self.labels[i] for i in ids) if self.labels else ())


def best_scores(scores: np.ndarray, k: int) -> Tuple[list, list]:
    """:func:`top_k`'s indices and their scores, as lists of Python ints and floats.

    A few classes of many (``k`` up to SMALL_K): ``k`` argmax over a copy, each best masked
    with -inf once taken; argmax returns the first of equal scores, which is the stable order.
    A NaN (argmax's pick if any) or a -inf reached (masked values, or too few classes) leaves
    it to :func:`top_k`. After a frame's inference, with cold caches, each distinct numpy call
    costs 10-40 us: this makes 1 + 3k cheap ones against top_k's 9 (a partition, a compare, a
    nonzero, an argsort, ...): 0.04 against 0.09 ms per result here (docs/bench-ros.md)."""
    if k <= SMALL_K:
        work = scores.copy()
        ids, values = [], []
        for _ in range(k):
            best = int(work.argmax())
            value = float(work[best])
            if not value > _NO_SCORE:  # NaN or -inf
                break
            ids.append(best)
            values.append(value)
            work[best] = _NO_SCORE
        else:
            return ids, values
    best = top_k(scores, k)
    return best.tolist(), scores[best].tolist()


#: best_scores takes the argmax way up to this many classes (k argmax of n scores each).
SMALL_K = 8
_NO_SCORE = -np.inf
_FLOAT32 = np.dtype(np.float32)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best scores, best first, equal scores by lower index: the first
    ``k`` of a stable sort of the negated scores, without sorting all of them."""
    if k >= scores.size:
        return np.argsort(-scores, kind="stable")[:k]
    threshold = np.partition(scores, scores.size - k)[scores.size - k]  # the k-th best
    # every score at or above it (ties at the threshold included), then the stable order
    candidates = np.flatnonzero(scores >= threshold)
    if candidates.size < k:  # NaN among the best (it compares false): sort them all
        return np.argsort(-scores, kind="stable")[:k]
    return candidates[np.argsort(-scores[candidates], kind="stable")][:k]


def make_postprocessor(entry: Optional[Mapping[str, Any]], dnn: str,
                       where: Optional[str] = None) -> Postprocessor:
    """A Postprocessor from an ``outputs:`` mapping (None: classify, top-5, indices)."""
    return Postprocessor(parse_outputs_config(entry, where or f"{dnn}: outputs"), dnn)

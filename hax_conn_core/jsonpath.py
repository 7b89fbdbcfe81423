"""Reading our JSON file formats with error messages that name the JSON path.

Every complaint has the shape ``<source>: <path>: expected <what>, found <what>``, e.g.
``profiles/x.json: dnns.googlenet.groups[3].time_ms: expected an object of accelerator -> ms,
found a list``. The readers in profile.py and schedule.py build on these few helpers; each takes
the error class to raise so that a profile reports ProfileError and a schedule ScheduleError.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple, Type, Union

from hax_conn_core.errors import HaxConnError

ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")

PathPart = Union[str, int]


def join(path: str, part: PathPart) -> str:
    """``dnns`` + ``googlenet`` -> ``dnns.googlenet``; + 3 -> ``...[3]``; odd keys are quoted."""
    if isinstance(part, int):
        return f"{path}[{part}]"
    if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", part):
        return f"{path}.{part}" if path else part
    return f"{path}[{json.dumps(part)}]"


def describe(value: Any) -> str:
    """A short description of a JSON value, for 'found ...'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {json.dumps(value)}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {json.dumps(text)}"
    if isinstance(value, list):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class Reader:
    """Raises ``error`` (a HaxConnError subclass) with ``source: path: message``."""

    def __init__(self, source: str, error: Type[HaxConnError]):
        self.source = source
        self.error = error

    def fail(self, path: str, message: str) -> "HaxConnError":
        """The exception to raise for a problem at ``path`` (the caller raises it)."""
        where = f"{self.source}: {path}" if path else self.source
        return self.error(f"{where}: {message}")

    def expect(self, path: str, what: str, found: Any) -> "HaxConnError":
        return self.fail(path, f"expected {what}, found {describe(found)}")

    # --- containers ----------------------------------------------------------------------
    def obj(self, value: Any, path: str, what: str = "an object") -> Dict[str, Any]:
        if not isinstance(value, dict):
            raise self.expect(path, what, value)
        return value

    def lst(self, value: Any, path: str, what: str = "a list",
            non_empty: bool = False) -> List[Any]:
        if not isinstance(value, list):
            raise self.expect(path, what, value)
        if non_empty and not value:
            raise self.fail(path, f"expected {what}, found an empty list")
        return value

    def required(self, obj: Dict[str, Any], key: str, path: str) -> Any:
        """``obj[key]``; a missing key is reported with a guess at a misspelling."""
        if key in obj:
            return obj[key]
        close = difflib.get_close_matches(key, [k for k in obj if isinstance(k, str)], n=1)
        hint = f" (found {json.dumps(close[0])}: misspelled?)" if close else ""
        raise self.fail(join(path, key), f"required key is missing{hint}")

    # --- scalars -------------------------------------------------------------------------
    def number(self, value: Any, path: str, *, minimum: float = -math.inf,
               strict_minimum: bool = False, unit: str = "") -> float:
        """A finite JSON number (not a boolean) >= minimum (or > minimum if strict)."""
        bound = f" > {minimum:g}" if strict_minimum else (
            f" >= {minimum:g}" if minimum != -math.inf else "")
        what = f"a finite number{bound}{' ' + unit if unit else ''}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.expect(path, what, value)
        number = float(value)
        too_small = number < minimum or (strict_minimum and number == minimum)
        if not math.isfinite(number) or too_small:
            raise self.expect(path, what, value)
        return number

    def integer(self, value: Any, path: str, *, minimum: int) -> int:
        what = f"an integer >= {minimum}"
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.expect(path, what, value)
        return value

    def string(self, value: Any, path: str, what: str = "a string") -> str:
        if not isinstance(value, str):
            raise self.expect(path, what, value)
        return value

    def ident(self, value: Any, path: str, what: str = "a name") -> str:
        """A lowercase id ``[a-z][a-z0-9_]*`` (conventions.md, 'DNN names')."""
        if not isinstance(value, str) or not ID_PATTERN.match(value):
            raise self.expect(path, f"{what} matching [a-z][a-z0-9_]*", value)
        return value

    def key_ident(self, key: str, path: str, what: str) -> str:
        """A key of an object that must be an id; the path names the bad key."""
        if not ID_PATTERN.match(key):
            raise self.fail(join(path, key), f"expected {what} matching [a-z][a-z0-9_]*, "
                                             f"found the key {json.dumps(key)}")
        return key

    def format_tag(self, obj: Dict[str, Any], expected: str, family: str) -> None:
        """The ``format`` key: exactly ``expected``; another version of ``family`` is refused."""
        tag = self.required(obj, "format", "")
        if tag != expected:
            if isinstance(tag, str) and tag.startswith(family + "/"):
                raise self.fail("format", f"version {json.dumps(tag)} is not supported: this "
                                          f"hax_conn reads {json.dumps(expected)} only")
            raise self.expect("format", json.dumps(expected), tag)


def load_json(path: Union[str, Path], error: Type[HaxConnError], what: str) -> Any:
    """Parse a JSON file; malformed JSON is reported as ``file:line:col: message``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: {what} file not found") from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what} file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: expected UTF-8 JSON text, byte {exc.start} is not UTF-8") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant(path, error),
                          object_pairs_hook=_refuse_duplicates(path, error))
    except json.JSONDecodeError as exc:
        raise error(f"{path}:{exc.lineno}:{exc.colno}: malformed JSON: {exc.msg}") from None


def write_text(path: Union[str, Path], text: str, error: Type[HaxConnError], what: str) -> None:
    """Write a file (UTF-8); a failure is ``error`` naming the file and why, as load_json's."""
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot write {what}: {exc.strerror or exc}") from None


def _refuse_constant(path: Path, error: Type[HaxConnError]) -> Callable[[str], Any]:
    def refuse(name: str) -> Any:
        raise error(f"{path}: {name} is not valid JSON: expected a finite number")
    return refuse


def _refuse_duplicates(path: Path, error: Type[HaxConnError]
                       ) -> Callable[[List[Tuple[str, Any]]], Dict[str, Any]]:
    # json.loads would silently keep the last of two equal keys (two "googlenet" entries).
    def build(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise error(f"{path}: the key {json.dumps(key)} appears twice in one object: "
                            f"expected each key once")
            out[key] = value
        return out
    return build

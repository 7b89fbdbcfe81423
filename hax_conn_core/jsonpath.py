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
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Type, Union

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
    if isinstance(value, int):
        text = repr(value)
        return f"the number {text}" if len(text) <= 24 else \
            f"an integer of {len(text.lstrip('-'))} digits"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "a number beyond the range of a float (infinite)"
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
               strict_minimum: bool = False, maximum: float = math.inf,
               unit: str = "") -> float:
        """A finite JSON number (not a boolean) >= minimum (> if strict) and <= maximum.

        The bounds are compared before any conversion, so that an integer too large for a
        float (``1e400`` written out) is refused with its path rather than overflowing.
        """
        bound = f" > {minimum:g}" if strict_minimum else (
            f" >= {minimum:g}" if minimum != -math.inf else "")
        if maximum != math.inf:
            bound += f"{' and' if bound else ''} <= {maximum:g}"
        what = f"a finite number{bound}{' ' + unit if unit else ''}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.expect(path, what, value)
        if isinstance(value, float) and not math.isfinite(value):
            raise self.expect(path, what, value)
        too_small = value < minimum or (strict_minimum and value == minimum)
        if too_small or value > maximum:
            raise self.expect(path, what, value)
        return float(value)

    def integer(self, value: Any, path: str, *, minimum: int,
                maximum: Optional[int] = None) -> int:
        """A JSON integer (not a boolean, not 1.0) in ``[minimum, maximum]``."""
        what = f"an integer >= {minimum}" if maximum is None else \
            f"an integer from {minimum} to {maximum}"
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum \
                or (maximum is not None and value > maximum):
            raise self.expect(path, what, value)
        return value

    def string(self, value: Any, path: str, what: str = "a string") -> str:
        if not isinstance(value, str):
            raise self.expect(path, what, value)
        return value

    def ident(self, value: Any, path: str, what: str = "a name") -> str:
        """A lowercase id ``[a-z][a-z0-9_]*`` (docs/conventions.md, "DNN names")."""
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


#: Deepest nesting of arrays and objects a file may have. Our formats need 6 levels; the limit
#: keeps a hostile file (100,000 nested lists) from exhausting the parser's recursion.
MAX_DEPTH = 64

#: Longest integer literal, in digits. Python refuses to convert more than 4300 digits and a
#: float holds about 17; nothing in our formats needs more than a few.
MAX_INT_DIGITS = 30


def read_text(path: Union[str, Path], error: Type[HaxConnError], what: str) -> str:
    """The UTF-8 text of ``path`` (a leading byte-order mark dropped); one-line errors.

    Missing file, directory, unreadable file and non-UTF-8 bytes each raise ``error`` naming the
    file. Every text file hax_conn reads (profiles, schedules, device descriptions) goes here.
    """
    path = Path(path)
    if path.is_dir():
        raise error(f"{path}: is a directory; expected a {what} file")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: {what} file not found") from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what} file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise error(f"{path}:{line}: expected UTF-8 text, byte {exc.start} "
                    f"(0x{raw[exc.start]:02x}) is not UTF-8") from None
    return text[1:] if text.startswith("\ufeff") else text


def load_json(path: Union[str, Path], error: Type[HaxConnError], what: str) -> Any:
    """Parse a JSON file; malformed JSON is reported as ``file:line:col: message``.

    Refused with the JSON path where the parser leaves one: NaN and Infinity (not JSON), integer
    literals of more than MAX_INT_DIGITS digits, a key twice in one object. Refused with the
    position: nesting deeper than MAX_DEPTH. A UTF-8 byte-order mark is accepted.
    """
    path = Path(path)
    return parse_json_text(read_text(path, error, what), str(path), error)


def parse_json_text(text: str, source: str, error: Type[HaxConnError]) -> Any:
    """``load_json`` on text already read; ``source`` names it in messages."""
    _check_depth(text, source, error)
    flags: List[bool] = []
    try:
        value = json.loads(text, parse_constant=_Bad.constant(flags),
                           parse_int=_Bad.integer(flags),
                           object_pairs_hook=_Bad.pairs(flags))
    except json.JSONDecodeError as exc:
        raise error(f"{source}:{exc.lineno}:{exc.colno}: malformed JSON: {exc.msg}") from None
    except RecursionError:  # pragma: no cover - _check_depth stops it first
        raise error(f"{source}: nested too deeply; expected at most {MAX_DEPTH} levels of "
                    "arrays and objects") from None
    if flags:
        where, bad = next(_find_bad(value))
        problem = f"{source}: {where}" if where else source
        raise error(f"{problem}: {bad.message}")
    return value


_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _check_depth(text: str, source: str, error: Type[HaxConnError]) -> None:
    depth = 0
    for match in _STRUCTURE.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                line = text.count("\n", 0, match.start()) + 1
                column = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
                raise error(f"{source}:{line}:{column}: nested too deeply; expected at most "
                            f"{MAX_DEPTH} levels of arrays and objects")
        elif token in "]}":
            depth -= 1


class _Bad:
    """A value the JSON parser met that we refuse, found again with its path after parsing.

    The parser's hooks cannot know where they are; they leave a marker and set a flag, and
    ``_find_bad`` walks the document (without recursion) to name the marker's path.
    """

    def __init__(self, message: str) -> None:
        self.message = message

    @staticmethod
    def constant(flags: List[bool]) -> Callable[[str], Any]:
        def parse(name: str) -> Any:
            flags.append(True)
            return _Bad(f"{name} is not valid JSON: expected a finite number")
        return parse

    @staticmethod
    def integer(flags: List[bool]) -> Callable[[str], Any]:
        def parse(digits: str) -> Any:
            if len(digits.lstrip("-")) > MAX_INT_DIGITS:
                flags.append(True)
                return _Bad(f"expected a number of at most {MAX_INT_DIGITS} digits, found an "
                            f"integer of {len(digits.lstrip('-'))} digits")
            return int(digits)
        return parse

    @staticmethod
    def pairs(flags: List[bool]) -> Callable[[List[Tuple[str, Any]]], Dict[str, Any]]:
        # json.loads would silently keep the last of two equal keys (two "googlenet" entries).
        def build(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
            out: Dict[str, Any] = {}
            for key, value in pairs:
                if key in out:
                    flags.append(True)
                    out[key] = _Bad(f"the key {json.dumps(key)} appears twice in one object: "
                                    "expected each key once")
                    continue
                out[key] = value
            return out
        return build


def _find_bad(document: Any) -> Iterator[Tuple[str, "_Bad"]]:
    stack: List[Tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, _Bad):
            yield path, value
        elif isinstance(value, dict):
            stack.extend((join(path, k), v) for k, v in reversed(list(value.items())))
        elif isinstance(value, list):
            stack.extend((join(path, i), v) for i, v in reversed(list(enumerate(value))))


def write_text(path: Union[str, Path], text: str, error: Type[HaxConnError], what: str) -> None:
    """Write a file (UTF-8); a failure is ``error`` naming the file and why, as load_json's."""
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot write {what}: {exc.strerror or exc}") from None

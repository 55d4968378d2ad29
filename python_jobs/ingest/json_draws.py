"""The draw objects of a JSON results file, each with the line it starts on.

Accepted: a list of draw objects (``loto6.json``), or an object that wraps exactly one such
list among scalar notes (``{"note": "...", "draws": [...]}``). A key twice in one object, a
document nested deeper than Python can read, or anything else is refused with the line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from python_jobs.ingest.problems import FileLevelError

_WHITESPACE = " \t\r\n"


class _DuplicateKey(ValueError):
    pass


def _pairs(pairs: list[tuple[str, object]]) -> dict:
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


_DECODER = json.JSONDecoder(object_pairs_hook=_pairs)


def _line_of(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def _skip(text: str, position: int, extra: str = "") -> int:
    while position < len(text) and text[position] in _WHITESPACE + extra:
        position += 1
    return position


def _decode(text: str, position: int) -> tuple[object, int]:
    """One JSON value at ``position``, with errors turned into refusals naming the line."""
    try:
        return _DECODER.raw_decode(text, position)
    except RecursionError:
        raise FileLevelError(
            "the JSON is nested too deeply to be a results file", line=_line_of(text, position)
        ) from None
    except _DuplicateKey as exc:
        raise FileLevelError(
            f"duplicated key {str(exc)[:40]!r} in one JSON object", line=_line_of(text, position)
        ) from None
    except json.JSONDecodeError as exc:
        raise FileLevelError(f"invalid JSON: {exc.msg}", line=exc.lineno) from None


def _array_objects(text: str, start: int) -> Iterator[tuple[int, dict, str]]:
    """The objects of the JSON array starting at ``start`` ('[')."""
    position = start + 1
    # Lines counted incrementally: counting from the start for each object is quadratic.
    counted_to, line = 0, 1
    while True:
        position = _skip(text, position, ",")
        if position >= len(text):
            raise FileLevelError(
                "invalid JSON: the list of draws is not closed", line=_line_of(text, position)
            )
        if text[position] == "]":
            return
        line += text.count("\n", counted_to, position)
        counted_to = position
        value, end = _decode(text, position)
        if not isinstance(value, dict):
            raise FileLevelError(f"a draw must be a JSON object, got {type(value).__name__}", line=line)
        yield line, value, text[position:end]
        position = end


def _wrapped_list_start(text: str, start: int) -> int:
    """Position of the one list of draw objects inside a wrapping object."""
    position = start + 1
    candidates: list[tuple[str, int]] = []
    while True:
        position = _skip(text, position, ",")
        if position >= len(text) or text[position] == "}":
            break
        key, position = _decode(text, position)
        position = _skip(text, position)
        if position >= len(text) or text[position] != ":":
            raise FileLevelError("invalid JSON: expected ':' after a key", line=_line_of(text, position))
        position = _skip(text, position + 1)
        value_start = position
        value, position = _decode(text, position)
        # Notes, metadata objects and lists of scalars ride along; only lists of objects
        # can be the draws.
        if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            candidates.append((str(key), value_start))
    if len(candidates) != 1:
        found = ", ".join(repr(key[:40]) for key, _ in candidates) or "none"
        raise FileLevelError(
            "a JSON object must wrap exactly one list of draw objects "
            f"(lists of objects found: {found}); or give the list itself"
        )
    return candidates[0][1]


def json_draw_objects(text: str) -> list[tuple[int, dict, str]]:
    """Every draw object with its first line and its raw text."""
    position = _skip(text, 0)
    if position >= len(text):
        raise FileLevelError("the file is empty")
    if text[position] == "{":
        position = _wrapped_list_start(text, position)
    elif text[position] != "[":
        raise FileLevelError("JSON must be a list of draws", line=_line_of(text, position))
    objects = list(_array_objects(text, position))
    if not objects:
        raise FileLevelError("the file is empty: no draws in the JSON list")
    return objects

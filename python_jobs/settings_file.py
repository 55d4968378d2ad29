"""Reading one settings file: bounded in size and in what its aliases expand to.

A settings file comes from the user (``--config FILE``), so reading it must fail with one line,
fast and in little memory, whatever it holds: a file over :data:`MAX_FILE_BYTES` is refused
before it is parsed, and a document whose aliases expand past :data:`MAX_NODES` values ("billion
laughs": ten nested aliases of nine make 10**9) or nest deeper than :data:`MAX_DEPTH` is refused
while it is composed, before anything is expanded. Keys must be text.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "s.yaml"
>>> _ = path.write_text("errors:\\n  mode: raise\\n")
>>> read(path)
{'errors': {'mode': 'raise'}}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from python_jobs.errors import SettingsError

__all__ = ["MAX_DEPTH", "MAX_FILE_BYTES", "MAX_NODES", "read"]

#: Largest settings file read (the defaults are about 3 KiB).
MAX_FILE_BYTES = 1 << 20
#: Values (scalars, lists, mappings) a file may hold once its aliases are expanded.
MAX_NODES = 10_000
#: How deep lists and mappings may nest (settings are sections of keys: 2).
MAX_DEPTH = 20


class _Refused(Exception):
    """A document the bounded loader will not compose (the message says why)."""


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader that counts the values each alias stands for and refuses past the bounds.

    An alias adds the expanded size of its anchor (recorded when the anchor was composed), so
    the count is what the data would hold once expanded, while composing stays linear in the
    file.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._nodes = 0
        self._depth = 0
        self._sizes: dict[str, int] = {}
        self._open: set[str] = set()

    def _count(self, nodes: int) -> None:
        self._nodes += nodes
        if self._nodes > MAX_NODES:
            raise _Refused(f"it expands to more than {MAX_NODES} values (nested aliases?)")

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                raise _Refused(f"alias *{event.anchor} refers to a value that holds it")
            self._count(self._sizes.get(event.anchor, 1))
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(f"it nests deeper than {MAX_DEPTH} levels")
        before = self._nodes
        self._count(1)
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._open.add(anchor)
        node = super().compose_node(parent, index)
        if anchor is not None:
            self._open.discard(anchor)
            self._sizes[anchor] = self._nodes - before
        self._depth -= 1
        return node


def _text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SettingsError(
                f"settings file {path} is {size} bytes, more than the {MAX_FILE_BYTES} bytes "
                "a settings file may hold"
            )
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)  # the file may grow after stat()
    except OSError as exc:
        raise SettingsError(f"settings file {path} cannot be read ({exc.strerror or exc})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise SettingsError(f"settings file {path} is larger than the {MAX_FILE_BYTES} bytes allowed")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SettingsError(f"settings file {path} is not UTF-8 text (byte {exc.start})") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        where = exc.problem_mark
        line = f" line {where.line + 1}" if where is not None else ""
        what = ", ".join(part for part in (exc.context, exc.problem) if part)
        return f"{line} is not valid YAML: {what}"
    return " is not valid YAML: " + " ".join(str(exc).split())


def _check_keys(value: Any, where: str, path: Path) -> None:
    """Every key of every mapping is text (``1:``, ``true:`` and ``null:`` are not)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                place = f" in {where}" if where else ""
                raise SettingsError(
                    f"settings file {path}: key {key!r}{place} is not text (keys are section and "
                    "setting names; quote it if it is one)"
                )
            _check_keys(item, f"{where}.{key}" if where else key, path)
    elif isinstance(value, list):
        for item in value:
            _check_keys(item, where, path)


def read(path: Path) -> dict[str, Any]:
    """The mapping of sections in the settings file ``path``.

    Raises
    ------
    SettingsError
        The file is missing, unreadable, too large, not UTF-8, not YAML, expands or nests past
        the bounds, has a key that is not text, or does not hold a mapping.
    """
    if not path.is_file():
        raise SettingsError(f"settings file {path} does not exist (given by --config or LOTO_CONFIG)")
    text = _text(path)
    try:
        data = yaml.load(text, Loader=_BoundedLoader)  # a SafeLoader: no Python objects
    except _Refused as exc:
        raise SettingsError(f"settings file {path} is refused: {exc}") from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"settings file {path}{_yaml_problem(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(
            f"settings file {path} must hold a mapping of sections, not {type(data).__name__}"
        )
    _check_keys(data, "", path)
    return data

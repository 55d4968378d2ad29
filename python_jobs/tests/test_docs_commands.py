"""Every command line in README.md and docs/*.md parses with the real command line.

The docs name the tool one way, ``loto-features`` (the console script of ``.venv/bin``); each
command line they show, in a code block or an inline code span, is split like a shell would and
handed to the parser of :mod:`python_jobs.cli`. A subcommand or a flag that does not exist, or a
flag missing its value, fails here, so the docs cannot drift from the tool.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from python_jobs import cli, config

PROGRAM = "loto-features"
# Forms the docs must not use: they fail as printed unless the virtual environment is active.
OTHER_FORMS = re.compile(r"(?<![\w/.-])python(?:3(?:\.\d+)?)? -m python_jobs(?![.\w])")
# A command line in a code block starts the line (after an optional prompt or `&&`); output
# samples and `docker run IMAGE` lines do not.
_START = re.compile(r"(?:^\s*(?:\$\s+)?|&&\s*|;\s*)(?:\.venv/bin/)?loto-features(?=\s|$)")
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_INLINE = re.compile(r"`((?:\.venv/bin/)?loto-features[^`]*)`")
# Where a shell command ends: a comment, a pipe, a list, a redirect.
_ENDS = ("#", "|", "||", "&&", ";", ">", ">>", "2>", "2>&1", "&")


def _documents() -> list[Path]:
    return [config.REPO_ROOT / "README.md", *sorted((config.REPO_ROOT / "docs").glob("*.md"))]


def _joined_lines(block: str) -> list[str]:
    """The lines of a code block, with backslash continuations joined."""
    return block.replace("\\\n", " ").splitlines()


def _command_lines(text: str) -> list[str]:
    found: list[str] = []
    for block in _FENCE.findall(text):
        for line in _joined_lines(block):
            match = _START.search(line)
            if match:
                found.append(line[match.start() :].lstrip(" $&;"))
    found.extend(_INLINE.findall(text))
    return found


def _arguments(line: str) -> list[str]:
    """The arguments after the program name, up to where the shell command ends."""
    try:
        words = shlex.split(line, comments=False)
    except ValueError:
        words = line.split()
    arguments: list[str] = []
    for word in words[1:]:
        if word in _ENDS or word.startswith(("#", ">", "2>", "|")):
            break
        # Usage notation: [--loto X] marks an optional part, {a,b} or <file> a placeholder.
        word = word.strip("[]")
        if not word:
            continue
        # `--vars ...` elides a value: it stands for one.
        arguments.append("VALUE" if word in ("...", "…") else word)
    return arguments


class _ParseError(Exception):
    pass


def _strict(parser: argparse.ArgumentParser) -> None:
    def error(message: str) -> None:
        raise _ParseError(message)

    parser.error = error  # type: ignore[method-assign]
    parser.exit_on_error = False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _strict(child)


def _unknown_flags(parser: argparse.ArgumentParser, arguments: list[str]) -> list[str]:
    """Long flags that neither the command nor the commands above it define."""
    known: set[str] = set()
    current: argparse.ArgumentParser | None = parser
    for word in arguments:
        if current is None:
            break
        known.update(current._option_string_actions)
        children = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]
        current = children[0].choices.get(word) if children and word in children[0].choices else current
    if current is not None:
        known.update(current._option_string_actions)
    return [w for w in arguments if w.startswith("--") and w.split("=", 1)[0] not in known]


def _parse(arguments: list[str]) -> str | None:
    parser = cli.build_parser()
    _strict(parser)
    unknown = _unknown_flags(parser, arguments)
    if unknown:
        return f"unknown flags {unknown}"
    try:
        parser.parse_args(arguments)
    except (_ParseError, argparse.ArgumentError) as exc:
        # A mention such as `loto-features ingest` names a command without its arguments.
        return None if "arguments are required" in str(exc) else str(exc)
    except SystemExit as exc:  # --help, --version
        return None if exc.code in (0, None) else f"exit {exc.code}"
    return None


def _all_commands() -> list[tuple[str, str]]:
    return [(path.name, line) for path in _documents() for line in _command_lines(path.read_text("utf-8"))]


def test_the_docs_show_commands():
    names = {name for name, _ in _all_commands()}
    assert "README.md" in names
    assert len(_all_commands()) >= 20


@pytest.mark.parametrize(("document", "line"), _all_commands())
def test_every_documented_command_parses(document: str, line: str):
    problem = _parse(_arguments(line))
    assert problem is None, f"{document}: `{line}`: {problem}"


@pytest.mark.parametrize("path", _documents(), ids=lambda path: path.name)
def test_the_docs_use_one_command_name(path: Path):
    stale = [line.strip() for line in path.read_text("utf-8").splitlines() if OTHER_FORMS.search(line)]
    assert not stale, f"{path.name} names the tool another way than `{PROGRAM}`: {stale[:3]}"


def test_the_check_catches_drift():
    assert _parse(_arguments("loto-features ingest --loto loto6 FILE")) is None
    assert _parse(_arguments("loto-features ingest --lotto loto6 FILE")) is not None
    assert _parse(_arguments("loto-features no-such-command")) is not None
    assert _parse(_arguments("loto-features realtime serve --feed ws://x --max-batch")) is not None
    assert _arguments("loto-features runs --limit 5 | head -3") == ["runs", "--limit", "5"]

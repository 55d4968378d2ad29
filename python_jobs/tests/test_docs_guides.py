"""The guides in docs/ say what the code does: commands, settings, families, messages."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from python_jobs import apidoc, cli, config, settings

DOCS = config.REPO_ROOT / "docs"
GUIDES = ("PIPELINE_GUIDE.md", "API_REFERENCE.md", "TROUBLESHOOTING.md", "DEPLOYMENT_GUIDE.md")


def _text(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _make_targets() -> set[str]:
    text = (config.REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, flags=re.MULTILINE))


@pytest.mark.parametrize("name", GUIDES)
def test_commands_named_in_the_guides_exist(name: str):
    text = _text(name)
    commands = apidoc._subparsers(cli.build_parser())
    for command in re.findall(r"python -m python_jobs ([a-z][\w-]*)", text):
        if command == "realtime" and "realtime" not in commands:
            continue  # the online service's command, documented ahead of the service itself
        assert command in commands, command
    for target in re.findall(r"`make ([a-z][\w-]*)", text):
        assert target in _make_targets(), target
    for link in re.findall(r"\bdocs/([\w-]+\.md)", text):
        assert (DOCS / link).is_file(), link


def test_deployment_guide_documents_every_setting_and_variable():
    text = _text("DEPLOYMENT_GUIDE.md")
    defaults = yaml.safe_load(settings.DEFAULT_FILE.read_text(encoding="utf-8"))
    keys = {f"{section}.{key}" for section, values in defaults.items() for key in values}
    settings_table = text.split("## Settings")[1].split("## Containers")[0]
    documented = set(re.findall(r"^\| `(\w+\.\w+)` \|", settings_table, flags=re.MULTILINE))
    assert documented == keys
    values = [str(value) for section in defaults.values() for value in section.values()]
    variables = {name for value in values for name in re.findall(r"\$\{(\w+)", value)}
    assert "DATABASE_URL" in variables
    for variable in variables:
        assert f"`{variable}`" in text, variable
    compose = yaml.safe_load((config.REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    for service in compose["services"]:
        assert f"`{service}`" in text, service


def test_pipeline_guide_costs_cover_every_family():
    from python_jobs.features import registry

    text = _text("PIPELINE_GUIDE.md")
    costs = text.split("## Cost on the bench panel")[1]
    rows = re.findall(r"^\| (\w+) \| (cpu|gpu) \| ([\d.]+) \| ([\d.]+) \|$", costs, flags=re.MULTILINE)
    assert {row[0] for row in rows} == {family.name for family in registry.families()}
    for family, _, seconds, rate in rows:
        # series/s on the 1,000-series panel is 1,000 / seconds, within rounding.
        assert float(rate) == pytest.approx(1000 / float(seconds), rel=0.02), family


def _templates(path: Path) -> list[list[str]]:
    """The literal parts of every string and f-string in a source file, in order."""
    templates = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.JoinedStr):
            parts = [value.value for value in node.values if isinstance(value, ast.Constant)]
            templates.append([str(part) for part in parts])
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            templates.append([node.value])
    return templates


def _could_print(template: list[str], message: str) -> bool:
    """Whether ``message`` holds the template's literal parts in order (variable parts between),
    starting on its first line."""
    parts = [part.strip() for part in template if len(part.strip()) >= 4]
    if not any(len(part) >= 12 for part in parts):
        return False
    if message.find(parts[0]) > len(message.splitlines()[0]):
        return False
    position = 0
    for part in parts:
        found = message.find(part, position)
        if found < 0:
            return False
        position = found + len(part)
    return True


def _entries() -> list[tuple[str, str, str]]:
    text = _text("TROUBLESHOOTING.md")
    entries = []
    for title, body in re.findall(r"^### (.+?)\n(.*?)(?=^### |\Z)", text, flags=re.MULTILINE | re.DOTALL):
        blocks = re.findall(r"```text\n(.*?)```", body, flags=re.DOTALL)
        source = re.search(r"Printed by `([\w/.]+\.py)`", body)
        assert blocks and source, f"{title}: a message block and `Printed by` are needed"
        for block in blocks:
            entries.append((title, block, source.group(1)))
    return entries


@pytest.mark.parametrize(("title", "message", "source"), _entries(), ids=lambda value: str(value)[:40])
def test_troubleshooting_messages_still_exist(title: str, message: str, source: str):
    """A string of the file that prints the message can still produce it: its literal parts
    (one of 12 characters at least) appear in the message in order."""
    templates = _templates(config.REPO_ROOT / source)
    assert any(_could_print(template, message) for template in templates), f"{title}: not printed by {source}"


def test_troubleshooting_messages_as_printed(tmp_path: Path, capsys):
    """The settings messages of the guide are what the command prints today."""
    text = _text("TROUBLESHOOTING.md")
    override = tmp_path / "my.yaml"
    override.write_text("dask:\n  workers: many\n", encoding="utf-8")
    assert cli.main(["--config", str(override), "settings"]) == 2
    printed = capsys.readouterr().err.splitlines()
    assert printed[0].split("): ", 1)[1] in text  # the line after the files' names
    override.write_text("gpu:\n  memory_limt_gb: 8\n", encoding="utf-8")
    assert cli.main(["--config", str(override), "settings"]) == 2
    assert capsys.readouterr().err.splitlines()[0].split("): ", 1)[1] in text
    settings.patch(None)

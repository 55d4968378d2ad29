"""docs/API_REFERENCE.md and the generated block of docs/PIPELINE_GUIDE.md match the code."""

from __future__ import annotations

import re

from python_jobs import apidoc, cli


def test_generated_docs_are_current(capsys):
    code = apidoc.main(["--check"])
    assert code == 0, capsys.readouterr().err


def test_every_subcommand_has_its_help_in_the_reference():
    text = apidoc.TARGET.read_text(encoding="utf-8")
    parser = cli.build_parser()
    for name, sub in apidoc._subparsers(parser).items():
        assert f"### loto-features {name}\n" in text
        # Each option of the subcommand is documented with its help.
        for action in sub._actions:
            for option in action.option_strings:
                assert option in text, (name, option)


def test_every_listed_python_function_is_documented():
    text = apidoc.TARGET.read_text(encoding="utf-8")
    for module_name, names in apidoc.PYTHON_API:
        for name in names:
            assert f"### `{module_name}.{name}`" in text
    # Nothing in the reference that is no longer listed.
    documented = set(re.findall(r"^### `([\w.]+)`$", text, flags=re.MULTILINE))
    listed = {f"{module}.{name}" for module, names in apidoc.PYTHON_API for name in names}
    assert documented == listed


def test_families_block_lists_every_column_once():
    from python_jobs.features import registry

    guide = apidoc.GUIDE.read_text(encoding="utf-8")
    block = guide.split(apidoc.BLOCK_START)[1].split(apidoc.BLOCK_END)[0]
    named = re.findall(r"`((?:hist|stat|futr)_\w+|is_future)`", block)
    marts = {column for columns in apidoc._mart_columns().values() for column in columns}
    python = {column for family in registry.families() for column in family.output_names()}
    # Every mart column and every Python output is named, and none twice.
    assert set(named) == marts | python
    assert len(named) == len(set(named))

"""Hostile and broken settings files: refused with exit code 2 and one line, fast, in little memory.

Each case runs the command line as a user does (``python -m python_jobs --config FILE settings``):
a traceback, a hang, a directory created or a system schema accepted is a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from python_jobs import identifiers, settings, settings_file


def _laughs(levels: int = 10) -> str:
    """Nested aliases of nine: ``levels`` of them expand to 9**levels values."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def _settings_command(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    override = tmp_path / "override.yaml"
    override.write_text(text, encoding="utf-8")
    clean = {key: value for key, value in os.environ.items() if key != settings.CONFIG_ENV}
    proc = subprocess.run(
        [sys.executable, "-m", "python_jobs", "--config", str(override), "settings"],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode, proc.stdout, proc.stderr


def _assert_refused(tmp_path: Path, text: str, *fragments: str, env: dict[str, str] | None = None) -> str:
    code, out, err = _settings_command(tmp_path, text, env)
    assert code == 2, (code, out, err)
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err  # one line
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (_laughs(), f"expands to more than {settings_file.MAX_NODES} values"),
        ("a: &a [1, *a]\n", "alias *a refers to a value that holds it"),
        ("a: " + "[" * 2000 + "]" * 2000 + "\n", f"nests deeper than {settings_file.MAX_DEPTH} levels"),
    ],
    ids=["billion-laughs", "recursive-alias", "deep-nesting"],
)
def test_alias_bombs_and_nesting_are_refused(tmp_path: Path, text: str, fragment: str):
    _assert_refused(tmp_path, text, "is refused", fragment)


def test_alias_bomb_fails_fast_in_little_memory(tmp_path: Path):
    path = tmp_path / "laughs.yaml"
    path.write_text(_laughs(), encoding="utf-8")
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(settings.SettingsError, match="expands to more than"):
        settings.load(path, env={})
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 1.0, elapsed
    assert peak < 20 * 2**20, peak


def test_aliases_within_the_bound_still_work(tmp_path: Path):
    path = tmp_path / "anchors.yaml"
    path.write_text("errors: &e\n  retry_attempts: 3\n  retry_delay_s: 0\n", encoding="utf-8")
    assert settings.load(path, env={}).errors.retry_attempts == 3


def test_a_file_over_the_size_bound_is_refused_before_parsing(tmp_path: Path):
    # Valid YAML (comments), only too large: the bound, not a parse error, refuses it.
    text = "# padding\n" * (settings_file.MAX_FILE_BYTES // 10 + 1)
    _assert_refused(tmp_path, text, f"more than the {settings_file.MAX_FILE_BYTES} bytes")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("1: x\n", "key 1 is not text"),
        ("null: x\n", "key None is not text"),
        ("errors:\n  true: x\n", "key True in errors is not text"),
        ("errors:\n  [a, b]: x\n", "is not valid YAML"),  # a list key cannot even be built
    ],
)
def test_keys_that_are_not_text_are_refused(tmp_path: Path, text: str, fragment: str):
    _assert_refused(tmp_path, text, fragment)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("errors:\n  retry_delay_s: .inf\n", "errors.retry_delay_s"),
        ("errors:\n  retry_delay_s: .nan\n", "errors.retry_delay_s"),
        ("health:\n  min_free_disk_gb: .inf\n", "health.min_free_disk_gb"),
        ("gpu:\n  memory_limit_gb: .inf\n", "gpu.memory_limit_gb"),
        ("online:\n  ts_max_ahead_days: .inf\n", "online.ts_max_ahead_days"),
    ],
)
def test_numbers_that_are_not_finite_are_refused(tmp_path: Path, text: str, key: str):
    _assert_refused(tmp_path, text, key, "finite number")


def test_a_variable_that_is_not_finite_is_refused(tmp_path: Path):
    _assert_refused(
        tmp_path,
        "errors:\n  retry_delay_s: ${LOTO_TEST_DELAY}\n",
        "errors.retry_delay_s",
        "finite number",
        env={"LOTO_TEST_DELAY": "inf"},
    )


@pytest.mark.parametrize(
    ("text", "key", "allowed"),
    [
        ("batch:\n  series_per_batch: true\n", "batch.series_per_batch = True", "valid integer"),
        ("errors:\n  retry_attempts: false\n", "errors.retry_attempts = False", "valid integer"),
        ("errors:\n  retry_delay_s: true\n", "errors.retry_delay_s = True", "valid number"),
        ("batch:\n  series_per_batch: '3'\n", "batch.series_per_batch = '3'", "valid integer"),
        ("batch:\n  series_per_batch: 3.5\n", "batch.series_per_batch = 3.5", "valid integer"),
    ],
)
def test_numbers_are_strict(tmp_path: Path, text: str, key: str, allowed: str):
    _assert_refused(tmp_path, text, key, allowed)


def test_variables_and_yaml_numbers_still_convert(tmp_path: Path):
    path = tmp_path / "numbers.yaml"
    path.write_text(
        "batch:\n  series_per_batch: ${LOTO_TEST_BATCH:5}\n"
        "errors:\n  retry_attempts: ${LOTO_TEST_ATTEMPTS}\n  retry_delay_s: 1\n",
        encoding="utf-8",
    )
    loaded = settings.load(path, env={"LOTO_TEST_ATTEMPTS": " 3 "})
    assert (loaded.batch.series_per_batch, loaded.errors.retry_attempts) == (5, 3)
    assert loaded.errors.retry_delay_s == 1.0 and isinstance(loaded.errors.retry_delay_s, float)


def test_log_file_under_a_missing_directory_is_refused_not_created(tmp_path: Path):
    missing = tmp_path / "no" / "such" / "dir"
    _assert_refused(tmp_path, f"logging:\n  file: {missing / 'loto.log'}\n", "logging.file", "does not exist")
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("{tmp}", "is a directory"),
        ("/proc/version", "cannot be written"),
        ("/proc/1/nowhere/x.log", "does not exist"),
    ],
)
def test_log_file_that_cannot_be_written_is_refused(tmp_path: Path, path: str, fragment: str):
    _assert_refused(tmp_path, f"logging:\n  file: {path.format(tmp=tmp_path)}\n", "logging.file", fragment)


def test_log_file_in_an_existing_directory_is_used(tmp_path: Path):
    path = tmp_path / "settings.yaml"
    path.write_text(f"logging:\n  file: {tmp_path / 'loto.log'}\n", encoding="utf-8")
    assert settings.load(path, env={}).logging.file == tmp_path / "loto.log"


@pytest.mark.parametrize(
    "schema", ["information_schema", "pg_catalog", "pg_toast", "pg_temp_1", "pg_features"]
)
def test_system_schemas_are_refused(tmp_path: Path, schema: str):
    _assert_refused(tmp_path, f"database:\n  dbt_schema: {schema}\n", "database.dbt_schema", "system schema")
    with pytest.raises(identifiers.InvalidIdentifier, match="system schema"):
        identifiers.validate_schema(schema)


def test_system_schema_from_the_environment_is_refused(tmp_path: Path):
    _assert_refused(
        tmp_path, "", "DBT_SCHEMA='pg_catalog'", "system schema", env={"DBT_SCHEMA": "pg_catalog"}
    )


def test_schemas_that_only_look_like_system_ones_are_kept():
    for schema in ("pgfeatures", "features_pg", "information"):
        assert identifiers.validate_schema(schema) == schema

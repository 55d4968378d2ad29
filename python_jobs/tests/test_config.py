"""The Python defaults and the dbt vars describe the same features."""

from __future__ import annotations

import yaml

from python_jobs import config


def test_python_defaults_equal_dbt_vars():
    project = yaml.safe_load((config.REPO_ROOT / "dbt_project.yml").read_text(encoding="utf-8"))
    dbt_vars = project["vars"]
    assert tuple(dbt_vars["lags"]) == config.LAGS
    assert tuple(dbt_vars["windows"]) == config.WINDOWS
    assert tuple(dbt_vars["diffs"]) == config.DIFFS
    assert tuple(dbt_vars["pct_changes"]) == config.PCT_CHANGES
    assert tuple(dbt_vars["freq_windows"]) == config.FREQ_WINDOWS
    assert dbt_vars["mp_window"] == config.MP_WINDOW
    assert dbt_vars["season_length"] == config.SEASON_LENGTH
    assert dbt_vars["futr_horizon"] == config.FUTR_HORIZON
    # An incremental build must re-read enough rows for the longest window and lag.
    assert dbt_vars["incremental_lookback_rows"] >= max(config.WINDOWS) + max(config.LAGS)


def test_bundled_files_are_shipped():
    for _, path in config.BUNDLED_FILES:
        assert path.exists() and path.stat().st_size > 10_000

"""The rendered dbt profile is replaced whole: a dbt process reading it meanwhile (another
command, a test in another process) finds the old profile or the new one, never a part."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from python_jobs import config, dbt


def test_a_changed_profile_is_renamed_over_the_old_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "profiles.yml"
    dbt.render_profile("postgresql://app@db-one:5432/features", path=path)
    old = path.read_text(encoding="utf-8")
    seen_before_rename: list[str] = []
    real_replace = os.replace

    def replace(source, target):
        # The new profile is complete beside the target; the target still holds the old one.
        seen_before_rename.append(Path(target).read_text(encoding="utf-8"))
        assert "db-two" in Path(source).read_text(encoding="utf-8")
        real_replace(source, target)

    monkeypatch.setattr(dbt.os, "replace", replace)
    dbt.render_profile("postgresql://app@db-two:5432/features", path=path)
    assert seen_before_rename == [old]
    assert "db-two" in path.read_text(encoding="utf-8")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["profiles.yml"]  # no temporary left


def test_behavior_flag_sources_are_those_dbt_common_names(monkeypatch: pytest.MonkeyPatch):
    """The in-process run names a behavior flag's source from the frames' modules, as
    dbt-common's own ``inspect.stack()`` walk does, without reading every frame's source."""
    from dbt_common.behavior_flags import Behavior, BehaviorFlagRendered

    # dbt-common's own walk, also where an earlier run in this process has replaced it already
    dbt._quick_behavior_flags()
    original = dbt._DBT_COMMON_DEFAULT_SOURCE[0]
    monkeypatch.setattr(BehaviorFlagRendered, "_default_source", original)
    flags = [{"name": f"flag_{k}", "default": k % 2 == 0, "description": "a flag"} for k in range(3)]

    def sources() -> list[str]:
        made = [BehaviorFlagRendered(flags[0], {})]  # directly, and as an adapter makes them
        made += [getattr(Behavior(flags, {}), flag["name"]) for flag in flags]
        return [flag._behavior_change_event.flag_source for flag in made]

    expected = sources()
    dbt._quick_behavior_flags()
    assert BehaviorFlagRendered.__dict__["_default_source"] is not original
    assert sources() == expected == [__name__] * 4


def test_dbt_sessions_run_without_jit_and_with_work_mem_unless_the_user_sets_them(pg_url, monkeypatch):
    work_mem = dbt.SESSION_OPTIONS["work_mem"]
    assert dbt._session_options("") == f"-c jit=off -c work_mem={work_mem}"
    assert dbt._session_options("-c jit=on") == f"-c jit=on -c work_mem={work_mem}"
    assert dbt._session_options("-c work_mem=1GB -c jit=on") == "-c work_mem=1GB -c jit=on"
    added = f"-c statement_timeout=0 -c jit=off -c work_mem={work_mem}"
    assert dbt._session_options("-c statement_timeout=0") == added
    # What a model's session sees, in a dbt process started with the pipeline's environment.
    monkeypatch.delenv("PGOPTIONS", raising=False)
    dbt.render_profile(pg_url)
    query = "select current_setting('jit') as jit, current_setting('work_mem') as work_mem"
    shown = subprocess.run(
        [dbt.dbt_executable(), "show", "--inline", query, "--output", "json", "--log-format", "text"],
        env=dbt.dbt_env(pg_url),
        cwd=config.REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert '"jit": "off"' in shown.stdout, shown.stdout[-500:]
    assert f'"work_mem": "{work_mem}"' in shown.stdout, shown.stdout[-500:]

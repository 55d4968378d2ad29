"""The rendered dbt profile is replaced whole: a dbt process reading it meanwhile (another
command, a test in another process) finds the old profile or the new one, never a part."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from python_jobs import dbt


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

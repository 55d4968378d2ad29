"""One masking function: every URL form, query and keyword passwords, and known secrets.

The command line is run as a user runs it, with a password of ``@``, ``/`` and ``%`` that must
show in no form (as written, percent-decoded, or a piece of either).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from python_jobs import redact, settings
from python_jobs.redact import mask_url

PASSWORD = "p%40ss%2Fw0rd"  # p@ss/w0rd, percent-encoded as a URL must carry it
# Pieces of the password, as written and decoded: none may show anywhere.
PIECES = ("p@ss", "ss/w0", "w0rd", "p%40", "40ss", "ss%2F", "2Fw0")


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch: pytest.MonkeyPatch):
    # Secrets registered by one test must not mask (and so hide a failure of) another.
    monkeypatch.setattr(redact, "_registered", set())
    for name in ("DATABASE_URL", "REDIS_URL", "DASK_SCHEDULER_ADDRESS", "PGPASSWORD", "LOTO_PGPASSWORD"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://u:p%40ss@h:5432/d", "postgresql://u:***@h:5432/d"),
        ("x postgresql://app:secret@db/loto y", "x postgresql://app:***@db/loto y"),
        ("postgresql://u:a@b:c/d%e@h/d", "postgresql://u:***@h/d"),
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        ("rediss://user:tok@cache:6380/0", "rediss://user:***@cache:6380/0"),
        ("tcp://user:pw@scheduler:8786", "tcp://user:***@scheduler:8786"),
        ("http://a:b@c/d and https://e:f@g/h", "http://a:***@c/d and https://e:***@g/h"),
        ("postgresql://u@h/d", "postgresql://u@h/d"),
        # A query password ends at "&": the parameters after it stay.
        (
            "postgresql://u@h/d?password=s3cr%26t&sslmode=require",
            "postgresql://u@h/d?password=***&sslmode=require",
        ),
        ("https://h/x?a=1&access_token=abc&b=2", "https://h/x?a=1&access_token=***&b=2"),
        ("host=h password=secret dbname=d", "host=h password=*** dbname=d"),
        ("host=h password='sec ret' dbname=d", "host=h password=*** dbname=d"),
        ("host=h sslpassword=k3y port=1", "host=h sslpassword=*** port=1"),
        (None, ""),
    ],
)
def test_every_form_is_masked(text: str | None, expected: str):
    assert mask_url(text) == expected


def test_one_masking_function():
    # URL callers and free-text callers use the same function; settings keeps no copy.
    assert mask_url is redact.redact
    assert not hasattr(settings, "mask_url")


def test_registered_secret_is_masked_as_written_and_decoded():
    text = f"token {PASSWORD!r}, decoded 'p@ss/w0rd', again p@ss/w0rd."
    assert "w0rd" in redact.redact(text)
    redact.register(PASSWORD)
    shown = redact.redact(text)
    assert shown == "token '***', decoded '***', again ***."


def test_passwords_of_the_environment_urls(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DATABASE_URL", f"postgresql://u:{PASSWORD}@h/d")
    monkeypatch.setenv("REDIS_URL", "redis://u@h:6379/0?password=r3dis-pw&db=1")
    shown = redact.redact('driver said: bad token "p@ss/w0rd" and r3dis-pw')
    assert shown == 'driver said: bad token "***" and ***'


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    clean.pop(settings.CONFIG_ENV, None)
    return subprocess.run(
        [sys.executable, "-m", "python_jobs", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("url", "from_file"),
    [
        (f"postgresql://u:{PASSWORD}@127.0.0.1:1/db", False),
        (f"postgresql://u:{PASSWORD}@127.0.0.1:1/db", True),
        # libpq refuses the token and quotes it whole in its error.
        (f"postgresql://u:{PASSWORD}%zz@127.0.0.1:1/db", True),
        (f"postgresql://u@127.0.0.1:1/db?password={PASSWORD}%zz&connect_timeout=2", True),
    ],
)
def test_health_shows_no_piece_of_the_password(tmp_path: Path, url: str, from_file: bool):
    """`health` with an unreachable server: the error names the failure, never the password."""
    if from_file:
        override = tmp_path / "db.yaml"
        override.write_text(f"database:\n  url: {json.dumps(url)}\n", encoding="utf-8")
        proc = _run(["--config", str(override), "health"], {})
    else:
        proc = _run(["health"], {"DATABASE_URL": url})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: database unreachable"), proc.stderr
    assert "Traceback" not in proc.stderr
    for text in (proc.stdout, proc.stderr):
        for piece in PIECES:
            assert piece not in text, (piece, text)

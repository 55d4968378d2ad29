"""Passwords out of every message: one masking function for URLs and for free text.

A database or Redis URL may carry a password (``postgresql://user:secret@host/db``). Anything
that prints, logs or raises a message holding a URL passes it through :func:`mask_url`, and
text from elsewhere (a driver's error, a subprocess's output) through :func:`redact`.
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote

MASK = "***"

# scheme://user:password@ -- the password is everything up to the last "@" before the host,
# so a password holding "@", ":" or "/" is masked whole.
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^/:@\s]*:)(?P<password>[^\s]*)@")
# key=value connection strings: password=secret, password='sec ret'.
_KEYWORD_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<password>'(?:[^'\\]|\\.)*'|\S+)", re.I)


def mask_url(url: str | None) -> str:
    """The URL with its password replaced by ``****`` (and nothing else changed)."""
    if not url:
        return ""
    return redact(str(url))


def _known_passwords() -> list[str]:
    """Passwords of the URLs in the environment, raw and percent-decoded."""
    found: list[str] = []
    for name in ("DATABASE_URL", "REDIS_URL", "LOTO_PGPASSWORD"):
        value = os.environ.get(name, "")
        if not value:
            continue
        if name == "LOTO_PGPASSWORD":
            found.append(value)
            continue
        match = _URL_PASSWORD.search(value)
        if match:
            found.extend({match.group("password"), unquote(match.group("password"))})
    return [password for password in found if len(password) >= 3]


def redact(text: object) -> str:
    """``text`` with every URL password, ``password=`` value and known password masked."""
    value = str(text)
    value = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK + "@", value)
    value = _KEYWORD_PASSWORD.sub(lambda m: m.group("head") + MASK, value)
    for password in _known_passwords():
        value = value.replace(password, MASK)
    return value

"""Passwords out of every message: one masking function for URLs, settings and free text.

A database, Redis or Dask URL may carry a password (``postgresql://user:secret@host/db``,
``tcp://user:secret@scheduler:8786``), and a driver's error or a subprocess's output may repeat
it, whole or percent-decoded. Anything that prints, logs or raises such text passes it through
:func:`redact` (``mask_url`` is the same function, under the name URL callers read).

It masks:

- the password of ``scheme://user:password@host`` for any scheme, the password running to the
  last ``@`` before the host, so one holding ``@``, ``:``, ``/`` or ``%`` is masked whole;
- ``password=...`` (and ``secret=``, ``token=``, ``sslpassword=``...) in a connection string,
  quoted or not, and in a URL query, where the value ends at the next ``&``;
- every secret this process knows: the passwords of ``DATABASE_URL`` and ``REDIS_URL`` and
  the settings' secrets (:func:`register`), each as written and percent-decoded.

>>> redact("postgresql://app:p%40ss@db:5432/loto?password=x&sslmode=require")
'postgresql://app:***@db:5432/loto?password=***&sslmode=require'
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote, unquote_plus

__all__ = ["MASK", "looks_secret", "mask_url", "passwords", "redact", "register"]

MASK = "***"

# scheme://user:password@ -- the password is everything up to the last "@" of the URL, so a
# password holding "@", ":" or "/" is masked whole (at worst a little of the host goes too).
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^/:@\s]*:)(?P<password>\S*)@")
_KEY = r"[a-z_]*(?:password|passwd|secret|token)[a-z_]*"
# ?password=secret&next=1 in a URL query: the value ends at "&" (the next parameter stays).
_QUERY_PASSWORD = re.compile(rf"(?P<head>[?&]{_KEY}=)(?P<password>[^&\s#]*)", re.I)
# key=value connection strings: password=secret, password='sec ret' (not after ? or &).
_KEYWORD_PASSWORD = re.compile(
    rf"(?P<head>(?<![?&\w]){_KEY}\s*=\s*)(?P<password>'(?:[^'\\]|\\.)*'|\S+)", re.I
)
#: Variable names whose values are secrets (``${DB_PASSWORD}``, ``API_TOKEN``, ``AWS_SECRET_KEY``).
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|KEY|CREDENTIAL", re.I)
# Shorter secrets are masked only where their form shows them (URL, password=): replacing two
# letters everywhere in a message would mask words, not secrets.
_MIN_KNOWN = 3
# Variables that hold a URL with a password, or a password, whatever the settings say (a child
# process such as dbt reads them directly).
_URL_VARIABLES = ("DATABASE_URL", "REDIS_URL", "DASK_SCHEDULER_ADDRESS")
_PASSWORD_VARIABLES = ("PGPASSWORD", "LOTO_PGPASSWORD")

_registered: set[str] = set()


def looks_secret(name: str) -> bool:
    """Whether a variable or key named ``name`` holds a secret (password, token, key...)."""
    return bool(SECRET_NAME.search(name))


def _forms(secret: str) -> set[str]:
    """``secret`` as written, percent-decoded (``%40`` -> ``@``) and form-decoded (``+`` -> space)."""
    return {form for form in (secret, unquote(secret), unquote_plus(secret)) if len(form) >= _MIN_KNOWN}


def passwords(text: str) -> set[str]:
    """The passwords ``text`` shows in a form :func:`redact` masks (URL, query, ``password=``)."""
    found = set()
    for pattern in (_URL_PASSWORD, _QUERY_PASSWORD, _KEYWORD_PASSWORD):
        found.update(match.group("password").strip("'") for match in pattern.finditer(text))
    return {password for password in found if password}


def register(secret: str | None) -> None:
    """Mask ``secret`` in everything :func:`redact` sees from now on (as written and decoded).

    The settings register their secrets when they are loaded, so a message that repeats one
    without its URL around it (a driver quoting the decoded password) is masked too.
    """
    if secret:
        _registered.update(_forms(secret))


def _known_secrets() -> list[str]:
    """Every secret to mask by value, longest first (so no part of a longer one is left)."""
    found = set(_registered)
    for name in _URL_VARIABLES:
        for password in passwords(os.environ.get(name, "")):
            found.update(_forms(password))
    for name in _PASSWORD_VARIABLES:
        found.update(_forms(os.environ.get(name, "")))
    return sorted(found, key=len, reverse=True)


def redact(text: object) -> str:
    """``text`` with every URL password, ``password=`` value and known secret masked.

    Parameters
    ----------
    text
        A message, a URL, an exception; ``None`` gives ``""``.

    Returns
    -------
    str
        The text with each password replaced by ``***`` and nothing else changed.
    """
    if text is None:
        return ""
    value = str(text)
    for password in _known_secrets():
        value = value.replace(password, MASK)
    value = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK + "@", value)
    value = _QUERY_PASSWORD.sub(lambda m: m.group("head") + MASK, value)
    return _KEYWORD_PASSWORD.sub(lambda m: m.group("head") + MASK, value)


#: The name callers that show a URL use; one function masks URLs and free text alike.
mask_url = redact

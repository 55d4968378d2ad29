"""Names that reach SQL as identifiers: the target schema, checked once, refused clearly.

Every identifier is also quoted (``psycopg.sql.Identifier``) where it is used; the check here
makes a hostile or mistyped ``DBT_SCHEMA`` fail at start with one message instead of reaching
dbt, the DDL or the profile.
"""

from __future__ import annotations

import re

from python_jobs.errors import InvalidIdentifier

__all__ = ["SCHEMA_PATTERN", "SYSTEM_SCHEMAS", "InvalidIdentifier", "validate_schema"]

# PostgreSQL folds unquoted names to lower case and truncates them at 63 bytes: a name that
# passes this pattern means the same thing quoted or not, in SQL, in dbt and in the profile.
SCHEMA_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: Schemas of the server itself. PostgreSQL reserves every name starting with ``pg_`` (it
#: refuses ``create schema pg_x``), and writing the project's tables into the catalog or
#: ``information_schema`` would mix them with the server's own.
SYSTEM_SCHEMAS = frozenset({"information_schema", "pg_catalog", "pg_toast"})
_RESERVED_PREFIX = "pg_"


def validate_schema(name: str) -> str:
    """Return ``name`` if it is a safe schema name, else raise :class:`InvalidIdentifier`.

    Parameters
    ----------
    name
        The schema name, usually ``DBT_SCHEMA``.

    Returns
    -------
    str
        The same name.

    Raises
    ------
    InvalidIdentifier
        The name is empty, longer than 63 characters, or holds anything but lower-case ASCII
        letters, digits and underscores (or starts with a digit), or names a system schema
        (``information_schema``, ``pg_catalog``, ``pg_toast``, any ``pg_*``).
    """
    if not isinstance(name, str) or not SCHEMA_PATTERN.fullmatch(name):
        shown = repr(name)[:80]
        raise InvalidIdentifier(
            f"DBT_SCHEMA={shown} is not a usable schema name: use 1 to 63 lower-case letters, "
            "digits and underscores, starting with a letter or underscore (for example "
            "DBT_SCHEMA=features)"
        )
    if name in SYSTEM_SCHEMAS or name.startswith(_RESERVED_PREFIX):
        raise InvalidIdentifier(
            f"DBT_SCHEMA={name!r} is not a usable schema name: it is a system schema of "
            f"PostgreSQL ({', '.join(sorted(SYSTEM_SCHEMAS))} and every {_RESERVED_PREFIX}* name "
            "are the server's); use a schema of the project's own (for example DBT_SCHEMA=features)"
        )
    return name

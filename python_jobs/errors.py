"""Errors of the configuration: settings, the environment, names that reach SQL.

They live apart from the modules that raise them, and import nothing from the project, so
:mod:`python_jobs.settings`, :mod:`python_jobs.config` and :mod:`python_jobs.identifiers` can
all name them while importing each other one way only (identifiers <- settings <- config).
Each is a :class:`ValueError` whose message is one line that the command line prints as is
(exit code 2).
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting (from a file or the environment) has a value the project cannot use."""


class SettingsError(ConfigError):
    """Settings that cannot be used; the message names the key, the value and what is allowed."""


class InvalidIdentifier(ConfigError):
    """A name that cannot be used as a schema (or other identifier) of the project."""

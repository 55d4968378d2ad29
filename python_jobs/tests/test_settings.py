"""Settings: the YAML defaults, ${VAR:default} interpolation, override files, and bad settings."""

from __future__ import annotations

import importlib.machinery
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import psycopg
import pytest
import yaml

from python_jobs import cli, config, db, jobs_args, settings


@pytest.fixture(autouse=True)
def _no_override():
    # `--config` exports LOTO_CONFIG for child processes: each test starts and ends without it.
    previous = os.environ.pop(settings.CONFIG_ENV, None)
    yield
    settings.patch(None)
    os.environ.pop(settings.CONFIG_ENV, None)
    if previous is not None:
        os.environ[settings.CONFIG_ENV] = previous


def _write(tmp_path: Path, text: str, name: str = "override.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_the_yaml_file():
    raw = yaml.safe_load(settings.DEFAULT_FILE.read_text(encoding="utf-8"))
    loaded = settings.load(env={}).masked()
    # Every section and key of the file is a setting, and every setting is in the file.
    assert set(raw) == set(loaded)
    for section, values in raw.items():
        assert set(values) == set(loaded[section]), section
    assert loaded["batch"]["series_per_batch"] == raw["batch"]["series_per_batch"]
    assert loaded["errors"]["mode"] == raw["errors"]["mode"]
    # With no environment, the interpolated defaults apply.
    assert loaded["database"]["url"] is None
    assert loaded["database"]["dbt_schema"] == "public"
    assert loaded["gpu"]["device"] == "auto"
    assert loaded["dask"]["workers"] is None


def test_environment_interpolation_keeps_types():
    env = {
        "DATABASE_URL": "postgresql://app:pw@db.example:5433/loto",
        "DBT_SCHEMA": "features",
        "LOTO_DASK_WORKERS": "3",
        "LOTO_GPU_MEMORY_LIMIT_GB": "7.5",
        "LOG_LEVEL": "debug",
        "DEVICE": "cpu",
    }
    loaded = settings.load(env=env)
    assert settings.secret(loaded.database.url) == env["DATABASE_URL"]
    assert loaded.database.dbt_schema == "features"
    assert loaded.dask.workers == 3
    assert loaded.gpu.memory_limit_gb == 7.5
    assert loaded.logging.level == "DEBUG"
    assert loaded.gpu.device == "cpu"


def test_required_variable_without_default(tmp_path: Path):
    override = _write(tmp_path, "redis:\n  url: ${LOTO_TEST_UNSET_REDIS}\n")
    with pytest.raises(settings.SettingsError, match="LOTO_TEST_UNSET_REDIS is not set"):
        settings.load(override, env={})


def test_override_file_changes_only_its_keys(tmp_path: Path):
    override = _write(tmp_path, "errors:\n  mode: raise\n")
    loaded = settings.load(override, env={})
    assert loaded.errors.mode == "raise"
    assert loaded.errors.retry_attempts == settings.load(env={}).errors.retry_attempts


def test_loto_config_variable_names_the_override(tmp_path: Path):
    override = _write(tmp_path, "batch:\n  series_per_batch: 7\n")
    os.environ[settings.CONFIG_ENV] = str(override)
    assert settings.get().batch.series_per_batch == 7
    # ...and the feature job's --batch-size default follows it.
    assert cli.build_parser().parse_args(["features"]).batch_size == 7


def test_settings_reload_when_their_variables_change(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DBT_SCHEMA", "first_schema")
    assert settings.get().database.dbt_schema == "first_schema"
    monkeypatch.setenv("DBT_SCHEMA", "second_schema")
    assert settings.get().database.dbt_schema == "second_schema"


def test_job_arguments_default_to_the_settings():
    settings.patch(
        settings.load(
            env={},
            overrides={
                "gpu": {"device": "cpu"},
                "dask": {"workers": 2, "scheduler_address": "sync"},
                "errors": {"mode": "ignore"},
            },
        )
    )
    parser = cli.build_parser()
    args = parser.parse_args(["features"])
    assert (args.device, args.workers, args.scheduler, args.on_error) == ("cpu", 2, "sync", "ignore")
    # An explicit option still wins.
    assert parser.parse_args(["features", "--on-error", "raise"]).on_error == "raise"
    assert jobs_args.DEFAULT_BATCH_SIZE >= 1


def test_database_retry_follows_the_settings():
    settings.patch(settings.load(env={}, overrides={"errors": {"retry_attempts": 3, "retry_delay_s": 0}}))
    calls = []

    def always_down():
        calls.append(1)
        raise psycopg.OperationalError("server closed the connection")

    with pytest.raises(db.DatabaseError, match="after 3 attempts"):
        db.retry(always_down)
    assert len(calls) == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A wrong type: the key, the value and the type allowed.
        ("dask:\n  workers: many\n", ["dask.workers = 'many'", "valid integer"]),
        # A value outside what is allowed.
        ("errors:\n  mode: explode\n", ["errors.mode = 'explode'", "'raise', 'warn' or 'ignore'"]),
        # An unknown key (a typo) and the keys that exist there.
        ("gpu:\n  memory_limt_gb: 8\n", ["gpu.memory_limt_gb: unknown key", "device, memory_limit_gb"]),
        ("loging:\n  level: INFO\n", ["loging: unknown key", "logging"]),
        # A bad URL, with its password masked.
        (
            "database:\n  url: mysql://app:hunter2@db/loto\n",
            ["database.url = 'mysql://app:***@db/loto'", "postgresql://"],
        ),
        ("redis:\n  url: http://cache:6379\n", ["redis.url", "redis://"]),
        ("online:\n  metrics_port: 70000\n", ["online.metrics_port = 70000", "less than or equal to 65535"]),
    ],
)
def test_bad_settings_file_one_message_exit_2(tmp_path: Path, capsys, text: str, expected: list[str]):
    override = _write(tmp_path, text)
    code = cli.main(["--config", str(override), "settings"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.startswith("error: invalid settings (")
    for fragment in expected:
        assert fragment in err
    assert "Traceback" not in err
    assert "hunter2" not in err


def test_missing_settings_file(tmp_path: Path, capsys):
    code = cli.main(["--config", str(tmp_path / "nowhere.yaml"), "settings"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == (
        f"error: settings file {tmp_path / 'nowhere.yaml'} does not exist (given by --config or LOTO_CONFIG)"
    )


def test_not_yaml(tmp_path: Path, capsys):
    override = _write(tmp_path, "errors: [unclosed\n")
    assert cli.main(["--config", str(override), "settings"]) == 2
    assert "is not valid YAML" in capsys.readouterr().err


def test_bad_settings_change_nothing(tmp_path: Path, fresh_schema, pg_url: str, capsys):
    """A command given bad settings stops before it touches the database."""
    schema = fresh_schema("badsettings")
    override = _write(tmp_path, "errors:\n  mode: sometimes\n")
    loto6 = str(config.RAW_DATA_DIR / "loto6.json")
    assert cli.main(["--config", str(override), "ingest", "--loto", "loto6", loto6]) == 2
    capsys.readouterr()
    with db.connect(pg_url) as conn:
        tables = conn.execute(
            "select count(*) from information_schema.tables where table_schema = %s", (schema,)
        ).fetchone()[0]
    assert tables == 0


def test_passwords_never_printed(tmp_path: Path):
    """`settings`, `--help` and a log line with the URL show no password."""
    (tmp_path / "logs").mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql://app:hunter2@127.0.0.1:1/loto",
        "REDIS_URL": "redis://:hunter3@127.0.0.1:1/0",
        "LOTO_LOG_FILE": str(tmp_path / "logs" / "loto.log"),
        "LOG_FORMAT": "json",
    }
    env.pop(settings.CONFIG_ENV, None)
    run = [sys.executable, "-m", "python_jobs"]
    shown = subprocess.run([*run, "settings"], env=env, capture_output=True, text=True, check=True)
    data = json.loads(shown.stdout)
    assert data["database"]["url"] == "postgresql://app:***@127.0.0.1:1/loto"
    assert data["redis"]["url"] == "redis://:***@127.0.0.1:1/0"
    helps = [subprocess.run([*run, "--help"], env=env, capture_output=True, text=True, check=True).stdout]
    helps.append(subprocess.run([*run, "features", "--help"], env=env, capture_output=True, text=True).stdout)
    logged = subprocess.run(
        [
            sys.executable,
            "-c",
            "from python_jobs import log, settings;"
            "log.get_logger('t').warning('connect', url=settings.secret(settings.get().database.url))",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    log_file = (tmp_path / "logs" / "loto.log").read_text(encoding="utf-8")
    for text in (shown.stdout, shown.stderr, *helps, logged.stderr, log_file):
        assert "hunter2" not in text and "hunter3" not in text
    # The log went to stderr and to the file, as JSON, with the URL masked.
    record = json.loads(log_file.splitlines()[-1])
    assert record["url"] == "postgresql://app:***@127.0.0.1:1/loto"
    assert json.loads(logged.stderr.splitlines()[-1])["event"] == "connect"


def _settings_output(env: dict[str, str], override: Path | None = None) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if key != settings.CONFIG_ENV}
    config_args = ["--config", str(override)] if override else []
    return subprocess.run(
        [sys.executable, "-m", "python_jobs", *config_args, "settings"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )


def test_settings_command_masks_credentials_in_every_field():
    """A URL with a password in any text setting (a Dask scheduler) is shown masked."""
    shown = _settings_output({"DASK_SCHEDULER_ADDRESS": "tcp://user:hunter4@sched.example:8786"})
    assert "hunter4" not in shown.stdout + shown.stderr
    data = json.loads(shown.stdout)
    assert data["dask"]["scheduler_address"] == "tcp://user:***@sched.example:8786"


def test_settings_command_masks_values_of_secret_variables(tmp_path: Path):
    """A value interpolated from ${..PASSWORD..}, ${..TOKEN..}, ${..KEY..}... never shows."""
    override = _write(
        tmp_path,
        "database:\n  url: postgresql://app:${LOTO_DB_PASSWORD}@db.example/loto\n"
        "online:\n  service_id: ${LOTO_SERVICE_TOKEN}\n"
        "dask:\n  workers: ${LOTO_WORKERS_key}\n"
        "logging:\n  level: ${LOTO_LEVEL_SECRET}\n"
        "redis:\n  key_prefix: pre-${LOTO_Credential}-fix\n",
    )
    env = {
        "LOTO_DB_PASSWORD": "hunter5",
        "LOTO_SERVICE_TOKEN": "tok_hunter6",
        "LOTO_WORKERS_key": "7",
        "LOTO_LEVEL_SECRET": "debug",
        "LOTO_Credential": "hunter8",
    }
    shown = _settings_output(env, override)
    for value in ("hunter5", "hunter6", "hunter8", "debug", "DEBUG"):
        assert value not in shown.stdout + shown.stderr, value
    data = json.loads(shown.stdout)
    assert data["database"]["url"] == "postgresql://app:***@db.example/loto"
    assert data["online"]["service_id"] == "***"
    assert data["dask"]["workers"] == "***"
    assert data["logging"]["level"] == "***"
    assert data["redis"]["key_prefix"] == "pre-***-fix"
    # A variable whose name says nothing secret is shown as it is.
    assert data["logging"]["format"] == "console"


def test_bad_value_of_a_secret_variable_is_not_shown(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch):
    override = _write(tmp_path, "online:\n  service_id: ${LOTO_SERVICE_TOKEN}\n")
    monkeypatch.setenv("LOTO_SERVICE_TOKEN", "bad hunter9!")
    assert cli.main(["--config", str(override), "settings"]) == 2
    err = capsys.readouterr().err
    assert "online.service_id = '***'" in err and "hunter9" not in err


def test_log_file_rotates(tmp_path: Path):
    env = {**os.environ, "LOTO_LOG_FILE": str(tmp_path / "loto.log")}
    env.pop(settings.CONFIG_ENV, None)
    override = _write(tmp_path, "logging:\n  max_bytes: 2048\n  backup_count: 2\n")
    script = "from python_jobs import log\nfor i in range(200):\n    log.get_logger('t').info('line', i=i)\n"
    subprocess.run(
        [sys.executable, "-c", script],
        env={**env, settings.CONFIG_ENV: str(override)},
        check=True,
        capture_output=True,
    )
    files = sorted(path.name for path in tmp_path.glob("loto.log*"))
    assert files == ["loto.log", "loto.log.1", "loto.log.2"]
    assert all((tmp_path / name).stat().st_size <= 2048 + 200 for name in files)


def test_gpu_memory_limit_caps_the_cupy_pool(monkeypatch: pytest.MonkeyPatch):
    limits = []
    pool = types.SimpleNamespace(set_limit=lambda size: limits.append(size))
    fake = types.ModuleType("cupy")
    fake.__spec__ = importlib.machinery.ModuleSpec("cupy", loader=None)
    fake.get_default_memory_pool = lambda: pool
    monkeypatch.setitem(sys.modules, "cupy", fake)
    assert settings.apply_gpu_memory_limit(settings.load(env={})) is None  # no limit: untouched
    assert settings.apply_gpu_memory_limit(settings.load(env={"LOTO_GPU_MEMORY_LIMIT_GB": "1.5"})) == 1.5
    assert limits == [int(1.5 * 2**30)]

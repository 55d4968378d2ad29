"""The deployment files agree with the settings, the command line, the Makefile and the metrics.

`docker compose config` checks the compose file where Docker Compose is installed; elsewhere
the files are parsed and checked here, not built. The Prometheus rules and the Grafana
dashboard are checked against the series a live ``ServiceMetrics`` registry exports.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from urllib.parse import urlsplit

import pytest
import yaml

from python_jobs import cli, config, settings

ROOT = config.REPO_ROOT
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
WORKFLOW = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8"))
APP_SERVICES = ("features", "features-gpu", "online")
PORTS_OVERRIDE = yaml.safe_load((ROOT / "docker-compose.ports.yml").read_text(encoding="utf-8"))
DEPLOY = ROOT / "deploy"
ALERTS = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text(encoding="utf-8"))
PROMETHEUS = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
# Series Prometheus writes itself (scrape health, firing alerts), not the service.
PROMETHEUS_OWN_SERIES = {"up", "ALERTS"}
# How prometheus_client exposes a family's samples: counters as NAME_total (and NAME_created),
# histograms as NAME_bucket, NAME_sum, NAME_count (and NAME_created).
SAMPLE_SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created")


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, flags=re.MULTILINE))


def _compose_env(service: str) -> dict[str, str]:
    """The service's environment with compose's own ${VAR:?msg} placeholders filled in."""
    env = COMPOSE["services"][service].get("environment", {})
    return {key: re.sub(r"\$\{(\w+)(:[?-][^}]*)?\}", "placeholder", str(value)) for key, value in env.items()}


def _published(spec: str) -> tuple[int, int]:
    """(host port, container port) of a compose ``[IP:]HOST:CONTAINER`` port."""
    *_, host, container = str(spec).split(":")
    return int(host), int(container)


def _interpolated_names() -> set[str]:
    text = settings.DEFAULT_FILE.read_text(encoding="utf-8")
    return {name for name, _ in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}", text)}


def _check_command(command: list[str]) -> None:
    assert command[:3] == ["python", "-m", "python_jobs"], command
    commands = _subcommands()
    if command[3] == "realtime" and "realtime" not in commands:
        pytest.skip("the online service's `realtime` subcommand is not part of this build")
    assert command[3] in commands, f"{command[3]} is not a subcommand"
    commands[command[3]].parse_args(command[4:])  # its options parse (exits on an unknown one)


def _dockerfile(name: str) -> list[tuple[str, str]]:
    text = (ROOT / name).read_text(encoding="utf-8")
    joined = re.sub(r"\\\n\s*", " ", text)
    instructions = [
        (line.split(maxsplit=1)[0].upper(), line.split(maxsplit=1)[1] if " " in line else "")
        for line in joined.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return instructions


def _python_versions() -> tuple[str, ...]:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    low, high = re.search(r'requires-python = ">=(3\.\d+),<(3\.\d+)"', pyproject).groups()
    return tuple(f"3.{minor}" for minor in range(int(low.split(".")[1]), int(high.split(".")[1])))


def test_compose_services_and_ports():
    services = COMPOSE["services"]
    assert {"postgres", "redis", "features", "online", "prometheus", "grafana"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:7")
    # The online service publishes its metrics port, where its settings make it listen.
    online = settings.load(env=_compose_env("online")).online
    assert {_published(port) for port in services["online"]["ports"]} == {
        (online.metrics_port, online.metrics_port)
    }
    # The feed's port is the one the online service reads.
    feed_port = services["feed"]["command"][services["feed"]["command"].index("--port") + 1]
    assert f"ws://feed:{feed_port}" in services["online"]["command"]


@pytest.mark.parametrize("service", APP_SERVICES)
def test_compose_app_services_settings_and_commands(service: str):
    spec = COMPOSE["services"][service]
    env = _compose_env(service)
    # Every variable is one the settings read (or the feature-job DEVICE they interpolate too).
    assert set(env) <= _interpolated_names(), set(env) - _interpolated_names()
    loaded = settings.load(env=env)  # valid settings, or SettingsError names the key
    database = urlsplit(settings.secret(loaded.database.url))
    assert (database.hostname, database.port) == ("postgres", 5432)
    assert urlsplit(settings.secret(loaded.redis.url)).hostname == "redis"
    assert "postgres" in spec["depends_on"]
    # No password written into the file: it comes from the environment.
    assert "placeholder" in env["DATABASE_URL"]
    dockerfile = spec["build"]["dockerfile"]
    assert (ROOT / dockerfile).is_file()
    _check_command(spec["command"])


def test_compose_gpu_service_asks_for_a_gpu():
    spec = COMPOSE["services"]["features-gpu"]
    assert spec["build"]["dockerfile"] == "Dockerfile.gpu"
    devices = spec["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert settings.load(env=_compose_env("features-gpu")).gpu.device == "gpu"


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.gpu"])
def test_dockerfiles(name: str):
    instructions = _dockerfile(name)
    base = next(arg for kind, arg in instructions if kind == "FROM")
    runs = " ".join(arg for kind, arg in instructions if kind == "RUN")
    envs = " ".join(arg for kind, arg in instructions if kind == "ENV")
    # The exact pins, then the project itself without re-resolving them, then the JIT cache.
    assert "pip install --no-cache-dir -r requirements.lock" in runs
    assert "python -m python_jobs warmup" in runs
    assert "NUMBA_CACHE_DIR=" in envs
    assert any(kind == "USER" and arg != "root" for kind, arg in instructions)
    cmd = next(arg for kind, arg in reversed(instructions) if kind == "CMD")
    _check_command(yaml.safe_load(cmd))
    health = next(arg for kind, arg in instructions if kind == "HEALTHCHECK")
    assert '["python", "-m", "python_jobs", "health"]' in health
    if name == "Dockerfile":
        version = re.match(r"python:(3\.\d+)", base).group(1)
        assert version in _python_versions()
        assert "pip install --no-cache-dir --no-deps --no-build-isolation -e ." in runs
    else:
        assert base.startswith("nvidia/cuda:") and "-runtime-" in base
        assert '-e ".[gpu]"' in runs
        assert "[project.optional-dependencies]" in (ROOT / "pyproject.toml").read_text(encoding="utf-8")
        assert "gpu = [" in (ROOT / "pyproject.toml").read_text(encoding="utf-8")
        assert "DEVICE=gpu" in envs
        # Ubuntu 24.04's python3 is 3.12.
        assert "ubuntu24.04" in base and "3.12" in _python_versions()


def test_dockerignore_keeps_local_state_out():
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    for path in (".venv", ".local", "target", "profiles.yml"):
        assert path in ignored


def test_ci_workflow_mirrors_ci_run():
    job = WORKFLOW["jobs"]["test"]
    postgres = job["services"]["postgres"]
    assert postgres["image"].startswith("postgres:")
    url = urlsplit(job["env"]["DATABASE_URL"])
    assert settings.load(env=job["env"]).database.url is not None
    assert (url.hostname, url.port) == ("localhost", 5432) and "5432:5432" in postgres["ports"]
    assert url.username == postgres["env"]["POSTGRES_USER"]
    assert url.path.lstrip("/") == postgres["env"]["POSTGRES_DB"]
    commands = [step["run"] for step in job["steps"] if "run" in step]
    assert "bash .ci/run" in commands
    setup = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/setup-python"))
    assert setup["with"]["python-version"] in _python_versions()
    assert job["timeout-minutes"] <= 90
    # .ci/run itself runs `make test`, a Makefile target.
    ci_run = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert ci_run.strip().splitlines()[-1] == "make test"
    assert "test" in _make_targets()
    assert "apt-get install -y -qq chromium" in ci_run


def test_make_targets_named_in_the_deployment_files_exist():
    texts = [
        (ROOT / name).read_text(encoding="utf-8")
        for name in ("Dockerfile", "Dockerfile.gpu", "docker-compose.yml")
    ]
    texts.append((ROOT / ".ci" / "run").read_text(encoding="utf-8"))
    named = {match for text in texts for match in re.findall(r"\bmake ([a-z][\w-]*)", text)}
    assert named and named <= _make_targets(), named - _make_targets()
    for text in texts:
        for match in re.findall(r"python -m python_jobs ([a-z][\w-]*)", text):
            if match != "realtime" or "realtime" in _subcommands():
                assert match in _subcommands(), match
    assert shlex.split("python -m python_jobs demo")[3] in _subcommands()


# -- compose: what is published, passwords, the online service's address ----------------------


def _compose_variables(text: str) -> set[str]:
    """Variables compose interpolates in ``text`` (``$$`` is a literal dollar, left to the shell)."""
    return set(re.findall(r"(?<!\$)\$\{(\w+)", text))


def test_database_and_redis_are_published_only_when_asked():
    services = COMPOSE["services"]
    for name in ("postgres", "redis"):
        assert "ports" not in services[name], f"{name} is published by default"
    # The override publishes them, on the host's loopback only.
    published = {name: spec["ports"] for name, spec in PORTS_OVERRIDE["services"].items()}
    assert published == {"postgres": ["127.0.0.1:5432:5432"], "redis": ["127.0.0.1:6379:6379"]}


def test_published_ports_bind_the_hosts_loopback():
    for name, spec in COMPOSE["services"].items():
        for port in spec.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_redis_requires_the_password_from_the_env_file():
    redis = COMPOSE["services"]["redis"]
    # Compose fills REDIS_PASSWORD in (and refuses to start without it); the shell of the
    # container passes it to redis-server.
    assert re.fullmatch(r"\$\{REDIS_PASSWORD:\?[^}]+\}", redis["environment"]["REDIS_PASSWORD"])
    command = " ".join(redis["command"])
    assert 'redis-server --requirepass "$$REDIS_PASSWORD"' in command
    assert "$$REDIS_PASSWORD" in " ".join(redis["healthcheck"]["test"])
    for service in APP_SERVICES:
        raw = COMPOSE["services"][service]["environment"]["REDIS_URL"]
        assert re.fullmatch(r"redis://:\$\{REDIS_PASSWORD:\?[^}]+\}@redis:6379/\d+", raw), service
        url = urlsplit(settings.secret(settings.load(env=_compose_env(service)).redis.url))
        assert (url.hostname, url.password) == ("redis", "placeholder")


def test_env_example_lists_every_variable_and_env_stays_private():
    compose_text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    listed = dict(
        line.split("=", 1) for line in example.splitlines() if line.strip() and not line.startswith("#")
    )
    assert set(listed) == _compose_variables(compose_text)
    assert {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "GRAFANA_ADMIN_PASSWORD"} <= set(listed)
    assert not any(listed.values()), "the example holds no password"
    # Every password is required (`:?`): compose stops instead of starting with an empty one.
    for name in listed:
        uses = re.findall(rf"\$\{{{name}(\W{{1,2}})", compose_text)
        assert uses and set(uses) == {":?"}, name
    for ignore_file in (".gitignore", ".dockerignore"):
        assert ".env" in (ROOT / ignore_file).read_text(encoding="utf-8").split(), ignore_file


def test_online_service_listens_on_every_interface_of_its_container():
    env = _compose_env("online")
    assert env["LOTO_ONLINE_HOST"] == "0.0.0.0"
    online = settings.load(env=env).online
    assert online.host == "0.0.0.0"
    assert str(online.metrics_port) == env["LOTO_METRICS_PORT"]
    # Outside a container the default stays the loopback.
    assert settings.load(env={}).online.host == "127.0.0.1"


# Keys of the compose specification used by a service here; a misspelt one is refused.
SERVICE_KEYS = {
    "image", "build", "command", "environment", "ports", "expose", "volumes", "depends_on",
    "healthcheck", "restart", "profiles", "deploy",
}  # fmt: skip
TOP_LEVEL_KEYS = {"name", "services", "volumes", "networks", "configs", "secrets"}


@pytest.mark.parametrize("compose", [COMPOSE, PORTS_OVERRIDE], ids=["compose", "ports-override"])
def test_compose_file_shape(compose: dict):
    """What `docker compose config` checks first, for machines without Docker Compose."""
    assert {key for key in compose if not key.startswith("x-")} <= TOP_LEVEL_KEYS
    services = compose["services"]
    for name, spec in services.items():
        assert set(spec) <= SERVICE_KEYS, (name, set(spec) - SERVICE_KEYS)
        if compose is COMPOSE:
            assert ("image" in spec) != ("build" in spec), name
            for dependency, condition in spec.get("depends_on", {}).items():
                assert dependency in services, (name, dependency)
                assert condition["condition"] in {"service_started", "service_healthy"}
                if condition["condition"] == "service_healthy":
                    assert "healthcheck" in services[dependency], dependency
        for port in spec.get("ports", []):
            assert isinstance(port, str) and re.fullmatch(r"(\d+\.\d+\.\d+\.\d+:)?\d+:\d+", port), port
        assert isinstance(spec.get("command", []), list), name
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./") and volume.endswith(":ro"):
                assert (ROOT / source).exists(), (name, source)  # an input: in the repository
            elif not source.startswith("./"):
                assert source in compose["volumes"], (name, source)
    for name in PORTS_OVERRIDE["services"]:
        assert name in COMPOSE["services"], name


def _docker_compose() -> list[str] | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, check=False)
    return [docker, "compose"] if probe.returncode == 0 else None


@pytest.mark.skipif(_docker_compose() is None, reason="Docker Compose is not installed here")
def test_docker_compose_config_accepts_the_files(tmp_path):
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    env_file = tmp_path / "env"
    env_file.write_text(re.sub(r"^(\w+)=$", r"\1=secret0", example, flags=re.MULTILINE), encoding="utf-8")
    base = [*_docker_compose(), "--project-directory", str(ROOT), "--env-file", str(env_file)]
    for files in (["docker-compose.yml"], ["docker-compose.yml", "docker-compose.ports.yml"]):
        args = [arg for name in files for arg in ("-f", str(ROOT / name))]
        done = subprocess.run(
            [*base, *args, "config", "--quiet"], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
    # Without the passwords compose refuses to start.
    empty = tmp_path / "empty"
    empty.write_text("", encoding="utf-8")
    done = subprocess.run(
        [
            *_docker_compose(),
            "--env-file",
            str(empty),
            "-f",
            str(ROOT / "docker-compose.yml"),
            "config",
            "-q",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0 and "PASSWORD" in done.stderr


# -- monitoring: Prometheus, its alert rules, the Grafana dashboard -----------------------------


def promql_metrics(expression: str) -> set[str]:
    """Metric names an expression selects: identifiers that are neither functions, keywords,
    label names (in ``{...}``, ``by (...)`` and the like), durations nor Grafana variables."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\w+", " ", text)
    keywords = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or"}
    keywords |= {"unless", "offset", "inf", "nan"}
    found = re.findall(r"(?<![\w.:$])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()", text)
    return {name for name in found if name.lower() not in keywords}


def _family(name: str, families: set[str]) -> str:
    for suffix in SAMPLE_SUFFIXES:
        if name.endswith(suffix) and name.removesuffix(suffix) in families:
            return name.removesuffix(suffix)
    return name


def _exported() -> tuple[set[str], set[str]]:
    """Family names and sample names of a live ServiceMetrics registry."""
    from python_jobs.realtime.metrics import ServiceMetrics

    families = list(ServiceMetrics().registry.collect())
    return {family.name for family in families}, {s.name for family in families for s in family.samples}


def _alert_rules() -> list[dict]:
    return [rule for group in ALERTS["groups"] for rule in group["rules"]]


def _dashboard_expressions(path) -> list[str]:
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def _unknown_series(expressions: list[str]) -> dict[str, set[str]]:
    families, samples = _exported()
    unknown = {}
    for expression in expressions:
        names = promql_metrics(expression) - PROMETHEUS_OWN_SERIES
        # As written (a counter is only ever scraped as NAME_total), and as a family.
        missing = {name for name in names if name not in samples or _family(name, families) not in families}
        if missing:
            unknown[expression] = missing
    return unknown


def test_promql_metrics_finds_the_selected_series():
    expression = (
        'histogram_quantile(0.99, sum by (le) (rate(a_seconds_bucket{job="x",le!="1"}[5m]))) > 1e-2 '
        "and on (job) sum without (reason) (increase(b_total[$__rate_interval] offset 5m)) > bool 0"
    )
    assert promql_metrics(expression) == {"a_seconds_bucket", "b_total"}
    assert promql_metrics('count(ALERTS{alertstate="firing"}) or vector(0)') == {"ALERTS"}


def test_alert_rules_select_series_the_service_exports():
    rules = _alert_rules()
    assert rules and all({"alert", "expr", "labels", "annotations"} <= set(rule) for rule in rules)
    assert all(rule["labels"]["severity"] in {"warning", "critical"} for rule in rules)
    assert _unknown_series([rule["expr"] for rule in rules]) == {}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_dashboard_selects_series_the_service_exports(path):
    expressions = _dashboard_expressions(path)
    assert expressions
    assert _unknown_series(expressions) == {}


def test_dashboard_shows_every_exported_family():
    families, _ = _exported()
    shown = {
        _family(name, families)
        for path in DASHBOARDS
        for expression in _dashboard_expressions(path)
        for name in promql_metrics(expression)
    }
    assert families <= shown, families - shown


def test_alerts_cover_drops_redis_and_the_buffer():
    families, _ = _exported()
    by_family: dict[str, list[str]] = {}
    for rule in _alert_rules():
        for name in promql_metrics(rule["expr"]):
            by_family.setdefault(_family(name, families), []).append(rule["expr"])
    for family in (
        "realtime_drops",
        "realtime_redis_errors",
        "realtime_buffer_fill",
        "realtime_buffer_dropped",
    ):
        assert family in by_family, family
    # Drops alert once per reason.
    assert any(re.search(r"by \(reason\)", expression) for expression in by_family["realtime_drops"])
    # The buffer alert fires at half the buffer the service holds (online.buffer_size).
    (fill,) = by_family["realtime_buffer_fill"]
    threshold = float(re.search(r"realtime_buffer_fill\s*>\s*([\d.e+]+)", fill).group(1))
    assert threshold == settings.load(env={}).online.buffer_size / 2
    # The tick sink: its failures, its backlog at half the outbox (online.outbox_max), its losses.
    for family in ("realtime_store_errors", "realtime_outbox_length", "realtime_outbox_trimmed"):
        assert family in by_family, family
    (backlog,) = by_family["realtime_outbox_length"]
    threshold = float(re.search(r"realtime_outbox_length\s*>\s*([\d.e+]+)", backlog).group(1))
    assert threshold == settings.load(env={}).online.outbox_max / 2


def test_every_alert_has_a_unit_test_where_it_fires():
    unit = yaml.safe_load((DEPLOY / "prometheus" / "alerts_test.yml").read_text(encoding="utf-8"))
    assert unit["rule_files"] == ["alerts.yml"]
    firing = {
        case["alertname"] for test in unit["tests"] for case in test["alert_rule_test"] if case["exp_alerts"]
    }
    assert firing == {rule["alert"] for rule in _alert_rules()}
    # The unit tests feed series the service exports, under the names it exports them.
    inputs = [series["series"] for test in unit["tests"] for series in test["input_series"]]
    assert _unknown_series(inputs) == {}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Prometheus) is not installed here")
def test_promtool_accepts_the_rules_and_passes_their_unit_tests():
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]):
        done = subprocess.run(
            [shutil.which("promtool"), *args],
            cwd=DEPLOY / "prometheus",
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_prometheus_scrapes_the_online_service_and_loads_the_rules():
    online = settings.load(env=_compose_env("online")).online
    (job,) = PROMETHEUS["scrape_configs"]
    targets = [target for config_ in job["static_configs"] for target in config_["targets"]]
    assert targets == [f"online:{online.metrics_port}"]
    assert any('job="online"' in rule["expr"] for rule in _alert_rules()) == (job["job_name"] == "online")
    mounts = dict(volume.split(":")[:2] for volume in COMPOSE["services"]["prometheus"]["volumes"])
    for rule_file in PROMETHEUS["rule_files"]:
        assert rule_file in mounts.values(), rule_file
    assert mounts["./deploy/prometheus/alerts.yml"] in PROMETHEUS["rule_files"]


def test_grafana_is_provisioned_with_prometheus_and_the_dashboards():
    provisioning = DEPLOY / "grafana" / "provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "dashboards.yml").read_text())["providers"]
    grafana = COMPOSE["services"]["grafana"]
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"])
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert re.fullmatch(
        r"\$\{GRAFANA_ADMIN_PASSWORD:\?[^}]+\}", grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    )
    assert DASHBOARDS
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == source["uid"], (path.name, panel["title"])


def _listening(pid: int) -> set[tuple[str, int]]:
    import psutil

    process = psutil.Process(pid)
    return {
        (conn.laddr.ip, conn.laddr.port)
        for conn in process.net_connections(kind="tcp")
        if conn.status == psutil.CONN_LISTEN
    }


def test_online_command_with_the_compose_environment_serves_metrics_on_every_interface():
    """The compose service's command and address settings, run: /metrics binds 0.0.0.0 (so the
    published port and Prometheus reach it), not the loopback of the container."""
    if "realtime" not in _subcommands():
        pytest.skip("the online service's `realtime` subcommand is not part of this build")
    # A feed nobody serves (the service keeps retrying it) and a free port for the metrics.
    with socket.socket() as feed_probe, socket.socket() as metrics_probe:
        feed_probe.bind(("127.0.0.1", 0))
        metrics_probe.bind(("127.0.0.1", 0))
        free, metrics_port = feed_probe.getsockname()[1], metrics_probe.getsockname()[1]
    compose_env = _compose_env("online")
    env = {**os.environ, "LOTO_ONLINE_HOST": compose_env["LOTO_ONLINE_HOST"]}
    env["LOTO_METRICS_PORT"] = str(metrics_port)
    command = [
        arg.replace("ws://feed:8765", f"ws://127.0.0.1:{free}")
        for arg in COMPOSE["services"]["online"]["command"]
    ]
    command = [sys.executable, *command[1:], "--duration", "60"]
    service = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and service.poll() is None:
            if any(port == metrics_port for _, port in _listening(service.pid)):
                break
            time.sleep(0.5)
        assert service.poll() is None, service.stderr.read().decode()[-500:]
        assert ("0.0.0.0", metrics_port) in _listening(service.pid)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
            assert b"realtime_messages_total" in response.read()
    finally:
        service.terminate()
        service.wait(timeout=30)

"""The deployment files agree with the settings, the command line and the Makefile.

There is no Docker daemon here: the files are parsed and checked, not built.
"""

from __future__ import annotations

import argparse
import re
import shlex
from urllib.parse import urlsplit

import pytest
import yaml

from python_jobs import cli, config, settings

ROOT = config.REPO_ROOT
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
WORKFLOW = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8"))
APP_SERVICES = ("features", "features-gpu", "online")


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
    assert {"postgres", "redis", "features", "online"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:")
    assert "5432:5432" in services["postgres"]["ports"]
    assert services["redis"]["image"].startswith("redis:7")
    assert "6379:6379" in services["redis"]["ports"]
    # The online service publishes its metrics port and reads the feed on the settings' port.
    online = settings.load(env=_compose_env("online")).online
    assert {f"{online.metrics_port}:{online.metrics_port}"} == set(services["online"]["ports"])
    assert f"ws://feed:{online.port}" in services["online"]["command"]
    assert str(online.port) in services["feed"]["command"]


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

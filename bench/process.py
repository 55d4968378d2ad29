"""Commands timed from outside, as a user runs them: one process each, start-up included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from python_jobs import config, dbt


@dataclass
class Timed:
    """A finished command: its wall seconds (start to exit) and what it printed."""

    seconds: float
    stdout: str
    stderr: str


def command_env(url: str, schema: str) -> dict[str, str]:
    """The environment of a command against ``schema``: dbt's (connection, profile) plus the URL."""
    previous = os.environ.get("DBT_SCHEMA")
    os.environ["DBT_SCHEMA"] = schema
    try:
        dbt.render_profile(url)
        env = dbt.dbt_env(url)
    finally:
        if previous is None:
            os.environ.pop("DBT_SCHEMA", None)
        else:
            os.environ["DBT_SCHEMA"] = previous
    env["DATABASE_URL"] = url
    return env


def run_timed(args: list[str], env: dict[str, str]) -> Timed:
    """Run ``args`` from the repository root; its wall seconds around the whole process.

    A failing command raises with the end of its output: a bench figure of a failed run would
    be a figure of nothing.
    """
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=config.REPO_ROOT, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = (done.stdout[-1500:] + "\n" + done.stderr[-1500:]).strip()
        raise RuntimeError(f"`{' '.join(args[:4])} ...` failed ({done.returncode}):\n{tail}")
    return Timed(seconds, done.stdout, done.stderr)


def cli(*args: str) -> list[str]:
    """``loto-features ARGS`` as this interpreter runs it."""
    return [sys.executable, "-m", "python_jobs", *args]


def dbt_cli(*args: str) -> list[str]:
    """``dbt ARGS`` (the executable beside this interpreter)."""
    return [dbt.dbt_executable(), *args]


def target_path(env: dict[str, str]) -> Path:
    """Where the dbt of ``env`` writes ``run_results.json``."""
    return config.REPO_ROOT / env.get("DBT_TARGET_PATH", "target")


def run_results(env: dict[str, str]) -> dict:
    """The last ``run_results.json`` of the dbt of ``env``."""
    return json.loads((target_path(env) / "run_results.json").read_text(encoding="utf-8"))


def node_seconds(results: dict) -> dict[str, float]:
    """Execution seconds per node of a ``run_results.json``, slowest first (``kind:name``)."""
    seconds = {}
    for item in results["results"]:
        parts = item["unique_id"].split(".")
        # test.<project>.<name>.<hash>; every other node ends with its name.
        name = parts[2] if parts[0] == "test" and len(parts) > 2 else parts[-1]
        seconds[f"{parts[0]}:{name}"] = round(float(item["execution_time"]), 3)
    return dict(sorted(seconds.items(), key=lambda pair: -pair[1]))

"""What a command imports before it does anything: only what its work needs.

Each check runs in a fresh interpreter, so that nothing another test imported counts.
"""

from __future__ import annotations

import json
import subprocess
import sys

from python_jobs import config


def _modules_after(code: str) -> set[str]:
    """The top-level names in ``sys.modules`` after ``code`` runs in a fresh interpreter."""
    script = (
        f"{code}\nimport json, sys\nprint(json.dumps(sorted({{name.split('.')[0] for name in sys.modules}})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=config.REPO_ROOT,
        check=True,
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_the_command_line_parser_loads_neither_numba_nor_scipy():
    """Every command builds every subcommand's parser (the health check's among them, which
    names the job's tables): that alone must not load the job's compute path."""
    loaded = _modules_after("from python_jobs import cli\ncli.build_parser()")
    assert "python_jobs" in loaded
    heavy = {"numba", "scipy", "sklearn", "skops", "dask"}
    assert not loaded & heavy, loaded & heavy


def test_a_service_without_a_model_file_never_loads_skops(tmp_path):
    """skops lists every scikit-learn estimator at import (seconds): a service started with no
    model file, or with --no-predict, never pays it; reading a model file does."""
    missing = tmp_path / "next_value.skops"
    loaded = _modules_after(
        "from pathlib import Path\n"
        "from python_jobs.realtime import predict, service\n"
        f"assert predict.load_model(Path({str(missing)!r})) is None"
    )
    assert "skops" not in loaded

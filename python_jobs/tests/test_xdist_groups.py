"""`make test` runs pytest-xdist with ``--dist loadgroup``: the tests that share a built schema
must reach one worker (conftest.py marks them with a group), or each worker builds it again."""

from __future__ import annotations

import os

import pytest


def test_a_module_is_one_group_on_one_worker(request: pytest.FixtureRequest) -> None:
    if not (os.environ.get("PYTEST_XDIST_WORKER") and getattr(request.config.option, "loadgroup", False)):
        pytest.skip("runs under --dist loadgroup (make test) only")
    # xdist sends the tests whose node id ends in the same "@group" to one worker.
    assert request.node.nodeid.endswith("@python_jobs/tests/test_xdist_groups.py"), request.node.nodeid

"""The CPU image, built from the Dockerfile with podman and run on this machine.

deploy/containers/run-local.sh builds it without a registry (a Debian base made with
mmdebstrap; torch's CPU wheel from the machine's pip find-links), runs ``serve`` and
``worker`` containers against the test PostgreSQL server, submits a sweep over REST, waits
for it to complete with exactly its budget, and stops both containers (exit 0, the worker
deregistered).

Opt-in: REGSWEEP_TEST_CONTAINERS=1. It needs PyPI from inside the build, and podman, runc
and mmdebstrap, which .ci/run does not install. On 2 cores it took 6 min 40 s from nothing
and 4 min with the base image and the torch layer cached.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.postgres import POSTGRES_URL, admin_engine
from tests.waiting import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "containers" / "run-local.sh"
TOOLS = ("podman", "runc", "mmdebstrap", "psql", "curl")


@pytest.mark.system
def test_cpu_image_builds_and_works_a_sweep_submitted_over_rest() -> None:
    if not os.environ.get("REGSWEEP_TEST_CONTAINERS"):
        pytest.skip("set REGSWEEP_TEST_CONTAINERS=1 to build and run the image (4-7 min)")
    missing = [t for t in TOOLS if shutil.which(t, path=f"{os.environ['PATH']}:/usr/sbin") is None]
    if missing or os.geteuid() != 0:
        pytest.fail(
            f"run-local.sh needs root and {', '.join(TOOLS)} (missing: {missing}): "
            "apt-get install podman runc mmdebstrap postgresql-client curl",
            pytrace=False,
        )
    admin_engine().dispose()  # the server answers (or the test fails/skips, saying why)

    done = subprocess.run(
        [str(SCRIPT)],
        env={**os.environ, "API_PORT": str(free_port()), "PG_ADMIN_URL": POSTGRES_URL},
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
    assert "completed over REST" in done.stdout

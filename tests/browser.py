"""Debian's headless Chromium for tests that must see a page drawn (HTML reports).

``apt-get install -y chromium`` installs it (``.ci/run`` does); without it these tests fail
under CI and are skipped elsewhere, saying how to install it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=15000",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: any fetch the page tried would fail
    "--enable-logging=stderr",  # the page's console, where uncaught errors show
]


def require_chromium() -> Path:
    """Chromium's path; the test fails (under CI) or is skipped when it is missing."""
    if not CHROMIUM.exists():
        message = (
            f"{CHROMIUM} is missing: install Debian's Chromium with `apt-get install -y chromium`"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI is set, so reports must be checked in a browser)")
        pytest.skip(message)
    return CHROMIUM


def run_chromium(chromium: Path, page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(dir=page.parent) as profile:
        done = subprocess.run(
            [str(chromium), *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    uncaught = [line for line in done.stderr.splitlines() if "Uncaught" in line]
    assert not uncaught, "\n".join(uncaught)
    return done

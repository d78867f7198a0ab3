"""Debian's headless Chromium for the pages' end-to-end tests (driven by Playwright)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.paths import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "artifacts"
# Chromium as root, on a machine with no network but loopback.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_or_skip() -> str:
    """Debian's Chromium, or a skip (a failure where HOTLINE_REQUIRE_BROWSER=1)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("HOTLINE_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required here: apt-get install chromium")
        pytest.skip("Debian's chromium is not installed")
    return CHROMIUM

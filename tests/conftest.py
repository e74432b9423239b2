"""Shared test configuration.

Tests that need an external service (broker, database, browser) are marked ``service``; with
``TWINLOOP_REQUIRE_SERVICES=1`` (set by .ci/run) a missing service fails the test instead of
skipping it, so CI can never go green by skipping.
"""

from __future__ import annotations

import os

import pytest

REQUIRE_SERVICES = os.environ.get("TWINLOOP_REQUIRE_SERVICES") == "1" or (
    os.environ.get("CI", "").lower() == "true"
)


def need_service(available: bool, what: str) -> None:
    """Skip locally, fail in CI, when ``what`` is not available."""
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required in CI but is not available", pytrace=False)
    pytest.skip(f"{what} not available")


def process_running(pid: int) -> bool:
    """Alive and not a zombie (an exited orphan may wait for a reaper that never comes). Linux /proc."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False

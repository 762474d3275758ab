"""Fixtures the kernel tests share beyond the lab's."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator

import pytest


@pytest.fixture
def netns() -> Iterator[str]:
    """An empty network namespace of this test's own (per-run name), deleted
    afterwards even when the test fails."""
    name = f"dpt{secrets.token_hex(3)}-ns"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)

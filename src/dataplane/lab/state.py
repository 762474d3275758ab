"""State files under ``/run/dataplane-lab``: who owns which lab.

Every lab writes ``<prefix>.json`` *before* it creates anything, naming its
owner process (pid plus start time, so a recycled pid is not mistaken for
the owner).  ``dataplane lab down/status/clean`` read these files; a lab whose
owner is gone is a crashed run whose leftovers ``clean`` may remove.  ``/run``
is a tmpfs, so nothing survives a reboot (and neither do namespaces).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import attrs

STATE_DIR = Path("/run/dataplane-lab")


@attrs.define
class LabState:
    """The state file of one lab.  ``owner_pid`` is None once detached (``lab up``)."""

    prefix: str
    owner_pid: int | None
    owner_start: str | None
    namespaces: list[str]
    spec: dict[str, Any]
    created: float = attrs.field(factory=time.time)

    @property
    def detached(self) -> bool:
        return self.owner_pid is None

    def owner_alive(self) -> bool:
        """True if the owning process still runs (a detached lab counts as alive)."""
        if self.owner_pid is None:
            return True
        return process_start_time(self.owner_pid) == self.owner_start


def process_start_time(pid: int) -> str | None:
    """Start time of ``pid`` in clock ticks since boot (field 22 of /proc/pid/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


def owned_by_me(prefix: str, namespaces: list[str], spec: dict[str, Any]) -> LabState:
    pid = os.getpid()
    return LabState(prefix, pid, process_start_time(pid), namespaces, spec)


def path(prefix: str) -> Path:
    return STATE_DIR / f"{prefix}.json"


def log_dir(prefix: str) -> Path:
    """Where the lab's helper processes write their stderr."""
    return STATE_DIR / prefix


def write(state: LabState) -> None:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    log_dir(state.prefix).mkdir(exist_ok=True)
    tmp = path(state.prefix).with_suffix(".tmp")
    tmp.write_text(json.dumps(attrs.asdict(state), indent=2))
    tmp.replace(path(state.prefix))


def read(prefix: str) -> LabState | None:
    try:
        return LabState(**json.loads(path(prefix).read_text()))
    except (OSError, ValueError, TypeError):
        return None  # missing, half-written or from another version: treat as no owner


def all_states() -> list[LabState]:
    if not STATE_DIR.is_dir():
        return []
    states = (read(p.stem) for p in sorted(STATE_DIR.glob("*.json")))
    return [s for s in states if s is not None]


def remove(prefix: str) -> None:
    path(prefix).unlink(missing_ok=True)
    path(prefix).with_suffix(".tmp").unlink(missing_ok=True)
    shutil.rmtree(log_dir(prefix), ignore_errors=True)

"""Tear labs down: one path for ``Lab.close``, ``dataplane lab down`` and ``clean``.

Order matters: processes inside the namespaces first (a namespace lives on
while a process is in it), then pinned BPF objects of the lab's instance,
then the namespaces (their interfaces, routes and attachments go with them),
then the state file.  Every step tolerates things that are already gone, so
teardown can be re-run after any failure.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterable
from pathlib import Path

from dataplane.lab import naming, netns, state

BPF_PIN_DIR = Path("/sys/fs/bpf/dataplane")
"""Backends pin under ``<BPF_PIN_DIR>/<instance>``; the lab uses its prefix as instance."""


def all_lab_namespaces() -> list[str]:
    """Namespaces of every lab on the machine, whatever the prefix."""
    return [n for n in netns.names() if naming.prefix_of_netns(n) is not None]


def lab_namespaces(prefix: str) -> list[str]:
    return [n for n in netns.names() if naming.prefix_of_netns(n) == prefix]


def remove_pins(prefix: str) -> None:
    """The lab's pins, and the shared ``BPF_PIN_DIR`` if nothing else is left in it: a
    backend creates it on start, and a data plane that is closed rather than cleaned up
    (the usual end of a lab's data planes) leaves it behind."""
    for pin in BPF_PIN_DIR.glob(f"{prefix}*"):
        if pin.is_dir() and not pin.is_symlink():
            shutil.rmtree(pin, ignore_errors=True)
        else:
            pin.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # missing, or other instances' pins are still there
        BPF_PIN_DIR.rmdir()


def remove_lab(prefix: str, namespaces: Iterable[str] = ()) -> None:
    """Remove everything of lab ``prefix``: processes, pins, namespaces, state."""
    names = sorted(set(namespaces) | set(lab_namespaces(prefix)))
    netns.kill(netns.pids_in(names))
    remove_pins(prefix)
    for name in names:
        netns.remove(name)
    state.remove(prefix)


def known_prefixes() -> set[str]:
    """Prefixes with a state file, a namespace or a pin."""
    prefixes = {s.prefix for s in state.all_states()}
    prefixes |= {p for n in netns.names() if (p := naming.prefix_of_netns(n))}
    if BPF_PIN_DIR.is_dir():
        prefixes |= {p.name[:8] for p in BPF_PIN_DIR.iterdir() if naming.is_prefix(p.name[:8])}
    return prefixes


def abandoned(prefix: str) -> bool:
    """A lab is abandoned if it has no state file or its owner process is gone."""
    lab_state = state.read(prefix)
    return lab_state is None or not lab_state.owner_alive()


def clean(prefixes: Iterable[str] | None = None, *, include_live: bool = False) -> list[str]:
    """Remove leftovers; return the prefixes removed.

    With explicit ``prefixes`` those labs go whatever their state.  Otherwise
    every abandoned lab goes, and with ``include_live`` every lab at all, even
    those a running process (another test run on this machine) still owns.
    """
    if prefixes is not None:
        targets = sorted(set(prefixes))
    else:
        targets = sorted(p for p in known_prefixes() if include_live or abandoned(p))
    for prefix in targets:
        lab_state = state.read(prefix)
        remove_lab(prefix, lab_state.namespaces if lab_state else ())
    return targets

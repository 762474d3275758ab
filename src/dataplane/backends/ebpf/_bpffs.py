"""The bpffs seam: make sure a BPF filesystem is mounted where pins live.

Pins are what make NAT and conntrack state survive an agent restart, so a
node without bpffs at ``/sys/fs/bpf`` (a fresh VM, a minimal container) gets
one mounted, exactly as ``mount -t bpf bpf /sys/fs/bpf`` would. This is a
filesystem, not networking: it touches no namespace's network state.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

from dataplane.errors import BackendUnavailableError


def is_bpffs(path: Path) -> bool:
    """True if ``path`` is on a mounted BPF filesystem."""
    mounts = Path("/proc/self/mounts")
    target = str(path.resolve())
    for line in mounts.read_text().splitlines():
        fields = line.split()
        if (
            len(fields) >= 3
            and fields[2] == "bpf"
            and (target == fields[1] or target.startswith(fields[1].rstrip("/") + "/"))
        ):
            return True
    return False


def ensure_mounted(root: Path) -> None:
    """Mount bpffs at ``root`` unless ``root`` already lives on one."""
    if root.exists() and is_bpffs(root):
        return
    root.mkdir(parents=True, exist_ok=True)
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
    if libc.mount(b"bpf", str(root).encode(), b"bpf", 0, b"mode=0700") != 0:
        err = ctypes.get_errno()
        raise BackendUnavailableError(
            f"bpffs is not mounted at {root} and mounting it failed: {os.strerror(err)}"
        )

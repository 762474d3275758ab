"""The only module that creates, enters or removes network namespaces.

Everything here is stdlib-only at import time on purpose: helper processes
(:mod:`dataplane.lab.agent`) import it to enter their namespace, and they must
start in tens of milliseconds, not pay for pyroute2.  Namespaces are the
``ip netns`` kind (bind mounts under ``/run/netns``) so that ``ip netns
exec`` works on a running lab for debugging.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import runpy
import signal
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from dataplane.lab import naming

NETNS_DIR = Path("/run/netns")
_CLONE_NEWNET = 0x40000000
_MNT_DETACH = 2
_PR_SET_PDEATHSIG = 1
_LAB_PACKAGE_DIR = Path(__file__).resolve().parent
_libc = ctypes.CDLL(None, use_errno=True)

# Run in a fresh interpreter by path-less bootstrap: the two parent packages are
# stubbed so that neither ``dataplane/__init__.py`` nor ``dataplane/lab/__init__.py``
# (and whatever they import) runs in helper processes.  The helpers then start fast
# and keep working while the rest of the package is being edited.
_BOOTSTRAP = f"""\
import sys, types
for name, path in (("dataplane", {str(_LAB_PACKAGE_DIR.parent)!r}),
                   ("dataplane.lab", {str(_LAB_PACKAGE_DIR)!r})):
    module = types.ModuleType(name)
    module.__path__ = [path]
    sys.modules[name] = module
from dataplane.lab.netns import bootstrap
bootstrap(sys.argv[1:])
"""


def unavailable_reason() -> str | None:
    """Why this process cannot make network namespaces, or None if it can."""
    if os.geteuid() != 0:
        return "the lab needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to create network namespaces"
    if not os.path.exists("/proc/self/ns/net"):
        return "this kernel has no network namespaces (CONFIG_NET_NS)"
    return None


def path(name: str) -> Path:
    return NETNS_DIR / name


def exists(name: str) -> bool:
    return path(name).exists()


def create(name: str) -> None:
    """Create a named namespace (what ``ip netns add`` does); fails if it exists."""
    from pyroute2 import netns as pyroute2_netns

    if exists(name):
        raise FileExistsError(errno.EEXIST, "network namespace exists", name)
    pyroute2_netns.create(name)


def remove(name: str) -> None:
    """Drop the namespace's name; the kernel frees it once no process or fd holds it."""
    target = str(path(name)).encode()
    _libc.umount2(target, _MNT_DETACH)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(target)


def lab_namespaces() -> list[str]:
    """Names of every namespace that belongs to some lab (any prefix of the family)."""
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if naming.prefix_of_netns(n) is not None)


def enter(name: str) -> None:
    """Move the calling *thread* into namespace ``name`` (the process, if single-threaded)."""
    fd = os.open(path(name), os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {name}: {os.strerror(err)}")
    finally:
        os.close(fd)


def write_sysctls(name: str, values: Mapping[str, str]) -> None:
    """Write ``/proc/sys/<key>`` values inside namespace ``name``.

    ``/proc/sys/net`` shows the namespace of the thread that opens it, so a
    short-lived thread enters the namespace, writes and ends: the caller's own
    threads (and so the root namespace's sysctls) are never touched.
    """
    errors: list[BaseException] = []

    def write() -> None:
        try:
            enter(name)
            for key, value in values.items():
                Path("/proc/sys", key.replace(".", "/")).write_text(value)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=write, name=f"sysctl-{name}")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def pids_in(names: Iterable[str]) -> list[int]:
    """Every process (but this one) whose network namespace is one of ``names``."""
    wanted: set[tuple[int, int]] = set()
    for name in names:
        try:
            st = os.stat(path(name))
        except FileNotFoundError:
            continue
        wanted.add((st.st_dev, st.st_ino))
    if not wanted:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in wanted:
            found.append(int(entry))
    return found


def kill(pids: Iterable[int], timeout: float = 3.0) -> None:
    """SIGKILL ``pids`` and wait until they are gone (or zombies left for their parent)."""
    pending = set()
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            pending.add(pid)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = {pid for pid in pending if _running(pid)}
        if pending:
            time.sleep(0.005)


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def python_argv(
    netns: str, module: str, args: Sequence[str], *, die_with_parent: bool
) -> list[str]:
    """Command line that runs ``python -m module args`` inside ``netns``."""
    parent = str(os.getpid()) if die_with_parent else "0"
    return [sys.executable, "-I", "-S", "-c", _BOOTSTRAP, netns, parent, "-m", module, *args]


def command_argv(netns: str, argv: Sequence[str], *, die_with_parent: bool) -> list[str]:
    """Command line that execs ``argv`` inside ``netns`` (no ``ip netns exec`` needed)."""
    parent = str(os.getpid()) if die_with_parent else "0"
    return [sys.executable, "-I", "-S", "-c", _BOOTSTRAP, netns, parent, "--", *argv]


def bootstrap(args: Sequence[str]) -> None:
    """Entry point of :func:`python_argv` / :func:`command_argv` processes.

    ``args`` is ``<netns> <parent pid or 0> (-m module args... | -- argv...)``.
    With a parent pid the process asks the kernel for SIGKILL when its parent
    dies, so a SIGKILLed lab owner cannot leave helpers behind.
    """
    netns, parent, mode, *rest = args
    enter(netns)
    if parent != "0":
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != int(parent):
            os._exit(1)
    if mode == "-m":
        sys.argv = list(rest)
        runpy.run_module(rest[0], run_name="__main__", alter_sys=True)
    else:
        os.execvp(rest[0], rest)


def clear_parent_death_signal() -> None:
    """Let this process outlive its parent (``dataplane lab up`` hands the lab over)."""
    _libc.prctl(_PR_SET_PDEATHSIG, 0, 0, 0, 0)

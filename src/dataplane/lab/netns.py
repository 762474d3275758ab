"""The only module that creates, enters or removes network namespaces.

Namespaces are the ``ip netns`` kind (bind mounts under ``/run/netns``) so
``ip netns exec`` works on a running lab for debugging.  Everything here is
stdlib-only and light at import time on purpose: helper processes
(:mod:`dataplane.lab.agent`) import it to enter their namespace and must
start in milliseconds.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import runpy
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

NETNS_DIR = "/run/netns"
_CLONE_NEWNET = 0x40000000
_MS_BIND = 4096
_MS_REC = 16384
_MS_SHARED = 1 << 20
_MNT_DETACH = 2
_PR_SET_PDEATHSIG = 1
_NETLINK_ROUTE = 0
_LAB_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_libc = ctypes.CDLL(None, use_errno=True)

# Helpers run in a fresh interpreter through this bootstrap: the two parent
# packages are stubbed so that neither ``dataplane/__init__.py`` nor
# ``dataplane/lab/__init__.py`` (and whatever they import) runs in helper
# processes.  They start fast and keep working while the rest of the package
# is being edited.
_BOOTSTRAP = f"""\
import sys, types
for name, path in (("dataplane", {os.path.dirname(_LAB_PACKAGE_DIR)!r}),
                   ("dataplane.lab", {_LAB_PACKAGE_DIR!r})):
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


def path(name: str) -> str:
    return os.path.join(NETNS_DIR, name)


def names() -> list[str]:
    """Every named namespace on the machine (lab or not)."""
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _in_thread(work: Callable[[], None], name: str) -> None:
    """Run ``work`` in a short-lived thread and re-raise its exception here.

    Namespace switches (``setns``, ``unshare``) apply to the calling thread
    only, so doing them in a thread that then ends leaves every other thread of
    this process, and so the root namespace, untouched.
    """
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, name=name)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def _prepare_netns_dir() -> None:
    """Make /run/netns a shared mount, as ``ip netns add`` does, so the bind
    mounts below show up in every mount namespace."""
    os.makedirs(NETNS_DIR, exist_ok=True)
    target = NETNS_DIR.encode()
    if _libc.mount(b"", target, b"none", _MS_SHARED | _MS_REC, None) != 0:
        _check(_libc.mount(target, target, b"none", _MS_BIND | _MS_REC, None), "bind /run/netns")
        _check(_libc.mount(b"", target, b"none", _MS_SHARED | _MS_REC, None), "share /run/netns")


def create_all(new: Sequence[str]) -> dict[str, int]:
    """Create the namespaces ``new`` and open a netlink route socket in each.

    Returns the socket fds by name (the caller owns them).  One thread does
    it all: ``unshare(CLONE_NEWNET)`` gives that thread a fresh namespace,
    which is bind-mounted under its name and gets its socket, and so on: no
    process is forked per namespace.  On failure, the namespaces created so
    far stay for the caller's teardown and the sockets are closed.
    """
    sockets: dict[str, int] = {}

    def work() -> None:
        _prepare_netns_dir()
        for name in new:
            os.close(os.open(path(name), os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
            _check(_libc.unshare(_CLONE_NEWNET), f"unshare for {name}")
            source = b"/proc/thread-self/ns/net"
            _check(_libc.mount(source, path(name).encode(), b"none", _MS_BIND, None), name)
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_ROUTE)
            sockets[name] = sock.detach()

    try:
        _in_thread(work, "netns-create")
    except BaseException:
        for fd in sockets.values():
            os.close(fd)
        raise
    return sockets


def remove(name: str) -> None:
    """Drop the namespace's name; the kernel frees it once no process or fd holds it."""
    _libc.umount2(path(name).encode(), _MNT_DETACH)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path(name))


def enter(name: str) -> None:
    """Move the calling *thread* into namespace ``name`` (the process, if single-threaded)."""
    fd = os.open(path(name), os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc.setns(fd, _CLONE_NEWNET), f"setns into {name}")
    finally:
        os.close(fd)


def write_sysctls(name: str, values: Mapping[str, str], *, missing_ok: bool = False) -> None:
    """Write ``/proc/sys/<key>`` values inside namespace ``name`` (``/proc/sys/net``
    shows the namespace of the thread that opens it).  ``missing_ok``: skip keys
    this kernel does not have (a module that is not loaded)."""

    def work() -> None:
        enter(name)
        for key, value in values.items():
            path = os.path.join("/proc/sys", key.replace(".", "/"))
            if missing_ok and not os.path.exists(path):
                continue
            with open(path, "w") as file:
                file.write(value)

    _in_thread(work, f"sysctl-{name}")


def pids_in(namespaces: Iterable[str]) -> list[int]:
    """Every process (but this one) whose network namespace is one of ``namespaces``."""
    wanted: set[tuple[int, int]] = set()
    for name in namespaces:
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
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            pending.add(pid)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = {pid for pid in pending if _running(pid)}
        if pending:
            time.sleep(0.005)


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as file:
            stat = file.read()
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

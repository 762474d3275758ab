"""The network-namespace and netlink seam of the eBPF backend.

Why a thread that ``setns()``s rather than pyroute2's ``IPRoute(netns=...)``:
libbpf's ``bpf_tc_*`` calls open their netlink socket in the *calling
thread's* namespace, so TC attachment needs a thread inside the target
namespace anyway; running every namespace-bound call (TC and link queries)
through the same short-lived thread gives one mechanism, and it never
forks (pyroute2's netns sockets fork a child, which Python warns about in
threaded programs). The namespace change dies with the thread, so the
caller's own thread never leaves its namespace.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from dataplane.backends.ebpf import _rtnl
from dataplane.backends.ebpf._rtnl import RouteOut
from dataplane.errors import BackendError

T = TypeVar("T")

NETNS_DIR = Path("/run/netns")
_CLONE_NEWNET = 0x40000000


@functools.cache
def _setns() -> Callable[[int, int], int]:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    fn: Callable[[int, int], int] = libc.setns
    libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.setns.restype = ctypes.c_int
    return fn


def run_in_netns(netns: str | None, fn: Callable[[], T]) -> T:
    """Run ``fn`` inside the named namespace (None: the caller's own) and return its result."""
    if netns is None:
        return fn()
    path = NETNS_DIR / netns
    result: list[T] = []
    failure: list[BaseException] = []

    def body() -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            failure.append(BackendError(f"network namespace {netns!r} not found: {exc}"))
            return
        try:
            if _setns()(fd, _CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                failure.append(BackendError(f"setns({netns}): {os.strerror(err)}"))
                return
        finally:
            os.close(fd)
        try:
            result.append(fn())
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=body, name=f"netns-{netns}")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def netns_exists(netns: str | None) -> bool:
    return netns is None or (NETNS_DIR / netns).exists()


def links(netns: str | None) -> dict[str, int]:
    """Interface name → ifindex in the namespace."""

    def query() -> dict[str, int]:
        with IPRoute() as ipr:
            return {link.get("ifname"): link["index"] for link in ipr.get_links()}

    return run_in_netns(netns, query)


def mtus(netns: str | None) -> dict[str, int]:
    """Interface name → MTU in the namespace."""

    def query() -> dict[str, int]:
        with IPRoute() as ipr:
            return {link.get("ifname"): int(link.get("mtu") or 0) for link in ipr.get_links()}

    return run_in_netns(netns, query)


def routes_out(netns: str | None, addrs: Iterable[str]) -> dict[str, RouteOut]:
    """Address → where the namespace's routing table sends it (addresses
    without a route are left out)."""
    return run_in_netns(netns, lambda: _rtnl.route_get(addrs))


def ensure_vxlan(netns: str | None, name: str, port: int) -> int:
    """A metadata-mode (``external``) VXLAN device, up; its ifindex.

    Metadata mode lets the programs choose the remote node per packet
    (``bpf_skb_set_tunnel_key``), so one device serves every node.
    """

    def create() -> int:
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=name)
            if not found:
                try:
                    ipr.link(
                        "add",
                        ifname=name,
                        kind="vxlan",
                        vxlan_collect_metadata=1,
                        vxlan_port=port,
                        vxlan_learning=0,
                    )
                except NetlinkError as exc:
                    raise BackendError(f"create VXLAN device {name}: {exc}") from exc
                found = ipr.link_lookup(ifname=name)
            index = int(found[0])
            ipr.link("set", index=index, state="up")
            return index

    return run_in_netns(netns, create)


def delete_link(netns: str | None, name: str) -> None:
    def delete() -> None:
        with IPRoute() as ipr:
            for index in ipr.link_lookup(ifname=name):
                ipr.link("del", index=index)

    run_in_netns(netns, delete)

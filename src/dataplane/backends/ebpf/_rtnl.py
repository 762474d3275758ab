"""The two rtnetlink exchanges ``dp_route`` needs, spoken directly.

``dp_route`` holds, per other node and per remote pod CIDR, where the
routing table sends it (``docs/ebpf.md``). Reading that is one route lookup
per address, and a cluster of a thousand nodes has two thousand of them;
through pyroute2 each lookup costs ~300 µs of Python, ~0.6 s for the lot, paid
at every full sync and, before this module, after every route change in the
node (a CNI adds one per pod it starts). Here the lookups go out in batches
on one socket and only the two attributes read are parsed, and the route
watch learns *which* prefixes changed, so it re-reads only the addresses
inside them (usually none: a pod's own /32 covers no other node).

Both run in the caller's network namespace (see ``_netns.run_in_netns``).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterable, Iterator

import attrs

NETLINK_ROUTE = 0
RTMGRP_IPV4_ROUTE = 0x40
_NLM_F_REQUEST = 1
_RTM_NEWROUTE, _RTM_DELROUTE, _RTM_GETROUTE = 24, 25, 26
_RTA_DST, _RTA_OIF, _RTA_GATEWAY = 1, 4, 5
_NLMSGHDR = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
# family, dst_len, src_len, tos, table, protocol, scope, type, flags
_RTMSG = struct.Struct("=BBBBBBBBI")
_RTATTR = struct.Struct("=HH")  # length, type
_BATCH = 256
"""Lookups per ``send()``: their answers (~100 bytes each) stay well inside
the socket's default receive buffer, so none is dropped while we read."""
_ANSWER_TIMEOUT_S = 5.0
"""The kernel answers every lookup at once; a socket that stays silent this
long is broken, and the caller gets an ``OSError`` instead of a hang."""


@attrs.frozen
class RouteOut:
    """Where the routing table sends an address: out of ``ifindex``, via
    ``gateway`` (``None``: on-link, the address itself is the next hop)."""

    ifindex: int
    gateway: str | None


def open_socket(groups: int = 0) -> socket.socket:
    """An rtnetlink socket in this namespace, subscribed to ``groups``."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
    try:
        sock.bind((0, groups))
    except OSError:
        sock.close()
        raise
    return sock


def route_get(addrs: Iterable[str]) -> dict[str, RouteOut]:
    """Address → where this namespace's routing table sends it, as ``ip route
    get`` answers (addresses without a route, or whose route names no output
    interface, are left out)."""
    todo = list(addrs)
    out: dict[str, RouteOut] = {}
    with open_socket() as sock:
        sock.settimeout(_ANSWER_TIMEOUT_S)
        for start in range(0, len(todo), _BATCH):
            batch = todo[start : start + _BATCH]
            sock.sendall(b"".join(_get_request(seq, addr) for seq, addr in enumerate(batch)))
            pending = len(batch)
            while pending:
                for seq, kind, body in _messages(sock.recv(65536)):
                    if not 0 <= seq < len(batch):
                        continue
                    pending -= 1
                    if kind == _RTM_NEWROUTE:
                        found = _route_out(body)
                        if found is not None:
                            out[batch[seq]] = found
    return out


def route_prefixes(data: bytes) -> set[ipaddress.IPv4Network]:
    """The IPv4 destinations of the route notifications in ``data`` (one
    ``recv`` from a socket subscribed to :data:`RTMGRP_IPV4_ROUTE`)."""
    changed = set()
    for _, kind, body in _messages(data):
        if kind not in (_RTM_NEWROUTE, _RTM_DELROUTE) or len(body) < _RTMSG.size:
            continue
        family, dst_len = body[0], body[1]
        if family != socket.AF_INET:
            continue
        dst = _attrs(body).get(_RTA_DST, bytes(4))
        changed.add(ipaddress.IPv4Network((dst[:4], dst_len), strict=False))
    return changed


def _get_request(seq: int, addr: str) -> bytes:
    rtmsg = _RTMSG.pack(socket.AF_INET, 32, 0, 0, 0, 0, 0, 0, 0)
    dst = _RTATTR.pack(_RTATTR.size + 4, _RTA_DST) + socket.inet_aton(addr)
    length = _NLMSGHDR.size + len(rtmsg) + len(dst)
    return _NLMSGHDR.pack(length, _RTM_GETROUTE, _NLM_F_REQUEST, seq, 0) + rtmsg + dst


def _messages(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(sequence, type, body) of each netlink message in ``data``."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, _, seq, _ = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size or offset + length > len(data):
            return
        yield seq, kind, data[offset + _NLMSGHDR.size : offset + length]
        offset += _align(length)


def _attrs(body: bytes) -> dict[int, bytes]:
    """The route attributes after ``body``'s rtmsg, by type."""
    found = {}
    offset = _RTMSG.size
    while offset + _RTATTR.size <= len(body):
        length, kind = _RTATTR.unpack_from(body, offset)
        if length < _RTATTR.size:
            break
        found[kind] = body[offset + _RTATTR.size : offset + length]
        offset += _align(length)
    return found


def _route_out(body: bytes) -> RouteOut | None:
    found = _attrs(body)
    oif = found.get(_RTA_OIF)
    if oif is None or len(oif) < 4:
        return None
    gateway = found.get(_RTA_GATEWAY)
    return RouteOut(
        struct.unpack("=I", oif[:4])[0],
        socket.inet_ntoa(gateway[:4]) if gateway and len(gateway) >= 4 else None,
    )


def _align(length: int) -> int:
    return (length + 3) & ~3

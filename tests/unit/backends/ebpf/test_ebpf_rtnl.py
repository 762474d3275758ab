"""Route notifications as ``_rtnl`` reads them, from hand-built messages; the
kernel's own are checked in tests/kernel/test_ebpf_routes.py."""

from __future__ import annotations

import ipaddress
import socket
import struct

from dataplane.backends.ebpf import _rtnl

N = ipaddress.IPv4Network
RTM_NEWROUTE, RTM_DELROUTE, RTM_NEWLINK = 24, 25, 16


def _attr(kind: int, data: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(data), kind) + data
    return raw + bytes(-len(raw) % 4)


def _message(kind: int, family: int, dst_len: int, *attrs: bytes) -> bytes:
    body = struct.pack("=BBBBBBBBI", family, dst_len, 0, 0, 254, 3, 0, 1, 0) + b"".join(attrs)
    return struct.pack("=IHHII", 16 + len(body), kind, 0, 0, 0) + body


def test_notifications_give_their_ipv4_destinations() -> None:
    data = b"".join(
        [
            _message(RTM_NEWROUTE, socket.AF_INET, 24, _attr(1, socket.inet_aton("10.100.1.0"))),
            _message(
                RTM_DELROUTE,
                socket.AF_INET,
                32,
                _attr(5, socket.inet_aton("10.0.0.1")),
                _attr(1, socket.inet_aton("10.100.9.7")),
            ),
            _message(RTM_NEWROUTE, socket.AF_INET, 0),  # the default route: no RTA_DST
            _message(RTM_NEWROUTE, socket.AF_INET6, 64, _attr(1, bytes(16))),
            _message(RTM_NEWLINK, socket.AF_INET, 8, _attr(1, socket.inet_aton("10.0.0.0"))),
        ]
    )
    assert _rtnl.route_prefixes(data) == {
        N("10.100.1.0/24"),
        N("10.100.9.7/32"),
        N("0.0.0.0/0"),
    }


def test_a_truncated_buffer_yields_what_is_whole() -> None:
    whole = _message(RTM_NEWROUTE, socket.AF_INET, 16, _attr(1, socket.inet_aton("10.7.0.0")))
    assert _rtnl.route_prefixes(whole + whole[:10]) == {N("10.7.0.0/16")}
    assert _rtnl.route_prefixes(b"") == set()

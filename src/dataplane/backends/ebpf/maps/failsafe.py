"""``dp_failsafe``: ports host endpoint policy never blocks (LPM trie).

C layout (``bpf/dp_maps.h``)::

    struct dp_failsafe_key   { __u32 prefixlen; __u8 dir; __u8 proto; __u16 port;
                               __be32 addr; };
    struct dp_failsafe_value { __u8 allowed; __u8 pad[3]; };

IN entries match traffic to the host by (protocol, destination port, source
prefix), OUT entries traffic from the host by (protocol, destination port,
destination prefix): ``IRSettings.failsafe_*``, plus this instance's VXLAN
port towards the other nodes, without which a deny-all host endpoint would
cut the tunnel that carries NodePort traffic. ``prefixlen`` = 32 + prefix.
"""

from __future__ import annotations

import ctypes
import ipaddress

from dataplane.backends.ebpf.maps._map import MapSpec, pack_addr, unpack_addr

IN = 1
OUT = 2
FIXED_BITS = 32

Entry = tuple[int, int, int, ipaddress.IPv4Network]
"""(direction, protocol, port, peer prefix)."""


class FailsafeKey(ctypes.Structure):
    _fields_ = [
        ("prefixlen", ctypes.c_uint32),
        ("dir", ctypes.c_uint8),
        ("proto", ctypes.c_uint8),
        ("port", ctypes.c_uint16),
        ("addr", ctypes.c_uint32),
    ]


class FailsafeValue(ctypes.Structure):
    _fields_ = [("allowed", ctypes.c_uint8), ("pad", ctypes.c_uint8 * 3)]


SPEC = MapSpec("dp_failsafe", FailsafeKey, FailsafeValue, "dp_failsafe_key", "dp_failsafe_value")


def make_key(entry: Entry) -> FailsafeKey:
    direction, proto, port, net = entry
    return FailsafeKey(
        FIXED_BITS + net.prefixlen, direction, proto, port, pack_addr(net.network_address)
    )


def entry_of(key: FailsafeKey) -> Entry:
    net = ipaddress.IPv4Network((unpack_addr(key.addr), key.prefixlen - FIXED_BITS))
    return key.dir, key.proto, key.port, net

"""``dp_ipset``: members of every IP set, one LPM trie keyed by (set id, port, proto, prefix).

C layout (``bpf/dp_maps.h``)::

    struct dp_ipset_key   { __u32 prefixlen; __u32 set_id; __u16 port; __u8 proto;
                            __u8 pad; __be32 addr; };
    struct dp_ipset_value { __u8 member; __u8 pad[3]; };

``prefixlen`` covers the 64 bits of id, port, proto and pad plus the member's
prefix, so one lookup answers "is this address (with this protocol and port)
in set N". Selector and CIDR sets use port = proto = 0; named-port sets hold
(endpoint address, protocol, port). Membership changes are element writes
here; rule programs refer to sets by id and are never rewritten for them.
"""

from __future__ import annotations

import ctypes
import ipaddress

from dataplane.backends.ebpf.maps._map import MapSpec, pack_addr, unpack_addr

FIXED_BITS = 64

Member = tuple[ipaddress.IPv4Network, int, int]
"""(prefix, protocol, port); protocol = port = 0 for address members."""


class IpSetKey(ctypes.Structure):
    _fields_ = [
        ("prefixlen", ctypes.c_uint32),
        ("set_id", ctypes.c_uint32),
        ("port", ctypes.c_uint16),
        ("proto", ctypes.c_uint8),
        ("pad", ctypes.c_uint8),
        ("addr", ctypes.c_uint32),
    ]


class IpSetValue(ctypes.Structure):
    _fields_ = [("member", ctypes.c_uint8), ("pad", ctypes.c_uint8 * 3)]


SPEC = MapSpec(
    "dp_ipset", IpSetKey, IpSetValue, "dp_ipset_key", "dp_ipset_value", size_option="ebpf_ipset_max"
)


def make_key(set_id: int, member: Member) -> IpSetKey:
    net, proto, port = member
    return IpSetKey(
        FIXED_BITS + net.prefixlen, set_id, port, proto, 0, pack_addr(net.network_address)
    )


def member_of(key: IpSetKey) -> Member:
    net = ipaddress.IPv4Network((unpack_addr(key.addr), key.prefixlen - FIXED_BITS))
    return net, key.proto, key.port

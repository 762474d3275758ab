"""``dp_class``: which source class an address belongs to (LPM trie).

C layout (``bpf/dp_maps.h``)::

    struct dp_lpm4_key    { __u32 prefixlen; __be32 addr; };
    struct dp_class_value { __u8 class_id; __u8 pad[3]; };

Filled from the IR settings: cluster CIDRs are POD, the node's own addresses
HOST (as /32, so they win over a CIDR that contains them). The same map tells
the datapath whether a destination is this node (wildcard NodePorts).
"""

from __future__ import annotations

import ctypes
import ipaddress

from dataplane.backends.ebpf.maps._map import MapSpec, pack_addr, unpack_addr


class Lpm4Key(ctypes.Structure):
    _fields_ = [("prefixlen", ctypes.c_uint32), ("addr", ctypes.c_uint32)]


class ClassValue(ctypes.Structure):
    _fields_ = [("class_id", ctypes.c_uint8), ("pad", ctypes.c_uint8 * 3)]


SPEC = MapSpec("dp_class", Lpm4Key, ClassValue, "dp_lpm4_key", "dp_class_value")


def make_key(net: ipaddress.IPv4Network) -> Lpm4Key:
    return Lpm4Key(net.prefixlen, pack_addr(net.network_address))


def network_of(key: Lpm4Key) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network((unpack_addr(key.addr), key.prefixlen))

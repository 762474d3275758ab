"""``dp_srcrange``: loadBalancerSourceRanges, an LPM trie of (frontend id, prefix).

C layout (``bpf/dp_maps.h``)::

    struct dp_srcrange_key   { __u32 prefixlen; __u32 fe_id; __be32 addr; };
    struct dp_srcrange_value { __u8 allowed; __u8 pad[3]; };

``prefixlen`` covers the 32 bits of ``fe_id`` plus the source prefix, so one
trie serves every frontend and a lookup is one exact-id, longest-prefix match.
"""

from __future__ import annotations

import ctypes
import ipaddress

from dataplane.backends.ebpf.maps._map import MapSpec, pack_addr, unpack_addr

ID_BITS = 32


class SourceRangeKey(ctypes.Structure):
    _fields_ = [
        ("prefixlen", ctypes.c_uint32),
        ("fe_id", ctypes.c_uint32),
        ("addr", ctypes.c_uint32),
    ]


class SourceRangeValue(ctypes.Structure):
    _fields_ = [("allowed", ctypes.c_uint8), ("pad", ctypes.c_uint8 * 3)]


SPEC = MapSpec(
    "dp_srcrange",
    SourceRangeKey,
    SourceRangeValue,
    "dp_srcrange_key",
    "dp_srcrange_value",
    size_option="ebpf_source_ranges_max",
)


def make_key(fe_id: int, net: ipaddress.IPv4Network) -> SourceRangeKey:
    # fe_id is matched as 32 raw bits, so its byte order only has to be consistent.
    return SourceRangeKey(ID_BITS + net.prefixlen, fe_id, pack_addr(net.network_address))


def network_of(key: SourceRangeKey) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network((unpack_addr(key.addr), key.prefixlen - ID_BITS))

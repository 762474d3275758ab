"""``dp_aff``: ClientIP session affinity, (client, frontend) -> last backend (LRU).

C layout (``bpf/dp_maps.h``)::

    struct dp_aff_key   { __be32 client; __be32 addr; __u16 port; __u8 proto; __u8 pad; };
    struct dp_aff_value { __u64 last_used_ns; __be32 addr; __u32 index;
                          __u16 port; __u16 pad[3]; };

The datapath refreshes ``last_used_ns`` on every new connection and re-picks
when the timeout passed or the backend is no longer at ``index``.
"""

from __future__ import annotations

import ctypes

from dataplane.backends.ebpf.maps._map import MapSpec


class AffinityKey(ctypes.Structure):
    _fields_ = [
        ("client", ctypes.c_uint32),
        ("addr", ctypes.c_uint32),
        ("port", ctypes.c_uint16),
        ("proto", ctypes.c_uint8),
        ("pad", ctypes.c_uint8),
    ]


class AffinityValue(ctypes.Structure):
    _fields_ = [
        ("last_used_ns", ctypes.c_uint64),
        ("addr", ctypes.c_uint32),
        ("index", ctypes.c_uint32),
        ("port", ctypes.c_uint16),
        ("pad", ctypes.c_uint16 * 3),
    ]


SPEC = MapSpec(
    "dp_aff",
    AffinityKey,
    AffinityValue,
    "dp_aff_key",
    "dp_aff_value",
    batch=True,
    size_option="ebpf_affinity_max",
)

"""``dp_be``: the backends of each route, ``(route_id, index) -> addr:port``.

C layout (``bpf/dp_maps.h``)::

    struct dp_be_key   { __u32 route_id; __u32 index; };
    struct dp_be_value { __be32 addr; __be32 node_addr; __u16 port; __u16 flags; };

A changed backend list gets a fresh ``route_id``: its entries are written
first and the frontend entry is flipped to it in one update, so a new flow
never sees half a list.
"""

from __future__ import annotations

import ctypes

from dataplane.backends.ebpf.maps._map import MapSpec

F_REMOTE = 1 << 0


class BackendKey(ctypes.Structure):
    _fields_ = [("route_id", ctypes.c_uint32), ("index", ctypes.c_uint32)]


class BackendValue(ctypes.Structure):
    _fields_ = [
        ("addr", ctypes.c_uint32),
        ("node_addr", ctypes.c_uint32),
        ("port", ctypes.c_uint16),
        ("flags", ctypes.c_uint16),
    ]


SPEC = MapSpec(
    "dp_be",
    BackendKey,
    BackendValue,
    "dp_be_key",
    "dp_be_value",
    batch=True,
    size_option="ebpf_backends_max",
)

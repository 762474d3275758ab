"""``dp_fe``: service frontends, one entry per (vip, port, proto, source class).

C layout (``bpf/dp_maps.h``)::

    struct dp_fe_key   { __be32 addr; __u16 port; __u8 proto; __u8 src_class; };
    struct dp_fe_value { __u32 route_id; __u32 fe_id; __u32 count;
                         __u32 affinity_timeout; __u32 flags; };

Every frontend has an entry for class ANY; POD and HOST entries exist only
where calc gave that class a different route, and then the ANY entry says
so (``F_BY_CLASS``): the datapath's common case is one lookup, without
classifying the source.
"""

from __future__ import annotations

import ctypes

from dataplane.backends.ebpf.maps._map import MapSpec

CLASS_ANY = 0
CLASS_POD = 1
CLASS_HOST = 2
CLASS_NAMES = {CLASS_ANY: "any", CLASS_POD: "pod", CLASS_HOST: "host"}

F_AFFINITY = 1 << 0
F_SRC_RANGES = 1 << 1
F_DROP_IF_EMPTY = 1 << 2
F_HAIRPIN = 1 << 3
F_BY_CLASS = 1 << 4  # on the ANY entry: POD or HOST entries exist too (else none is looked up)
FLAG_NAMES = {
    F_AFFINITY: "affinity",
    F_SRC_RANGES: "source-ranges",
    F_DROP_IF_EMPTY: "drop-if-empty",
    F_HAIRPIN: "hairpin",
    F_BY_CLASS: "by-class",
}


class FrontendKey(ctypes.Structure):
    _fields_ = [
        ("addr", ctypes.c_uint32),
        ("port", ctypes.c_uint16),
        ("proto", ctypes.c_uint8),
        ("src_class", ctypes.c_uint8),
    ]


class FrontendValue(ctypes.Structure):
    _fields_ = [
        ("route_id", ctypes.c_uint32),
        ("fe_id", ctypes.c_uint32),
        ("count", ctypes.c_uint32),
        ("affinity_timeout", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
    ]


SPEC = MapSpec(
    "dp_fe",
    FrontendKey,
    FrontendValue,
    "dp_fe_key",
    "dp_fe_value",
    batch=True,
    size_option="ebpf_frontends_max",
)


def flag_names(flags: int) -> list[str]:
    return [name for bit, name in FLAG_NAMES.items() if flags & bit]

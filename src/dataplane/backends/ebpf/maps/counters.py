"""``dp_counters``: per-CPU packet counters, indexed by reason.

C layout (``bpf/dp_maps.h``)::

    struct dp_counter { __u64 packets; };   /* PERCPU_ARRAY, key __u32 DP_CNT_* */
"""

from __future__ import annotations

import ctypes

from dataplane.backends.ebpf.maps._map import U32, MapSpec

NAMES = (
    "nat_new",
    "drop_no_backend",
    "reject",
    "drop_source_range",
    "nat_miss",
    "conntrack_full",
    "tunnel_fail",
    "no_route",
    "fragment",
    "policy_eval",
    "policy_deny",
    "too_big",
    "mss_clamp",
)


class Counter(ctypes.Structure):
    _fields_ = [("packets", ctypes.c_uint64)]


SPEC = MapSpec("dp_counters", U32, Counter, "__u32", "dp_counter", percpu=True)

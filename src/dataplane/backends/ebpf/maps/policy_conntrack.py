"""``dp_pct``: policy verdicts of flows (LRU hash), so only first packets walk rules.

C layout (``bpf/dp_maps.h``)::

    struct dp_ct_key       { __be32 src; __be32 dst; __u16 sport; __u16 dport;
                             __u8 proto; __u8 pad[3]; };   /* canonical: src < dst */
    struct dp_pct_value    { __u64 last_seen_ns; __u32 in_ifindex; __u32 in_gen;
                             __u32 out_ifindex; __u32 out_gen; __u8 opener;
                             __u8 tcp_seen; __u8 deny; __u8 early; __u8 pad[4]; };

Keyed by the flow as policy sees it (after DNAT), with the lower
address:port first so both directions share the entry. ``in``/``out`` record
the checks where the flow entered and left the node, each with the
``dp_ifpol`` generation it was made under; a different generation means
"evaluate again". ``early`` says the "in" check of a host interface was an
explicit doNotTrack/preDNAT allow, which skips its normal policy. The agent
only reads it (``dump()``); expiry is the datapath's (by the conntrack
timeouts) and the LRU's.
"""

from __future__ import annotations

import ctypes

from dataplane.backends.ebpf.maps._map import MapSpec
from dataplane.backends.ebpf.maps.conntrack import CtKey

IN_DENY = 1 << 0
OUT_DENY = 1 << 1
EARLY_UNTRACKED = 1 << 0
EARLY_PRE_DNAT = 1 << 1


class PolicyCtValue(ctypes.Structure):
    _fields_ = [
        ("last_seen_ns", ctypes.c_uint64),
        ("in_ifindex", ctypes.c_uint32),
        ("in_gen", ctypes.c_uint32),
        ("out_ifindex", ctypes.c_uint32),
        ("out_gen", ctypes.c_uint32),
        ("opener", ctypes.c_uint8),
        ("tcp_seen", ctypes.c_uint8),
        ("deny", ctypes.c_uint8),
        ("early", ctypes.c_uint8),
        ("pad", ctypes.c_uint8 * 4),
    ]


SPEC = MapSpec(
    "dp_pct",
    CtKey,
    PolicyCtValue,
    "dp_ct_key",
    "dp_pct_value",
    size_option="ebpf_policy_conntrack_max",
)

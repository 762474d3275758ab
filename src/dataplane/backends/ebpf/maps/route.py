"""``dp_route``: other nodes' pod CIDRs → the host interface the kernel routes them out of.

C layout (``bpf/dp_maps.h``)::

    struct dp_lpm4_key     { __u32 prefixlen; __be32 addr; };
    struct dp_route_value  { __u32 ifindex; __be32 nexthop; __u32 flags; };

Written by the agent from the namespace's own routing table (see
``nodestate.pod_routes``), only for routes that leave through a host
interface the programs are attached to: a packet from a pod to a pod there
is redirected out of it, skipping the host's routing and netfilter. Anything
without an entry is left to the stack. ``nexthop`` is the route's gateway
(0 for an on-link route): given it, ``bpf_redirect_neigh()`` only resolves
its MAC address instead of looking the route up again for every packet.

Each other node's own address has a /32 entry too (``F_NODE``; its next hop
is the node itself when it is on-link): the next hop of the tunnel's outer
packets. Pod traffic ignores those entries.

The agent rewrites every entry at a full sync, so a pinned copy with another
layout is replaced at start (``rebuilt``), not an error.
"""

from __future__ import annotations

import ctypes

from dataplane.backends.ebpf.maps._map import MapSpec
from dataplane.backends.ebpf.maps.source_class import Lpm4Key

F_NODE = 1 << 0  # another node's own address: for the tunnel's outer packets only


class RouteValue(ctypes.Structure):
    _fields_ = [
        ("ifindex", ctypes.c_uint32),
        ("nexthop", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
    ]


SPEC = MapSpec("dp_route", Lpm4Key, RouteValue, "dp_lpm4_key", "dp_route_value", rebuilt=True)

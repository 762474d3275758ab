"""``dp_globals`` and ``dp_wep``: node facts the programs read at run time.

C layout (``bpf/dp_maps.h``)::

    struct dp_globals   { __u32 tunnel_ifindex; __u32 flags; __u32 mtu;
                          __u32 vxlan_port; };  /* key 0 */
    struct dp_wep_key   { __be32 addr; };
    struct dp_wep_value { __u32 ifindex; __u32 flags; };

``dp_globals`` changes with the IR settings without reloading the programs
(``mtu``: the smallest MTU of the host interfaces, which the VXLAN tunnel's
outer packets cross; the programs clamp TCP MSS and answer "fragmentation
needed" so that encapsulated packets fit it; ``G_BPF_TUN``: the programs
encapsulate and decapsulate VXLAN themselves, to ``vxlan_port``;
``G_PASS_ON``: packets the programs pass to the stack go on through the
hook's later TCX programs and clsact filters, cleared while an interface
moves between the two, see ``dp_exit`` in ``bpf/dataplane.c``);
``dp_wep`` maps each local workload address to its host-side interface for
packets the programs must redirect themselves (decapsulated, host-originated).
"""

from __future__ import annotations

import ctypes

from dataplane.backends.ebpf.maps._map import U32, MapSpec

G_DSR = 1 << 0
G_BPF_TUN = 1 << 1  # ebpf_tunnel == "bpf"
G_PASS_ON = 1 << 2  # a "pass" verdict lets the hook's later programs and filters run
VXLAN_OVERHEAD = 50  # outer IPv4 + UDP + VXLAN + inner Ethernet


class Globals(ctypes.Structure):
    _fields_ = [
        ("tunnel_ifindex", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("mtu", ctypes.c_uint32),
        ("vxlan_port", ctypes.c_uint32),
    ]


class WorkloadKey(ctypes.Structure):
    _fields_ = [("addr", ctypes.c_uint32)]


class WorkloadValue(ctypes.Structure):
    _fields_ = [("ifindex", ctypes.c_uint32), ("flags", ctypes.c_uint32)]


GLOBALS = MapSpec("dp_globals", U32, Globals, "__u32", "dp_globals")
WORKLOADS = MapSpec("dp_wep", WorkloadKey, WorkloadValue, "dp_wep_key", "dp_wep_value", batch=True)

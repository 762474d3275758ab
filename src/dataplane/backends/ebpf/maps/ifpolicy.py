"""``dp_ifpol``: per interface, where its policy programs are and their generation.

C layout (``bpf/dp_maps.h``)::

    struct dp_ifpol { __u32 gen; __u32 kind; __u32 base[8]; __u32 len[8]; };

One entry per policed interface (workload veths, host interfaces with a host
endpoint), indexed by the ``CH_*`` chain kinds. Writing the entry is the
atomic switch of all of an interface's programs; ``gen`` changes with every
write, which is what makes conntrack re-evaluate flows approved earlier.
"""

from __future__ import annotations

import ctypes

from dataplane.backends.ebpf.maps._map import U32, MapSpec

CH_FROM = 0  # workload: its egress; host: ingress to host processes
CH_TO = 1  # workload: its ingress; host: egress from host processes
CH_FROM_FWD = 2  # host: forwarded, arriving (applyOnForward)
CH_TO_FWD = 3  # host: forwarded, leaving (applyOnForward)
CH_PRE_DNAT = 4  # host: preDNAT ingress
CH_UNTRACKED_FROM = 5  # host: doNotTrack ingress
CH_UNTRACKED_TO = 6  # host: doNotTrack egress
CH_TO_HOST = 7  # workload: to its own host (endpoint-to-host action)
CH_MAX = 8
CHAIN_NAMES = (
    "from",
    "to",
    "from-forward",
    "to-forward",
    "pre-dnat",
    "untracked-from",
    "untracked-to",
    "to-host",
)


class IfPolicy(ctypes.Structure):
    _fields_ = [
        ("gen", ctypes.c_uint32),
        ("kind", ctypes.c_uint32),
        ("base", ctypes.c_uint32 * CH_MAX),
        ("len", ctypes.c_uint32 * CH_MAX),
    ]


SPEC = MapSpec("dp_ifpol", U32, IfPolicy, "__u32", "dp_ifpol")

"""``dp_ifstate``: where this instance attached its programs, ifindex -> record.

C layout (``bpf/dp_maps.h``)::

    struct dp_ifstate { char name[16]; __u32 kind; __u32 flags;
                        __u32 priority; __u32 pad; };

Only the agent reads it. Being pinned, it tells a restarted agent (or a
``cleanup()`` from a fresh process) what to replace or detach, and the
interface name guards against a reused ifindex.
"""

from __future__ import annotations

import ctypes

from dataplane.backends.ebpf.maps._map import U32, MapSpec

KIND_WORKLOAD = 1
KIND_HOST = 2
KIND_TUNNEL = 3
KIND_NAMES = {KIND_WORKLOAD: "workload", KIND_HOST: "host", KIND_TUNNEL: "tunnel"}

F_OWN_QDISC = 1 << 0  # this instance created the interface's clsact qdisc
F_TCX = 1 << 1  # attached through pinned TCX links (see attach.link_pin)
F_TC = 1 << 2  # attached through clsact filters (records from before TCX have neither flag)


class IfState(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char * 16),
        ("kind", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("priority", ctypes.c_uint32),
        ("pad", ctypes.c_uint32),
    ]


SPEC = MapSpec("dp_ifstate", U32, IfState, "__u32", "dp_ifstate")

"""``.rodata``: load-time configuration of the programs (conntrack timeouts).

C layout (``bpf/dp_maps.h``, the object's only read-only global ``dp_cfg``)::

    struct dp_config { __u64 ct_syn_sent_ns; __u64 ct_established_ns;
                       __u64 ct_fins_seen_ns; __u64 ct_reset_seen_ns;
                       __u64 ct_udp_ns; __u64 ct_generic_ns; };

Written before load, so the verifier sees constants; changing it means
loading the programs again (which a restart does anyway).
"""

from __future__ import annotations

import ctypes

from dataplane.backends.ebpf.maps.conntrack import Timeouts

SECTION = ".rodata"
C_NAME = "dp_config"
_S = 1_000_000_000


class Config(ctypes.Structure):
    _fields_ = [
        ("ct_syn_sent_ns", ctypes.c_uint64),
        ("ct_established_ns", ctypes.c_uint64),
        ("ct_fins_seen_ns", ctypes.c_uint64),
        ("ct_reset_seen_ns", ctypes.c_uint64),
        ("ct_udp_ns", ctypes.c_uint64),
        ("ct_generic_ns", ctypes.c_uint64),
    ]


def from_timeouts(t: Timeouts) -> Config:
    return Config(
        t.tcp_syn_sent * _S,
        t.tcp_established * _S,
        t.tcp_fins_seen * _S,
        t.tcp_reset_seen * _S,
        t.udp * _S,
        t.generic * _S,
    )

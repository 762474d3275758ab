"""``dp_rule_hits``: per-CPU hit counters, one per ``dp_rules`` index.

C layout (``bpf/dp_maps.h``)::

    struct dp_rule_hit { __u64 packets; };   /* PERCPU_ARRAY, key: dp_rules index */

Verdicts are kept in conntrack, so a hit is a flow (its first packet, or a
re-evaluation after a policy change), not every packet. The agent zeroes a
run when it writes a program there, so counts belong to the program that
occupies the run; they restart when a changed program moves.
"""

from __future__ import annotations

import ctypes

from dataplane.backends.ebpf.maps._map import U32, MapSpec


class RuleHit(ctypes.Structure):
    _fields_ = [("packets", ctypes.c_uint64)]


SPEC = MapSpec(
    "dp_rule_hits",
    U32,
    RuleHit,
    "__u32",
    "dp_rule_hit",
    percpu=True,
    size_option="ebpf_policy_rules_max",
)

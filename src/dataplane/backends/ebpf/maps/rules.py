"""``dp_rules``: the instructions of every policy program (array).

C layout (``bpf/dp_maps.h``)::

    struct dp_rule {
        __u8 action; __u8 proto; __u8 not_proto; __u8 flags;
        __u8 icmp_type; __u8 icmp_code; __u8 not_icmp_type; __u8 not_icmp_code;
        __u8 port_groups; __u8 named_groups; __u16 jump;
        __u8 set_role[8]; __u8 port_role[8]; __u32 set_id[8];
        __u16 port_first[8]; __u16 port_last[8];
    };

A program is a run ``[base, base + len)`` of this array, named by
``dp_ifpol``; programs never move in place: a changed one is written to a
free run and switched to, so the datapath never reads a half-written
program. One array (not a hash keyed by program) because an array lookup is
the cheapest the verifier offers, and first packets walk up to
:data:`MAX_RULES` of them.
"""

from __future__ import annotations

import ctypes

from dataplane.backends.ebpf.maps._map import U32, MapSpec

MAX_RULES = 1024  # DP_MAX_RULES: instructions per program
RULE_SETS = 8  # DP_RULE_SETS: IP-set references per rule
RULE_PORTS = 8  # DP_RULE_PORTS: port ranges per rule

ACT_DENY = 1
ACT_ALLOW = 2
ACT_PASS = 3
ACT_LOG = 4
ACTION_NAMES = {ACT_DENY: "deny", ACT_ALLOW: "allow", ACT_PASS: "pass", ACT_LOG: "log"}

R_ICMP_TYPE = 1 << 0
R_ICMP_CODE = 1 << 1
R_NOT_ICMP_TYPE = 1 << 2
R_NOT_ICMP_CODE = 1 << 3
R_NEVER = 1 << 4

# Port groups: bits of port_groups/named_groups; a port_role is the bit index + 1.
PG_SRC = 1 << 0
PG_NOT_SRC = 1 << 1
PG_DST = 1 << 2
PG_NOT_DST = 1 << 3

SET_SRC = 1
SET_NOT_SRC = 2
SET_DST = 3
SET_NOT_DST = 4
SET_SRC_PORT = 5  # named-port sets: SET_SRC_PORT + log2(port group)
SET_NOT_SRC_PORT = 6
SET_DST_PORT = 7
SET_NOT_DST_PORT = 8


class Rule(ctypes.Structure):
    _fields_ = [
        ("action", ctypes.c_uint8),
        ("proto", ctypes.c_uint8),
        ("not_proto", ctypes.c_uint8),
        ("flags", ctypes.c_uint8),
        ("icmp_type", ctypes.c_uint8),
        ("icmp_code", ctypes.c_uint8),
        ("not_icmp_type", ctypes.c_uint8),
        ("not_icmp_code", ctypes.c_uint8),
        ("port_groups", ctypes.c_uint8),
        ("named_groups", ctypes.c_uint8),
        ("jump", ctypes.c_uint16),
        ("set_role", ctypes.c_uint8 * RULE_SETS),
        ("port_role", ctypes.c_uint8 * RULE_PORTS),
        ("set_id", ctypes.c_uint32 * RULE_SETS),
        ("port_first", ctypes.c_uint16 * RULE_PORTS),
        ("port_last", ctypes.c_uint16 * RULE_PORTS),
    ]


SPEC = MapSpec(
    "dp_rules", U32, Rule, "__u32", "dp_rule", batch=True, size_option="ebpf_policy_rules_max"
)

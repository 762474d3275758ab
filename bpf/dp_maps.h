/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every map of the dataplane TC programs: key/value structs and definitions.
 *
 * This header is the single source of truth on the C side; the Python side
 * mirrors each struct as a ctypes Structure (src/dataplane/backends/ebpf/maps/)
 * and checks it against the object's BTF when it loads, so the two can never
 * drift silently.
 *
 * Conventions: IPv4 addresses are in network byte order (as on the wire),
 * ports in host byte order (readable in `bpftool map dump`), all structs
 * padded explicitly so no implicit padding differs between compilers.
 * Every map is pinned by name under /sys/fs/bpf/dataplane/<instance>/ so
 * that NAT and conntrack state outlive the agent process.
 */
#ifndef DP_MAPS_H
#define DP_MAPS_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* ------------------------------------------------------------ source classes */

/* Who sent a packet, as service routing distinguishes it (IR SourceClass).
 * DP_CLASS_ANY is also the class of every address the classifier does not know. */
#define DP_CLASS_ANY 0
#define DP_CLASS_POD 1
#define DP_CLASS_HOST 2

/* dp_class: LPM trie, IPv4 prefix -> source class.  Cluster CIDRs map to POD,
 * the node's own addresses (/32) to HOST; the longest prefix wins, so a node
 * address inside a cluster CIDR counts as HOST. */
struct dp_lpm4_key {
	__u32 prefixlen;
	__be32 addr;
};

struct dp_class_value {
	__u8 class_id;
	__u8 pad[3];
};

/* ------------------------------------------------------------ services */

/* dp_fe: frontend (vip, port, proto, source class) -> route.  Every frontend
 * has a DP_CLASS_ANY entry; an entry for POD or HOST exists only where that
 * class takes a different route (NodePorts: one frontend per node address). */
struct dp_fe_key {
	__be32 addr;
	__u16 port;
	__u8 proto;
	__u8 src_class;
};

#define DP_FE_F_AFFINITY (1U << 0)       /* ClientIP affinity (dp_aff) */
#define DP_FE_F_SRC_RANGES (1U << 1)     /* source must match dp_srcrange */
#define DP_FE_F_DROP_IF_EMPTY (1U << 2)  /* count == 0: drop instead of reject */
#define DP_FE_F_HAIRPIN (1U << 3)        /* client == backend: SNAT to the vip */
#define DP_FE_F_BY_CLASS (1U << 4)       /* ANY entry: POD or HOST entries exist too */

struct dp_fe_value {
	__u32 route_id;        /* backends are dp_be[route_id, 0..count) */
	__u32 fe_id;           /* the frontend, for dp_srcrange */
	__u32 count;           /* number of backends; 0: reject or drop */
	__u32 affinity_timeout; /* seconds, when DP_FE_F_AFFINITY */
	__u32 flags;           /* DP_FE_F_* */
};

/* dp_be: (route, index) -> backend. */
struct dp_be_key {
	__u32 route_id;
	__u32 index;
};

#define DP_BE_F_REMOTE (1U << 0) /* on another node: tunnel external traffic to node_addr */

struct dp_be_value {
	__be32 addr;
	__be32 node_addr; /* the backend's node, when DP_BE_F_REMOTE */
	__u16 port;
	__u16 flags;      /* DP_BE_F_* */
};

/* dp_srcrange: LPM trie (frontend id, source prefix) -> allowed.
 * prefixlen counts the 32 bits of fe_id plus the source prefix length. */
struct dp_srcrange_key {
	__u32 prefixlen;
	__u32 fe_id;
	__be32 addr;
};

struct dp_srcrange_value {
	__u8 allowed;
	__u8 pad[3];
};

/* dp_aff: ClientIP affinity, (client, frontend) -> backend last chosen. */
struct dp_aff_key {
	__be32 client;
	__be32 addr;
	__u16 port;
	__u8 proto;
	__u8 pad;
};

struct dp_aff_value {
	__u64 last_used_ns;  /* bpf_ktime_get_coarse_ns() (CLOCK_MONOTONIC, jiffy resolution) */
	__be32 addr;
	__u32 index;         /* checked against dp_be so a changed list re-picks */
	__u16 port;
	__u16 pad[3];
};

/* ------------------------------------------------------------ conntrack */

/* dp_ct: LRU hash, exact tuple as seen on the wire -> entry.  A NATed
 * connection has two entries: FWD keyed by the client's packet before DNAT
 * (client -> frontend) and REV keyed by the backend's reply before reverse
 * NAT (backend -> client).  Each entry tracks its own direction. */
struct dp_ct_key {
	__be32 src;
	__be32 dst;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};

#define DP_CT_FWD 1 /* client -> frontend: rewrite dst to nat_addr:nat_port */
#define DP_CT_REV 2 /* backend -> client: rewrite src to nat_addr:nat_port (if set) */

#define DP_CT_F_TUN_OUT (1U << 0)  /* FWD: encapsulate to tun_addr (backend on another node) */
#define DP_CT_F_TUN_IN (1U << 1)   /* FWD: arrived through the tunnel from tun_addr */
#define DP_CT_F_TUN_BACK (1U << 2) /* REV: encapsulate the reply back to tun_addr */
#define DP_CT_F_DSR (1U << 3)      /* REV: answer the client directly as the frontend */
#define DP_CT_F_HAIRPIN (1U << 4)  /* also rewrite the other address to/from alt_addr */

/* TCP flags remembered in tcp_seen (the low bits of the TCP flags byte). */
#define DP_TCP_FIN 0x01
#define DP_TCP_SYN 0x02
#define DP_TCP_RST 0x04
#define DP_TCP_ACK 0x10

struct dp_ct_value {
	__u64 created_ns;
	__u64 last_seen_ns;
	__be32 nat_addr;  /* FWD: backend; REV: frontend (0: no rewrite) */
	__be32 tun_addr;  /* the node at the other end of the tunnel */
	__be32 alt_addr;  /* hairpin: FWD new source (vip); REV new destination (client) */
	__u32 ifindex;    /* REV: where the client's packets came in (replies leave there), 0: stack */
	__u16 nat_port;
	__u16 alt_port;
	__u8 type;        /* DP_CT_FWD / DP_CT_REV */
	__u8 flags;       /* DP_CT_F_* */
	__u8 tcp_seen;    /* DP_TCP_* seen in this entry's direction */
	__u8 pad;
};

/* ------------------------------------------------------------ node state */

/* dp_globals: one entry of node-wide facts the programs need at run time
 * (set by the agent after start, unlike the load-time dp_cfg). */
#define DP_G_DSR (1U << 0)            /* external_service_mode == dsr */
#define DP_G_BPF_TUN (1U << 1)        /* encapsulate/decapsulate VXLAN in the programs */
#define DP_G_PASS_ON (1U << 2)        /* "pass" lets the hook's later programs run (dp_exit) */

/* VXLAN encapsulation: outer IPv4 + UDP + VXLAN + inner Ethernet headers. */
#define DP_VXLAN_OVERHEAD 50

struct dp_globals {
	__u32 tunnel_ifindex; /* the instance's VXLAN device, 0 if none */
	__u32 flags;          /* DP_G_* */
	__u32 mtu;            /* smallest MTU of the host interfaces (the tunnel's underlay), 0: unknown */
	__u32 vxlan_port;     /* the tunnel's UDP port (host order), 0: unknown */
};

/* dp_wep: this node's workload addresses -> their host-side interface, so
 * packets the stack cannot route (decapsulated, or past host routing) are
 * redirected straight to the pod (and policy knows a local workload). */
struct dp_wep_key {
	__be32 addr;
};

struct dp_wep_value {
	__u32 ifindex;
	__u32 flags;
};

/* dp_route: other nodes' pod CIDRs -> the host interface the kernel routes
 * them out of and the gateway its route names (LPM trie, written by the agent
 * from the routing table), so a packet from a pod to a pod elsewhere leaves
 * without a pass through the host's routing and netfilter, and, given the
 * gateway, without a route lookup in bpf_redirect_neigh().  No entry: the
 * stack routes it.  Also each other node's own address (/32, DP_ROUTE_F_NODE),
 * the next hop of the tunnel's outer packets; pod traffic ignores those. */
#define DP_ROUTE_F_NODE (1U << 0)

struct dp_route_value {
	__u32 ifindex;
	__be32 nexthop; /* the gateway (a node: the node itself if on-link); 0: the kernel looks it up */
	__u32 flags;    /* DP_ROUTE_F_* */
};

/* dp_ifstate: hash ifindex -> what the agent attached there.  Only the agent
 * reads it (to detach after a restart); policy lives in dp_ifpol. */
#define DP_IF_WORKLOAD 1
#define DP_IF_HOST 2
#define DP_IF_TUNNEL 3

#define DP_IF_F_OWN_QDISC (1U << 0) /* the agent created the clsact qdisc */

struct dp_ifstate {
	char name[16];
	__u32 kind;      /* DP_IF_* */
	__u32 flags;     /* DP_IF_F_* */
	__u32 priority;  /* tc filter priority and handle used for both hooks */
	__u32 pad;
};

/* dp_counters: per-CPU array of packet counters, indexed by DP_CNT_*. */
#define DP_CNT_NAT_NEW 0        /* new service flows DNATed */
#define DP_CNT_DROP_NO_BACKEND 1 /* no endpoints, if_empty == drop */
#define DP_CNT_REJECT 2         /* no endpoints, rejected (RST / ICMP) */
#define DP_CNT_DROP_SRC_RANGE 3 /* source outside loadBalancerSourceRanges */
#define DP_CNT_NAT_MISS 4       /* frontend found but backend lookup failed */
#define DP_CNT_CT_FULL 5        /* conntrack insert failed */
#define DP_CNT_TUNNEL_FAIL 6    /* could not encapsulate to a remote node */
#define DP_CNT_NO_ROUTE 7       /* translated but nowhere to redirect: dropped */
#define DP_CNT_FRAGMENT 8       /* IP fragment: not translated */
#define DP_CNT_POLICY_EVAL 9    /* policy evaluated (first packet of a flow, or a changed policy) */
#define DP_CNT_POLICY_DENY 10   /* dropped by policy */
#define DP_CNT_TOO_BIG 11       /* too big for the tunnel: ICMP fragmentation needed sent back */
#define DP_CNT_MSS_CLAMP 12     /* TCP SYN or SYN/ACK whose MSS was lowered to fit the tunnel */
#define DP_CNT_MAX 13

struct dp_counter {
	__u64 packets;
};

/* ------------------------------------------------------------ policy */

/* A policy program is a run of dp_rules entries [base, base + len): the
 * tiers, policies and profiles of calc's Chain flattened into instructions.
 * Pass, Allow and chain ends jump forward (a tier's end, the next host
 * endpoint's chain, or len), so one forward pass of at most DP_MAX_RULES
 * steps evaluates any program. */
#define DP_MAX_RULES 1024   /* instructions per program */
#define DP_RULE_SETS 8      /* IP-set references per rule (address and named-port sets) */
#define DP_RULE_PORTS 8     /* port ranges per rule (source, destination, negated or not) */

#define DP_ACT_DENY 1  /* verdict deny, stop */
#define DP_ACT_ALLOW 2 /* this chain allows: remember it, continue at jump (next chain or len) */
#define DP_ACT_PASS 3  /* no verdict: continue at jump (next tier, profiles, next chain) */
#define DP_ACT_LOG 4   /* count and continue with the next instruction */

#define DP_R_ICMP_TYPE (1U << 0)
#define DP_R_ICMP_CODE (1U << 1)
#define DP_R_NOT_ICMP_TYPE (1U << 2)
#define DP_R_NOT_ICMP_CODE (1U << 3)
#define DP_R_NEVER (1U << 4)   /* can never match here (ipVersion 6) */

/* Port groups (bits of port_groups / named_groups; port_role = bit index + 1). */
#define DP_PG_SRC (1U << 0)
#define DP_PG_NOT_SRC (1U << 1)
#define DP_PG_DST (1U << 2)
#define DP_PG_NOT_DST (1U << 3)

/* set_role: how set_id[i] is used (0 ends the list). */
#define DP_SET_SRC 1          /* the source must be in the set */
#define DP_SET_NOT_SRC 2      /* ... must not be */
#define DP_SET_DST 3
#define DP_SET_NOT_DST 4
#define DP_SET_SRC_PORT 5     /* named-port set: (source, proto, sport) matches DP_PG_SRC */
#define DP_SET_NOT_SRC_PORT 6
#define DP_SET_DST_PORT 7
#define DP_SET_NOT_DST_PORT 8

/* dp_rules: array, one instruction per index. */
struct dp_rule {
	__u8 action;        /* DP_ACT_* */
	__u8 proto;         /* 0: any */
	__u8 not_proto;     /* 0: none */
	__u8 flags;         /* DP_R_* */
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 not_icmp_type;
	__u8 not_icmp_code;
	__u8 port_groups;   /* DP_PG_* the rule constrains */
	__u8 named_groups;  /* DP_PG_* that also have named-port sets */
	__u16 jump;         /* ALLOW/PASS: index of the next instruction */
	__u8 set_role[DP_RULE_SETS];
	__u8 port_role[DP_RULE_PORTS]; /* 1 + log2(DP_PG_*), 0 ends the list */
	__u32 set_id[DP_RULE_SETS];
	__u16 port_first[DP_RULE_PORTS];
	__u16 port_last[DP_RULE_PORTS];
};

/* dp_rule_hits: per-CPU array parallel to dp_rules, packets each rule decided
 * (or logged): first packets only, since verdicts are kept in dp_pct. */
struct dp_rule_hit {
	__u64 packets;
};

/* dp_ipset: LPM trie (set id, port, proto, address prefix) -> member.  Address
 * sets (selectors, CIDRs) have port = proto = 0; named-port sets hold
 * (endpoint address, protocol, port).  prefixlen = 64 + address prefix. */
struct dp_ipset_key {
	__u32 prefixlen;
	__u32 set_id;
	__u16 port;
	__u8 proto;
	__u8 pad;
	__be32 addr;
};

struct dp_ipset_value {
	__u8 member;
	__u8 pad[3];
};

/* dp_ifpol: ifindex -> the policy programs of the endpoint on that interface.
 * One update switches every chain of the interface at once (the agent writes
 * new programs into unused dp_rules ranges first); gen changes with every
 * update, so conntrack entries approved under an older program re-evaluate.
 * No entry: no policy on that interface. */
#define DP_CH_FROM 0            /* workload: its egress; host: ingress to host processes */
#define DP_CH_TO 1              /* workload: its ingress; host: egress from host processes */
#define DP_CH_FROM_FWD 2        /* host: forwarded traffic arriving (applyOnForward) */
#define DP_CH_TO_FWD 3          /* host: forwarded traffic leaving (applyOnForward) */
#define DP_CH_PRE_DNAT 4        /* host: preDNAT ingress, new flows, before service NAT */
#define DP_CH_UNTRACKED_FROM 5  /* host: doNotTrack ingress, every packet */
#define DP_CH_UNTRACKED_TO 6    /* host: doNotTrack egress, every packet */
#define DP_CH_TO_HOST 7         /* workload: to its own host (endpoint-to-host action) */
#define DP_CH_MAX 8             /* a power of two: dp_run masks indices with it */

struct dp_ifpol {
	__u32 gen;
	__u32 kind;              /* DP_IF_WORKLOAD / DP_IF_HOST */
	__u32 base[DP_CH_MAX];   /* program of each chain in dp_rules */
	__u32 len[DP_CH_MAX];    /* 0: no program (no verdict) */
};

/* dp_pct: LRU hash, policy conntrack.  Keyed by the flow as policy sees it
 * (after DNAT, before reverse NAT), canonically ordered (src is the lower
 * address:port), so both directions find one entry.  The first hook with
 * policy creates it; "in" is the check where the flow's first packet entered
 * the node (TC ingress), "out" where it left (TC egress).  A reply passes the
 * same two checks in the other direction. */
#define DP_PCT_IN_DENY (1U << 0)
#define DP_PCT_OUT_DENY (1U << 1)
/* early: the "in" check of a host interface was skipped because its
 * doNotTrack or preDNAT policy explicitly allowed the flow (Calico: such an
 * allow skips normal and applyOnForward ingress policy).  Kept for
 * re-evaluation: preDNAT judges first packets only; doNotTrack every packet
 * arriving, so that bit follows the latest one. */
#define DP_PCT_EARLY_UNTRACKED (1U << 0)
#define DP_PCT_EARLY_PRE_DNAT (1U << 1)

struct dp_pct_value {
	__u64 last_seen_ns;
	__u32 in_ifindex;   /* 0: not checked yet */
	__u32 in_gen;       /* dp_ifpol gen of in_ifindex at that check */
	__u32 out_ifindex;
	__u32 out_gen;
	__u8 opener;        /* 0: the key's src sent the first packet, 1: its dst */
	__u8 tcp_seen;      /* DP_TCP_* seen in either direction */
	__u8 deny;          /* DP_PCT_*_DENY: the check at that gen said no */
	__u8 early;         /* DP_PCT_EARLY_*: why the "in" check allowed without running */
	__u8 pad[4];
};

/* dp_failsafe: LPM trie (direction, proto, port, peer prefix): ports host
 * endpoint policy can never block.  IN: peer = source, port = destination
 * port of traffic to the host; OUT: peer = destination of traffic from the
 * host.  Also holds the VXLAN port towards other nodes (the tunnel).
 * prefixlen = 32 + peer prefix length. */
#define DP_FS_IN 1
#define DP_FS_OUT 2

struct dp_failsafe_key {
	__u32 prefixlen;
	__u8 dir;
	__u8 proto;
	__u16 port;
	__be32 addr;
};

struct dp_failsafe_value {
	__u8 allowed;
	__u8 pad[3];
};

/* ------------------------------------------------------------ load-time config */

/* .rodata: conntrack timeouts, set by the loader before load (the verifier
 * then sees constants).  Nanoseconds. */
struct dp_config {
	__u64 ct_syn_sent_ns;
	__u64 ct_established_ns;
	__u64 ct_fins_seen_ns;
	__u64 ct_reset_seen_ns;
	__u64 ct_udp_ns;
	__u64 ct_generic_ns;
};

/* ------------------------------------------------------------ definitions */

#ifndef DP_NO_MAP_DEFS

#define DP_PINNED __uint(pinning, LIBBPF_PIN_BY_NAME)

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct dp_lpm4_key);
	__type(value, struct dp_class_value);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	DP_PINNED;
} dp_class SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct dp_lpm4_key);
	__type(value, struct dp_route_value);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	DP_PINNED;
} dp_route SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct dp_fe_key);
	__type(value, struct dp_fe_value);
	__uint(max_entries, 65536);
	DP_PINNED;
} dp_fe SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct dp_be_key);
	__type(value, struct dp_be_value);
	__uint(max_entries, 262144);
	DP_PINNED;
} dp_be SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct dp_srcrange_key);
	__type(value, struct dp_srcrange_value);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	DP_PINNED;
} dp_srcrange SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct dp_aff_key);
	__type(value, struct dp_aff_value);
	__uint(max_entries, 65536);
	DP_PINNED;
} dp_aff SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct dp_ct_key);
	__type(value, struct dp_ct_value);
	__uint(max_entries, 512000);
	DP_PINNED;
} dp_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct dp_globals);
	__uint(max_entries, 1);
	DP_PINNED;
} dp_globals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct dp_wep_key);
	__type(value, struct dp_wep_value);
	__uint(max_entries, 4096);
	DP_PINNED;
} dp_wep SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct dp_ifstate);
	__uint(max_entries, 4096);
	DP_PINNED;
} dp_ifstate SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct dp_counter);
	__uint(max_entries, DP_CNT_MAX);
	DP_PINNED;
} dp_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct dp_rule);
	__uint(max_entries, 65536);
	DP_PINNED;
} dp_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct dp_rule_hit);
	__uint(max_entries, 65536);
	DP_PINNED;
} dp_rule_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct dp_ipset_key);
	__type(value, struct dp_ipset_value);
	__uint(max_entries, 1048576);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	DP_PINNED;
} dp_ipset SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct dp_ifpol);
	__uint(max_entries, 4096);
	DP_PINNED;
} dp_ifpol SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct dp_ct_key);
	__type(value, struct dp_pct_value);
	__uint(max_entries, 512000);
	DP_PINNED;
} dp_pct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct dp_failsafe_key);
	__type(value, struct dp_failsafe_value);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	DP_PINNED;
} dp_failsafe SEC(".maps");

#endif /* DP_NO_MAP_DEFS */

#endif /* DP_MAPS_H */

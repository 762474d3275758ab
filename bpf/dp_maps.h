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
	__u64 last_used_ns;  /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
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

struct dp_globals {
	__u32 tunnel_ifindex; /* the instance's VXLAN device, 0 if none */
	__u32 flags;          /* DP_G_* */
};

/* dp_wep: this node's workload addresses -> their host-side interface, so
 * packets the stack cannot route (decapsulated, or past host routing) are
 * redirected straight to the pod.  Part 2 keys per-endpoint policy here. */
struct dp_wep_key {
	__be32 addr;
};

struct dp_wep_value {
	__u32 ifindex;
	__u32 flags;
};

/* dp_ifstate: hash ifindex -> what the agent attached there.  Only the agent
 * reads it (to detach after a restart); part 2 adds a policy slot here. */
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
#define DP_CNT_MAX 9

struct dp_counter {
	__u64 packets;
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

#endif /* DP_NO_MAP_DEFS */

#endif /* DP_MAPS_H */

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Conntrack for NATed flows: lookups, expiry as the datapath sees it, and
 * creation of the FWD/REV entry pair.
 *
 * The datapath judges an entry only by its own direction (no second lookup
 * per packet); the agent's periodic scan joins both entries of a pair to
 * apply the full timeout table and delete expired pairs together.  The LRU
 * map is the last resort when the table is full.
 */
#ifndef DP_CONNTRACK_H
#define DP_CONNTRACK_H

#include "dp_packet.h"

/* Conntrack timeouts, written by the loader before load (Calico's defaults). */
const volatile struct dp_config dp_cfg = {
	.ct_syn_sent_ns = 20ULL * 1000000000ULL,
	.ct_established_ns = 3600ULL * 1000000000ULL,
	.ct_fins_seen_ns = 30ULL * 1000000000ULL,
	.ct_reset_seen_ns = 40ULL * 1000000000ULL,
	.ct_udp_ns = 60ULL * 1000000000ULL,
	.ct_generic_ns = 600ULL * 1000000000ULL,
};

/* An existing FWD entry younger than this was made by a concurrent CPU. */
#define DP_CT_RACE_WINDOW_NS 100000000ULL

static __always_inline void dp_ct_key_of(const struct dp_pkt *p, struct dp_ct_key *k)
{
	k->src = p->saddr;
	k->dst = p->daddr;
	k->sport = p->sport;
	k->dport = p->dport;
	k->proto = p->proto;
}

static __always_inline __u64 dp_ct_timeout(const struct dp_ct_value *v, __u8 proto)
{
	if (proto == IPPROTO_TCP) {
		if (v->tcp_seen & DP_TCP_RST)
			return dp_cfg.ct_reset_seen_ns;
		if (v->tcp_seen & DP_TCP_FIN)
			return dp_cfg.ct_fins_seen_ns;
		if (v->tcp_seen & DP_TCP_ACK)
			return dp_cfg.ct_established_ns;
		return dp_cfg.ct_syn_sent_ns;
	}
	if (proto == IPPROTO_UDP)
		return dp_cfg.ct_udp_ns;
	return dp_cfg.ct_generic_ns;
}

/* An entry that no longer describes this packet's connection: timed out, or
 * a fresh SYN reusing the tuple of a closed connection. */
static __always_inline int dp_ct_stale(const struct dp_ct_value *v, const struct dp_pkt *p,
				       __u64 now)
{
	if (p->proto == IPPROTO_TCP && (p->tcp_flags & (DP_TCP_SYN | DP_TCP_ACK)) == DP_TCP_SYN &&
	    (v->tcp_seen & (DP_TCP_FIN | DP_TCP_RST)))
		return 1;
	return now - v->last_seen_ns > dp_ct_timeout(v, p->proto);
}

/* ``last_seen_ns`` is refreshed at most every DP_CT_TOUCH_NS: a write per
 * packet keeps the entry's cache line bouncing between the CPUs that carry
 * the two directions, and timeouts (seconds and up) lose nothing by it. */
#define DP_CT_TOUCH_NS 1000000000ULL

static __always_inline void dp_ct_touch(struct dp_ct_value *v, const struct dp_pkt *p,
					__u64 now)
{
	if (now - v->last_seen_ns > DP_CT_TOUCH_NS)
		v->last_seen_ns = now;
	if ((v->tcp_seen | p->tcp_flags) != v->tcp_seen)
		v->tcp_seen |= p->tcp_flags;
}

/* Insert the entry pair of a new flow.  FWD goes in with NOEXIST so that two
 * CPUs racing on the first packets of one flow agree on one backend: the
 * loser gets the winner's entry back through *winner.
 *
 * ``stale``: the FWD key's own entry if the caller found one that no longer
 * describes a connection (timed out, or closed and its tuple reused by a new
 * SYN, which clients that open many short connections do within seconds).
 * Entries that exist are rewritten in place: replacing them through the LRU
 * map takes a node off its free list, hands the old one back and touches a
 * second cache line, for the same result.  Two CPUs that both find the stale
 * entry both rewrite it, as both replaced it before. */
static __always_inline int dp_ct_create(const struct dp_ct_key *fwd_key,
					const struct dp_ct_value *fwd,
					const struct dp_ct_key *rev_key,
					const struct dp_ct_value *rev,
					struct dp_ct_value *stale,
					struct dp_ct_value **winner)
{
	struct dp_ct_value *cur;

	*winner = 0;
	if (stale) {
		*stale = *fwd;
	} else if (bpf_map_update_elem(&dp_ct, fwd_key, fwd, BPF_NOEXIST)) {
		cur = bpf_map_lookup_elem(&dp_ct, fwd_key);

		if (cur && cur->type == DP_CT_FWD &&
		    cur->created_ns + DP_CT_RACE_WINDOW_NS > fwd->created_ns) {
			*winner = cur;
			return 0;
		}
		/* A stale entry: replace it. */
		if (bpf_map_update_elem(&dp_ct, fwd_key, fwd, BPF_ANY))
			goto full;
	}
	cur = bpf_map_lookup_elem(&dp_ct, rev_key);
	if (cur) {
		*cur = *rev;
		return 0;
	}
	if (bpf_map_update_elem(&dp_ct, rev_key, rev, BPF_ANY)) {
		bpf_map_delete_elem(&dp_ct, fwd_key);
		goto full;
	}
	return 0;
full:
	dp_count(DP_CNT_CT_FULL);
	return -1;
}

#endif /* DP_CONNTRACK_H */

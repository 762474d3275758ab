/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Service lookup: which frontend a packet addresses, which route its source
 * class takes, whether its source may use the frontend, and which backend it
 * gets.  All the Kubernetes semantics were decided by calc; the maps only
 * hold the outcome, so this code never branches on service types.
 */
#ifndef DP_NAT_H
#define DP_NAT_H

#include "dp_packet.h"

static __always_inline struct dp_globals *dp_globals_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&dp_globals, &zero);
}

static __always_inline __u8 dp_classify(__be32 addr)
{
	struct dp_lpm4_key k = { .prefixlen = 32, .addr = addr };
	struct dp_class_value *v = bpf_map_lookup_elem(&dp_class, &k);

	return v ? v->class_id : DP_CLASS_ANY;
}

/* The route entry of the packet's frontend for its source's class, or NULL
 * if the destination is no frontend. */
static __always_inline struct dp_fe_value *dp_fe_lookup(const struct dp_pkt *p)
{
	struct dp_fe_key k = {
		.addr = p->daddr, .port = p->dport, .proto = p->proto, .src_class = DP_CLASS_ANY,
	};
	struct dp_fe_value *fe, *special;
	__u8 cls;

	/* Every frontend has an ANY entry: one lookup rejects non-service
	 * traffic, and most frontends route every source class alike, which
	 * spares them classifying the source (an LPM lookup) and a second one. */
	fe = bpf_map_lookup_elem(&dp_fe, &k);
	if (!fe || !(fe->flags & DP_FE_F_BY_CLASS))
		return fe;
	cls = dp_classify(p->saddr);
	if (cls == DP_CLASS_ANY)
		return fe;
	k.src_class = cls;
	special = bpf_map_lookup_elem(&dp_fe, &k);
	return special ? special : fe;
}

static __always_inline int dp_src_allowed(const struct dp_fe_value *fe, __be32 saddr)
{
	struct dp_srcrange_key k = { .prefixlen = 64, .fe_id = fe->fe_id, .addr = saddr };

	return bpf_map_lookup_elem(&dp_srcrange, &k) != 0;
}

/* Choose a backend: the client's affine one while it is fresh and still in
 * the list at the same index, else a uniformly random one. */
static __always_inline int dp_pick_backend(const struct dp_fe_value *fe, const struct dp_pkt *p,
					   __u64 now, struct dp_be_value *out)
{
	struct dp_be_key bk = { .route_id = fe->route_id };
	struct dp_aff_key ak = {
		.client = p->saddr, .addr = p->daddr, .port = p->dport, .proto = p->proto,
	};
	struct dp_be_value *be;

	if (fe->flags & DP_FE_F_AFFINITY) {
		struct dp_aff_value *av = bpf_map_lookup_elem(&dp_aff, &ak);

		if (av && now - av->last_used_ns < (__u64)fe->affinity_timeout * 1000000000ULL) {
			bk.index = av->index;
			be = bpf_map_lookup_elem(&dp_be, &bk);
			if (be && be->addr == av->addr && be->port == av->port) {
				av->last_used_ns = now;
				*out = *be;
				return 0;
			}
		}
	}
	if (!fe->count)
		return -1;
	bk.index = bpf_get_prandom_u32() % fe->count;
	be = bpf_map_lookup_elem(&dp_be, &bk);
	if (!be)
		return -1;
	*out = *be;
	if (fe->flags & DP_FE_F_AFFINITY) {
		struct dp_aff_value av = {
			.last_used_ns = now, .addr = be->addr, .index = bk.index, .port = be->port,
		};

		bpf_map_update_elem(&dp_aff, &ak, &av, BPF_ANY);
	}
	return 0;
}

#endif /* DP_NAT_H */

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sending a translated packet on where the stack would not route it right:
 * host-originated packets that are already past routing (decapsulated
 * packets and replies for a local pod go into the pod with
 * bpf_redirect_peer(), see dp_to_pod).  bpf_redirect_neigh() resolves the
 * next hop and MAC addresses; we only name the interface (bpf_fib_lookup() is
 * GPL-only and these programs are Apache-2.0).  Also: encapsulation into the
 * instance's VXLAN device towards the node that hosts a backend.
 */
#ifndef DP_FORWARD_H
#define DP_FORWARD_H

#include "dp_packet.h"

/* The VXLAN network identifier carries the frontend port (low 16 bits) and
 * whether the backend node answers the client itself (DSR). */
#define DP_VNI_DSR (1U << 16)
#define DP_VNI_PORT_MASK 0xffffU

/* Redirect out of the interface that leads to the packet's destination:
 * a local pod's veth, else `fallback` (0: nowhere known, drop). */
static __always_inline int dp_redirect(const struct dp_pkt *p, __u32 fallback)
{
	struct dp_wep_key k = { .addr = p->daddr };
	struct dp_wep_value *wep = bpf_map_lookup_elem(&dp_wep, &k);
	__u32 ifindex = wep ? wep->ifindex : fallback;

	if (!ifindex) {
		dp_count(DP_CNT_NO_ROUTE);
		return TC_ACT_SHOT;
	}
	return bpf_redirect_neigh(ifindex, 0, 0, 0);
}

/* Encapsulate towards another node through the instance's VXLAN device. */
static __always_inline int dp_tunnel_to(struct __sk_buff *skb, const struct dp_globals *g,
					__be32 node, __u32 vni)
{
	struct bpf_tunnel_key key = {};

	if (!g->tunnel_ifindex || !node)
		goto fail;
	key.remote_ipv4 = bpf_ntohl(node);
	key.tunnel_id = vni;
	key.tunnel_ttl = 64;
	if (bpf_skb_set_tunnel_key(skb, &key, offsetof(struct bpf_tunnel_key, local_ipv4), 0))
		goto fail;
	return bpf_redirect(g->tunnel_ifindex, 0);
fail:
	dp_count(DP_CNT_TUNNEL_FAIL);
	return TC_ACT_SHOT;
}

#endif /* DP_FORWARD_H */

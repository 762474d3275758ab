/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sending a translated packet on where the stack would not route it right:
 * host-originated packets that are already past routing (decapsulated
 * packets and replies for a local pod go into the pod with
 * bpf_redirect_peer(), see dp_to_pod).  bpf_redirect_neigh() resolves the
 * next hop and MAC addresses; we only name the interface (bpf_fib_lookup() is
 * GPL-only and these programs are Apache-2.0).  Also: VXLAN encapsulation
 * towards the node that hosts a backend, through the instance's VXLAN device
 * (ebpf_tunnel "kernel") or written here (bpf_skb_adjust_room(), "bpf").
 */
#ifndef DP_FORWARD_H
#define DP_FORWARD_H

#include "dp_packet.h"

/* The VXLAN network identifier carries the frontend port (low 16 bits) and
 * whether the backend node answers the client itself (DSR). */
#define DP_VNI_DSR (1U << 16)
#define DP_VNI_PORT_MASK 0xffffU

/* Out of ``ifindex`` to ``nexthop`` (a dp_route entry's), when the agent
 * resolved one: the kernel then only resolves its MAC address, instead of
 * looking the route up again for every packet.  Not inlined: the helper's
 * parameters stay off the callers' frames. */
__attribute__((noinline)) int dp_redirect_via(__u32 ifindex, __be32 nexthop)
{
	struct bpf_redir_neigh nh = { .nh_family = AF_INET, .ipv4_nh = nexthop };

	if (!nexthop)
		return bpf_redirect_neigh(ifindex, 0, 0, 0);
	return bpf_redirect_neigh(ifindex, &nh, sizeof(nh), 0);
}

/* The next hop towards another node's address out of ``ifindex``, if the
 * agent resolved it (dp_route), else 0. */
static __always_inline __be32 dp_node_nexthop(__be32 node, __u32 ifindex)
{
	struct dp_lpm4_key k = { .prefixlen = 32, .addr = node };
	struct dp_route_value *r = bpf_map_lookup_elem(&dp_route, &k);

	if (!r || !(r->flags & DP_ROUTE_F_NODE) || r->ifindex != ifindex)
		return 0;
	return r->nexthop;
}

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

#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV4
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7) /* kernel >= 6.3; older headers lack it */
#endif
#define DP_VXLAN_FLAG_VNI 0x08000000U /* the I flag: the VNI is valid */

/* What the programs write in front of a packet they encapsulate, after its
 * (kept, now outer) Ethernet header: DP_VXLAN_OVERHEAD bytes. */
struct dp_vxlan_hdrs {
	struct iphdr ip;
	struct udphdr udp;
	__be32 vx_flags;
	__be32 vx_vni; /* VNI << 8 */
	struct ethhdr eth; /* inner Ethernet header: a copy of the outer one */
};                         /* DP_VXLAN_OVERHEAD bytes, then padding */

_Static_assert(offsetof(struct dp_vxlan_hdrs, eth) + sizeof(struct ethhdr) == DP_VXLAN_OVERHEAD,
	       "VXLAN overhead");

/* GSO packets keep their segment size (the payload per segment does not
 * change; the MSS was clamped so that segments fit the tunnel) and are marked
 * SKB_GSO_UDP_TUNNEL, so the kernel segments them with their outer headers. */
#define DP_ENCAP_FLAGS                                                                           \
	(BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP | \
	 BPF_F_ADJ_ROOM_ENCAP_L2_ETH | BPF_F_ADJ_ROOM_ENCAP_L2(ETH_HLEN))
#define DP_DECAP_FLAGS (BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_DECAP_L3_IPV4)

static __always_inline __u16 dp_ip_csum(const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 s = 0;

#pragma unroll
	for (int i = 0; i < (int)(sizeof(*ip) / 2); i++)
		s += w[i];
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

#define DP_ENCAP_UNDONE (-2) /* dp_encap: the packet is unchanged, use the device */

/* Encapsulate in place (outer IPv4 ``saddr`` -> ``daddr``, UDP to the tunnel
 * port, VXLAN ``vni``) and send out of ``ifindex``, the FIB choosing the next
 * hop for ``daddr``: no VXLAN device, no outer IP output.  The outer UDP
 * checksum is zero (allowed over IPv4).  Returns the TC verdict, or
 * DP_ENCAP_UNDONE if the helper refused the packet (left as it was).  A global
 * function: verified once, its scratch off the callers' frames. */
__attribute__((noinline)) int dp_encap(struct __sk_buff *skb, __be32 saddr, __be32 daddr,
				       __u32 vni, __u32 ifindex)
{
	struct dp_vxlan_hdrs h = {};
	__u32 zero = 0, len, hash, port;
	struct dp_globals *g;

	if (!skb)
		return TC_ACT_SHOT;
	g = bpf_map_lookup_elem(&dp_globals, &zero);
	if (!g || !g->vxlan_port)
		return DP_ENCAP_UNDONE;
	port = g->vxlan_port;
	hash = bpf_get_hash_recalc(skb); /* of the inner flow: the outer source port */
	if (bpf_skb_load_bytes(skb, 0, &h.eth, sizeof(h.eth)))
		return DP_ENCAP_UNDONE;
	if (bpf_skb_adjust_room(skb, DP_VXLAN_OVERHEAD, BPF_ADJ_ROOM_MAC, DP_ENCAP_FLAGS))
		return DP_ENCAP_UNDONE;
	len = skb->len - ETH_HLEN;
	h.ip.version = 4;
	h.ip.ihl = 5;
	h.ip.ttl = 64;
	h.ip.protocol = IPPROTO_UDP;
	h.ip.tot_len = bpf_htons(len);
	h.ip.id = (__u16)bpf_get_prandom_u32();
	h.ip.saddr = saddr;
	h.ip.daddr = daddr;
	h.ip.check = dp_ip_csum(&h.ip);
	h.udp.source = bpf_htons(0xc000 | (hash & 0x3fff));
	h.udp.dest = bpf_htons(port);
	h.udp.len = bpf_htons(len - sizeof(struct iphdr));
	h.vx_flags = bpf_htonl(DP_VXLAN_FLAG_VNI);
	h.vx_vni = bpf_htonl(vni << 8);
	/* BPF_F_RECOMPUTE_CSUM: keeps a CHECKSUM_COMPLETE sum right (no-op otherwise). */
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &h, DP_VXLAN_OVERHEAD, BPF_F_RECOMPUTE_CSUM))
		goto fail;
	return dp_redirect_via(ifindex, dp_node_nexthop(daddr, ifindex));
fail:
	dp_count(DP_CNT_TUNNEL_FAIL);
	return TC_ACT_SHOT;
}

/* Encapsulate towards another node: in the programs (``src``: this node's
 * address the peer knows, ``ifindex``: the uplink; both 0 if unknown) when
 * ebpf_tunnel is "bpf", else, or for a packet the outer packet of which
 * would have to be fragmented, through the instance's VXLAN device. */
static __always_inline int dp_tunnel_to(struct __sk_buff *skb, const struct dp_globals *g,
					__be32 node, __u32 vni, __be32 src, __u32 ifindex,
					const struct dp_pkt *p)
{
	struct bpf_tunnel_key key = {};
	int verdict;

	if ((g->flags & DP_G_BPF_TUN) && src && ifindex && node &&
	    (!g->mtu || dp_wire_len(skb, p) + DP_VXLAN_OVERHEAD <= g->mtu)) {
		verdict = dp_encap(skb, src, node, vni, ifindex);
		if (verdict != DP_ENCAP_UNDONE)
			return verdict;
	}
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

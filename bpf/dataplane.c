// SPDX-License-Identifier: Apache-2.0
/*
 * The dataplane TC programs: service NAT (kube-proxy replacement) at the
 * node's edges.
 *
 *   dp_from_wep  workload veth (host side), TC ingress: packets from a pod
 *   dp_to_wep    workload veth (host side), TC egress:  packets to a pod
 *   dp_from_hep  host uplink, TC ingress: packets from the network (and, with
 *                ebpf_tunnel "bpf", VXLAN from other nodes, decapsulated
 *                here and handled as dp_from_tun would)
 *   dp_to_hep    host uplink, TC egress:  packets the host sends out
 *   dp_from_tun  the instance's VXLAN device, TC ingress: NodePort traffic
 *                forwarded by, or replies returned to, another node
 *
 * Translation happens where a packet enters the node (before routing), so
 * the kernel routes by the translated address; only packets the stack
 * cannot route correctly (decapsulated, or host-originated past routing) are
 * redirected by these programs.  No GPL-only helper is used, so the
 * license below is the project's own.  Only DNAT and its reverse: the backend sees
 * the client's own address.
 *
 * Policy (dp_policy.h) runs where the flow's translation is known: after
 * DNAT, before reverse NAT, so rules always see the backend's address.
 */
#include "dp_conntrack.h"
#include "dp_forward.h"
#include "dp_mtu.h"
#include "dp_nat.h"
#include "dp_policy.h"
#include "dp_reject.h"

/* The flow as policy judges it once ``ct`` has translated it (FWD). */
static __always_inline void dp_flow_translated(const struct dp_pkt *p,
					       const struct dp_ct_value *ct, struct dp_flow *f)
{
	dp_flow_of(p, f);
	f->daddr = ct->nat_addr;
	f->dport = ct->nat_port;
	if (ct->flags & DP_CT_F_HAIRPIN)
		f->saddr = ct->alt_addr;
}

static __always_inline int dp_policy_pkt(struct __sk_buff *skb, const struct dp_pkt *p, __u32 hook)
{
	struct dp_flow f;

	dp_flow_of(p, &f);
	return dp_policy_flow(skb, hook, &f);
}

/* Into a local pod, from a TC ingress hook: bpf_redirect_peer() puts the
 * packet straight into the pod's namespace, without a second pass through the
 * veth and the backlog queue.  That skips the host side's TC egress hook, so
 * the pod's ingress policy (dp_to_wep) runs here, for that interface.
 * ``f``: the flow as policy judges it (after DNAT, before reverse NAT): what
 * dp_to_wep finds by looking up the FWD entry of a reply (dp_untranslate),
 * given directly, which saves that lookup and a policy-conntrack miss. */
static __always_inline int dp_to_pod(struct __sk_buff *skb, __u32 ifindex,
				     const struct dp_flow *f)
{
	if (dp_policy_at(skb, DP_HOOK_TO_WEP, ifindex, f) != TC_ACT_OK)
		return TC_ACT_SHOT;
	return bpf_redirect_peer(ifindex, 0);
}

/* Where the stack would route a packet that entered from a pod or the
 * network (after NAT and policy): into a local pod (its ingress policy runs
 * here, see dp_to_pod), or, from a pod, out of the host interface towards
 * another node's pod (dp_route); else to the stack.  Both spare the packet
 * the host's routing, its netfilter hooks and, into a pod, the veth's second
 * pass; both decrement the TTL as forwarding would.  Only packets from pods
 * are sent out again, so two nodes that disagree about a route cannot bounce
 * a packet between them past the stack's TTL check. */
static __always_inline int dp_route_in(struct __sk_buff *skb, __u32 hook, __be32 daddr,
				       const struct dp_flow *f)
{
	struct dp_lpm4_key rk = { .prefixlen = 32, .addr = daddr };
	struct dp_wep_key k = { .addr = daddr };
	struct dp_route_value *route;
	struct dp_wep_value *wep;

	wep = bpf_map_lookup_elem(&dp_wep, &k);
	if (wep && wep->ifindex) {
		if (wep->ifindex == skb->ifindex || dp_dec_ttl(skb))
			return TC_ACT_OK; /* hairpin, or TTL expiring: the stack's business */
		return dp_to_pod(skb, wep->ifindex, f);
	}
	if (hook != DP_HOOK_FROM_WEP)
		return TC_ACT_OK;
	route = bpf_map_lookup_elem(&dp_route, &rk);
	if (!route || !route->ifindex || (route->flags & DP_ROUTE_F_NODE) || dp_dec_ttl(skb))
		return TC_ACT_OK;
	return dp_redirect_via(route->ifindex, route->nexthop);
}

/* A packet that is no frontend's, arriving from a pod or the network. */
static __always_inline int dp_plain(struct __sk_buff *skb, const struct dp_pkt *p, __u32 hook)
{
	struct dp_flow f;

	dp_flow_of(p, &f);
	if (dp_policy_flow(skb, hook, &f) != TC_ACT_OK)
		return TC_ACT_SHOT;
	return dp_route_in(skb, hook, p->daddr, &f);
}

/* Hand a translated packet on.  Replies leave through the interface the
 * client's packets came in by (recorded in the REV entry): after reverse NAT
 * their source may be this node's own address, which the stack would drop as
 * martian.  Otherwise the stack routes, except where it cannot (decapsulated
 * packets; host packets already routed by their old address).  Packets for a
 * local pod seen at a TC ingress hook go straight into the pod. */
static __always_inline int dp_deliver(struct __sk_buff *skb, const struct dp_pkt *p,
				      const struct dp_ct_value *ct, __u32 hook, struct dp_flow *f)
{
	struct dp_wep_key k = { .addr = p->daddr };
	struct dp_wep_value *wep;

	if (ct->type == DP_CT_REV && ct->ifindex) {
		if (dp_hook_is_ingress(hook)) {
			wep = bpf_map_lookup_elem(&dp_wep, &k);
			if (wep && wep->ifindex == ct->ifindex)
				return dp_to_pod(skb, ct->ifindex, f);
		}
		return bpf_redirect_neigh(ct->ifindex, 0, 0, 0);
	}
	if (hook == DP_HOOK_TO_HEP)
		return dp_redirect(p, skb->ifindex);
	if (hook == DP_HOOK_FROM_TUN) {
		wep = bpf_map_lookup_elem(&dp_wep, &k);
		if (!wep || !wep->ifindex) {
			dp_count(DP_CNT_NO_ROUTE);
			return TC_ACT_SHOT;
		}
		return dp_to_pod(skb, wep->ifindex, f);
	}
	if (ct->type == DP_CT_FWD && dp_hook_is_ingress(hook))
		return dp_route_in(skb, hook, p->daddr, f);
	return TC_ACT_OK;
}

/* Client -> frontend packet of a tracked flow. */
static __always_inline int dp_forward(struct __sk_buff *skb, struct dp_pkt *p,
				      const struct dp_ct_value *ct, const struct dp_globals *g,
				      __u32 hook)
{
	__u16 frontend_port = p->dport;
	struct dp_flow f;
	int verdict;

	dp_flow_translated(p, ct, &f);
	if (dp_policy_flow(skb, hook, &f) != TC_ACT_OK)
		return TC_ACT_SHOT;
	if (ct->flags & DP_CT_F_TUN_OUT) {
		verdict = dp_fit_tunnel(skb, p, g, hook == DP_HOOK_TO_HEP);
		if (verdict != DP_FITS)
			return verdict;
	}
	if (dp_set_addr(skb, p, 1, ct->nat_addr) || dp_set_port(skb, p, 1, ct->nat_port))
		return TC_ACT_SHOT;
	if ((ct->flags & DP_CT_F_HAIRPIN) && dp_set_addr(skb, p, 0, ct->alt_addr))
		return TC_ACT_SHOT;
	if (ct->flags & DP_CT_F_TUN_OUT) {
		__u32 vni = frontend_port | ((g->flags & DP_G_DSR) ? DP_VNI_DSR : 0);

		return dp_tunnel_to(skb, g, ct->tun_addr, vni, ct->alt_addr, ct->ifindex, p);
	}
	return dp_deliver(skb, p, ct, hook, &f);
}

/* Backend -> client packet of a tracked flow. */
static __always_inline int dp_reply(struct __sk_buff *skb, struct dp_pkt *p,
				    const struct dp_ct_value *ct, const struct dp_globals *g,
				    __u32 hook)
{
	struct dp_flow f;
	int verdict;

	dp_flow_of(p, &f);
	if (dp_policy_flow(skb, hook, &f) != TC_ACT_OK)
		return TC_ACT_SHOT;
	if (ct->flags & DP_CT_F_TUN_BACK) {
		verdict = dp_fit_tunnel(skb, p, g, hook == DP_HOOK_TO_HEP);
		if (verdict != DP_FITS)
			return verdict;
	}
	if (ct->flags & DP_CT_F_DSR)
		dp_clamp_syn(skb, p, g); /* the client sends its data through the tunnel */
	if (ct->nat_addr &&
	    (dp_set_addr(skb, p, 0, ct->nat_addr) || dp_set_port(skb, p, 0, ct->nat_port)))
		return TC_ACT_SHOT;
	if ((ct->flags & DP_CT_F_HAIRPIN) &&
	    (dp_set_addr(skb, p, 1, ct->alt_addr) || dp_set_port(skb, p, 1, ct->alt_port)))
		return TC_ACT_SHOT;
	if (ct->flags & DP_CT_F_TUN_BACK)
		return dp_tunnel_to(skb, g, ct->tun_addr, 0, ct->alt_addr, ct->ifindex, p);
	return dp_deliver(skb, p, ct, hook, &f);
}

/* One of this node's addresses?  Not inlined: its key stays off the frame
 * policy calls are made from. */
__attribute__((noinline)) int dp_is_node_addr(__be32 addr)
{
	return dp_classify(addr) == DP_CLASS_HOST;
}

/* First packet towards a frontend: pick a backend, track, translate.
 * ``stale``: the packet's own conntrack entry, found too old to use (else 0;
 * see dp_ct_create). */
static __always_inline int dp_new_flow(struct __sk_buff *skb, struct dp_pkt *p,
				       const struct dp_globals *g, __u32 hook,
				       struct dp_ct_value *stale)
{
	struct dp_ct_key fwd_key = {}, rev_key = {};
	struct dp_ct_value fwd = {}, rev = {}, *winner;
	struct dp_fe_value *fe;
	struct dp_be_value be;
	__u64 now;

	fe = dp_fe_lookup(p);
	if (!fe && dp_hook_is_ingress(hook))
		return dp_plain(skb, p, hook);
	if (!fe)
		return dp_policy_pkt(skb, p, hook);
	if ((fe->flags & DP_FE_F_SRC_RANGES) && !dp_src_allowed(fe, p->saddr)) {
		dp_count(DP_CNT_DROP_SRC_RANGE);
		return TC_ACT_SHOT;
	}
	if (!fe->count) {
		if (fe->flags & DP_FE_F_DROP_IF_EMPTY) {
			dp_count(DP_CNT_DROP_NO_BACKEND);
			return TC_ACT_SHOT;
		}
		return dp_reject(skb, p, hook == DP_HOOK_TO_HEP);
	}
	now = bpf_ktime_get_coarse_ns();
	if (dp_pick_backend(fe, p, now, &be)) {
		dp_count(DP_CNT_NAT_MISS);
		return TC_ACT_SHOT;
	}

	dp_ct_key_of(p, &fwd_key);
	fwd.created_ns = fwd.last_seen_ns = now;
	fwd.type = DP_CT_FWD;
	fwd.tcp_seen = p->tcp_flags;
	fwd.nat_addr = be.addr;
	fwd.nat_port = be.port;

	rev_key.src = be.addr;
	rev_key.dst = p->saddr;
	rev_key.sport = be.port;
	rev_key.dport = p->sport;
	rev_key.proto = p->proto;
	rev.created_ns = rev.last_seen_ns = now;
	rev.type = DP_CT_REV;
	rev.nat_addr = p->daddr;
	rev.nat_port = p->dport;
	/* Host-originated flows: the reply is for the host, the stack delivers it. */
	rev.ifindex = hook == DP_HOOK_TO_HEP ? 0 : skb->ifindex;

	if (be.addr == p->saddr && (fe->flags & DP_FE_F_HAIRPIN)) {
		/* A pod reaching itself: it must see the connection come from
		 * elsewhere, so the source becomes the frontend address. */
		fwd.flags |= DP_CT_F_HAIRPIN;
		fwd.alt_addr = p->daddr;
		rev_key.dst = p->daddr;
		rev.flags |= DP_CT_F_HAIRPIN;
		rev.alt_addr = p->saddr;
		rev.alt_port = p->sport;
	}
	if ((be.flags & DP_BE_F_REMOTE) && hook == DP_HOOK_FROM_HEP) {
		/* From outside to a backend elsewhere: through the tunnel, so
		 * the client's address survives and the reply can come back. */
		fwd.flags |= DP_CT_F_TUN_OUT;
		fwd.tun_addr = be.node_addr;
		if ((g->flags & DP_G_BPF_TUN) && dp_is_node_addr(p->daddr)) {
			/* Encapsulated by the programs: the outer source is the
			 * node address the client used (the frontend DSR answers
			 * as), out of the interface it came in by. */
			fwd.alt_addr = p->daddr;
			fwd.ifindex = skb->ifindex;
		}
	}

	if (dp_ct_create(&fwd_key, &fwd, &rev_key, &rev, stale, &winner))
		return TC_ACT_SHOT;
	dp_count(DP_CNT_NAT_NEW);
	return dp_forward(skb, p, winner ? winner : &fwd, g, hook);
}

/* The outer headers of a packet the programs decapsulated, kept in the
 * skb's control block (the stack of dp_from_hep has no room to spare) for
 * dp_tunnel_in. */
#define DP_CB_TUN_SADDR 0   /* the other node */
#define DP_CB_TUN_DADDR 1   /* this node's address it sent to */
#define DP_CB_TUN_VNI 2
#define DP_CB_TUN_IFINDEX 3 /* the interface it came in by */

/* A VXLAN packet to this node's tunnel port from another node (one the
 * failsafes let in: the same guard the policy code applies to the outer
 * packet), when ebpf_tunnel is "bpf": strip the outer headers, keeping the
 * outer Ethernet header for the inner packet.  Returns 1 if decapsulated
 * (outer facts in ``skb->cb``), else 0 and the packet is untouched (the stack, and the
 * VXLAN device, take it as before).  A global function: its scratch stays off
 * the frame the service code runs from. */
__attribute__((noinline)) int dp_decap(struct __sk_buff *skb)
{
	struct dp_vxlan_hdrs h;
	struct dp_globals *g;
	struct iphdr *ip;

	if (!skb || skb->protocol != bpf_htons(ETH_P_IP))
		return 0;
	/* Most packets are not UDP: tell from the header in place, if it is. */
	ip = (void *)(long)skb->data + ETH_HLEN;
	if ((void *)(ip + 1) <= (void *)(long)skb->data_end && ip->protocol != IPPROTO_UDP)
		return 0;
	g = dp_globals_get();
	if (!g || !(g->flags & DP_G_BPF_TUN) || !g->vxlan_port)
		return 0;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &h, DP_VXLAN_OVERHEAD))
		return 0;
	if (h.ip.version != 4 || h.ip.ihl != 5 || h.ip.protocol != IPPROTO_UDP ||
	    (h.ip.frag_off & bpf_htons(DP_IP_MF | DP_IP_OFFSET)) ||
	    h.udp.dest != bpf_htons(g->vxlan_port) ||
	    !(h.vx_flags & bpf_htonl(DP_VXLAN_FLAG_VNI)) || h.eth.h_proto != bpf_htons(ETH_P_IP))
		return 0;
	if (dp_classify(h.ip.daddr) != DP_CLASS_HOST ||
	    !dp_is_failsafe(DP_FS_IN, IPPROTO_UDP, g->vxlan_port, h.ip.saddr))
		return 0;
	if (bpf_skb_adjust_room(skb, -(__s32)DP_VXLAN_OVERHEAD, BPF_ADJ_ROOM_MAC, DP_DECAP_FLAGS))
		return 0; /* e.g. a GSO packet the helper cannot shrink: the device decapsulates */
	skb->cb[DP_CB_TUN_SADDR] = h.ip.saddr;
	skb->cb[DP_CB_TUN_DADDR] = h.ip.daddr;
	skb->cb[DP_CB_TUN_VNI] = bpf_ntohl(h.vx_vni) >> 8;
	skb->cb[DP_CB_TUN_IFINDEX] = skb->ifindex;
	return 1;
}

/* A packet from the tunnel that matches no entry: the first packet of a flow
 * another node forwarded to a backend here.  Track it so the reply goes back
 * the way the ingress node asked (through it, or straight to the client);
 * the caller then forwards it as a tracked packet.  Returns 0 if tracked.
 * Not inlined, to keep its scratch off the frame policy calls are made from. */
static __attribute__((noinline)) int dp_tunnel_in(struct __sk_buff *skb, struct dp_pkt *p,
						  __u64 now, int decapped)
{
	struct bpf_tunnel_key tk = {};
	struct dp_ct_key fwd_key = {}, rev_key = {};
	struct dp_ct_value fwd = {}, rev = {}, *winner;

	if (decapped) {
		tk.remote_ipv4 = bpf_ntohl(skb->cb[DP_CB_TUN_SADDR]);
		tk.tunnel_id = skb->cb[DP_CB_TUN_VNI];
	} else if (bpf_skb_get_tunnel_key(skb, &tk, offsetof(struct bpf_tunnel_key, local_ipv4),
					  0)) {
		return -1;
	}

	dp_ct_key_of(p, &fwd_key);
	fwd.created_ns = fwd.last_seen_ns = now;
	fwd.type = DP_CT_FWD;
	fwd.flags = DP_CT_F_TUN_IN;
	fwd.tcp_seen = p->tcp_flags;
	fwd.nat_addr = p->daddr;
	fwd.nat_port = p->dport;
	fwd.tun_addr = bpf_htonl(tk.remote_ipv4);

	rev_key.src = p->daddr;
	rev_key.dst = p->saddr;
	rev_key.sport = p->dport;
	rev_key.dport = p->sport;
	rev_key.proto = p->proto;
	rev.created_ns = rev.last_seen_ns = now;
	rev.type = DP_CT_REV;
	if (tk.tunnel_id & DP_VNI_DSR) {
		/* The ingress node's address as the tunnel's outer source is the
		 * frontend the client used (a NodePort on that node). */
		rev.flags = DP_CT_F_DSR;
		rev.nat_addr = fwd.tun_addr;
		rev.nat_port = tk.tunnel_id & DP_VNI_PORT_MASK;
	} else {
		rev.flags = DP_CT_F_TUN_BACK;
		rev.tun_addr = fwd.tun_addr;
		if (decapped) {
			/* Decapsulated here: replies are encapsulated here too,
			 * from the address the other node sent to, out of the
			 * interface it came in by. */
			rev.alt_addr = skb->cb[DP_CB_TUN_DADDR];
			rev.ifindex = skb->cb[DP_CB_TUN_IFINDEX];
		}
	}
	/* A racing CPU's entry (*winner) says the same: the flow is tracked. */
	return dp_ct_create(&fwd_key, &fwd, &rev_key, &rev, 0, &winner);
}

/* dp_untracked / dp_pre_dnat of a parsed packet.  Not inlined: the flow they
 * take stays off the frame the service code runs from. */
__attribute__((noinline)) int dp_untracked_pkt(struct __sk_buff *skb, __u32 hook,
					       const struct dp_pkt *p)
{
	struct dp_flow f;

	if (!p)
		return DP_V_DENY;
	dp_flow_of(p, &f);
	return dp_untracked(skb, hook, &f);
}

__attribute__((noinline)) int dp_pre_dnat_pkt(struct __sk_buff *skb, const struct dp_pkt *p)
{
	struct dp_flow f;

	if (!p)
		return TC_ACT_SHOT;
	dp_flow_of(p, &f);
	return dp_pre_dnat(skb, &f);
}

/* Whether the host interface a packet is on has policy.  Not inlined: its
 * key stays off the frame the service code runs from. */
__attribute__((noinline)) int dp_has_host_policy(struct __sk_buff *skb)
{
	__u32 ifindex;

	if (!skb)
		return 0;
	ifindex = skb->ifindex;
	return bpf_map_lookup_elem(&dp_ifpol, &ifindex) != 0;
}

/* ``host_policy``: at a host hook, whether its interface has policy (0 at
 * the other hooks); doNotTrack and preDNAT policy exist only there, and
 * policy at that hook returns at once without (DP_CB_HOST_UNPOLICED). */
static __always_inline int dp_services(struct __sk_buff *skb, __u32 hook,
				       int decapped, int host_policy)
{
	struct dp_ct_key key = {};
	struct dp_ct_value *ct;
	struct dp_globals *g;
	struct dp_pkt p = {};
	int untracked = DP_V_NONE;
	__u64 now;

	if (dp_parse(skb, &p))
		return dp_policy_skb(skb, hook);
	g = dp_globals_get();
	if (!g)
		return TC_ACT_OK;
	if (hook == DP_HOOK_FROM_TUN)
		dp_clamp_syn(skb, &p, g); /* the backend node's MTU may be the smaller */
	if (host_policy)
		untracked = dp_untracked_pkt(skb, hook, &p);
	if (untracked == DP_V_DENY)
		return TC_ACT_SHOT;
	skb->cb[DP_CB_EARLY] = (untracked == DP_V_ALLOW ? DP_PCT_EARLY_UNTRACKED : 0) |
			       (host_policy ? 0 : DP_CB_HOST_UNPOLICED);

	dp_ct_key_of(&p, &key);
	ct = bpf_map_lookup_elem(&dp_ct, &key);
	/* The clock is read only where a flow is tracked or may be (most
	 * packets a node forwards are neither). */
	if (ct && !dp_ct_stale(ct, &p, now = bpf_ktime_get_coarse_ns())) {
		dp_ct_touch(ct, &p, now);
		if (ct->type == DP_CT_FWD)
			return dp_forward(skb, &p, ct, g, hook);
		return dp_reply(skb, &p, ct, g, hook);
	}
	if (hook == DP_HOOK_FROM_TUN) {
		if (dp_tunnel_in(skb, &p, bpf_ktime_get_coarse_ns(), decapped))
			return TC_ACT_SHOT;
		ct = bpf_map_lookup_elem(&dp_ct, &key);
		if (!ct)
			return TC_ACT_SHOT;
		return dp_forward(skb, &p, ct, g, hook);
	}
	if (hook == DP_HOOK_FROM_HEP && host_policy && untracked != DP_V_ALLOW &&
	    dp_pre_dnat_pkt(skb, &p) != TC_ACT_OK)
		return TC_ACT_SHOT;
	return dp_new_flow(skb, &p, g, hook, ct);
}

/* The verdict a program hands the kernel.  "Pass to the stack" becomes
 * TC_ACT_UNSPEC (TCX_NEXT) while the agent allows it (DP_G_PASS_ON), so the
 * hook's later programs and clsact filters, other tools' included, still see
 * the packet; TC_ACT_OK would end the hook there.  Redirects and drops end
 * it either way.  The agent clears the flag while it moves an interface
 * between TCX and clsact: then the new attachment's verdict ends the hook,
 * and the old one, still attached after it, never acts on the same packet. */
static __always_inline int dp_exit(int verdict)
{
	struct dp_globals *g;

	if (verdict != TC_ACT_OK)
		return verdict;
	g = dp_globals_get();
	return g && (g->flags & DP_G_PASS_ON) ? TC_ACT_UNSPEC : TC_ACT_OK;
}

SEC("tc")
int dp_from_wep(struct __sk_buff *skb)
{
	return dp_exit(dp_services(skb, DP_HOOK_FROM_WEP, 0, 0));
}

SEC("tc")
int dp_to_wep(struct __sk_buff *skb)
{
	/* Replies were translated where they entered the node: only the
	 * pod's ingress policy runs here. */
	return dp_exit(dp_policy_skb(skb, DP_HOOK_TO_WEP));
}

SEC("tc")
int dp_from_hep(struct __sk_buff *skb)
{
	/* A packet the programs decapsulated continues as if from the VXLAN device. */
	if (dp_decap(skb) > 0)
		return dp_exit(dp_services(skb, DP_HOOK_FROM_TUN, 1, 0));
	return dp_exit(dp_services(skb, DP_HOOK_FROM_HEP, 0, dp_has_host_policy(skb)));
}

/* A packet leaving through a host interface without host endpoint policy
 * that the programs are done with: one a local pod sent (dp_from_wep
 * translated and judged it where it left the pod; replies it
 * reverse-translated no longer carry a pod's source), or a VXLAN packet of
 * the NodePort tunnel (encapsulated after its inner packet was handled where
 * it entered the node).  Saves the conntrack and frontend misses of every
 * such packet, and keeps the tunnel's own packets out of service NAT. */
static __always_inline int dp_egress_done(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct dp_globals *g;
	struct dp_wep_key k;
	struct iphdr ip;
	__be16 dport;

	/* Looked up inline here (the common exit); dp_services, the rarer
	 * path, asks dp_has_host_policy again. */
	if (dp_read_iph(skb, &ip) || bpf_map_lookup_elem(&dp_ifpol, &ifindex))
		return 0;
	/* The tunnel's packets first: told from their header, without a lookup. */
	if (ip.protocol == IPPROTO_UDP && !(ip.frag_off & bpf_htons(DP_IP_MF | DP_IP_OFFSET))) {
		g = dp_globals_get();
		if (g && g->vxlan_port &&
		    !bpf_skb_load_bytes(skb, ETH_HLEN + ip.ihl * 4 + offsetof(struct udphdr, dest),
					&dport, sizeof(dport)) &&
		    dport == bpf_htons(g->vxlan_port))
			return 1;
	}
	k.addr = ip.saddr;
	return bpf_map_lookup_elem(&dp_wep, &k) != 0;
}

SEC("tc")
int dp_to_hep(struct __sk_buff *skb)
{
	if (dp_egress_done(skb))
		return dp_exit(TC_ACT_OK);
	return dp_exit(dp_services(skb, DP_HOOK_TO_HEP, 0, dp_has_host_policy(skb)));
}

SEC("tc")
int dp_from_tun(struct __sk_buff *skb)
{
	return dp_exit(dp_services(skb, DP_HOOK_FROM_TUN, 0, 0));
}

char LICENSE[] SEC("license") = "Apache-2.0";

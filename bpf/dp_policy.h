/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Network policy: prebuilt code that interprets per-endpoint rule programs
 * held in maps (dp_ifpol -> dp_rules, IP sets in dp_ipset), so a policy
 * change is a map write, never new code.
 *
 * Where checks happen (calc/trace.py is the reference):
 *   workload veth, TC ingress   the pod's egress chain, then for traffic to
 *                               this host the endpoint-to-host chain
 *   workload veth, TC egress    the pod's ingress chain
 *   host interface, TC ingress  failsafes, doNotTrack (every packet), preDNAT
 *                               (new flows, before NAT), then host ingress or
 *                               applyOnForward ingress (skipped after an
 *                               explicit doNotTrack/preDNAT allow)
 *   host interface, TC egress   failsafes, doNotTrack, then host egress or
 *                               applyOnForward egress
 *
 * A verdict is computed for a flow's first packet and kept in dp_pct with
 * the interface's policy generation; later packets (both directions) cost
 * one lookup there plus one in dp_ifpol, and a changed generation (new
 * program, changed IP set) makes the next packet re-evaluate, so a revoked
 * permission stops an established flow.
 */
#ifndef DP_POLICY_H
#define DP_POLICY_H

#include "dp_conntrack.h"
#include "dp_nat.h"

#define DP_IPPROTO_ICMP 1
#define DP_ICMP_ECHO_REPLY 0
#define DP_ICMP_ECHO 8

/* Verdicts of a program: no verdict (no program, or a CONTINUE end). */
#define DP_V_NONE 0
#define DP_V_ALLOW 1
#define DP_V_DENY 2

/* Hooks: where a program runs.  TC ingress hooks see packets entering the node. */
#define DP_HOOK_FROM_WEP 1
#define DP_HOOK_FROM_HEP 2
#define DP_HOOK_TO_HEP 3
#define DP_HOOK_FROM_TUN 4
#define DP_HOOK_TO_WEP 5

/* skb->cb slot (dataplane.c keeps tunnel facts in 0-3): at a host interface's
 * TC ingress, DP_PCT_EARLY_* for the packet being handled -- its doNotTrack
 * ingress policy, or (first packets) its preDNAT policy, explicitly allowed
 * it, so that interface's normal ingress policy is skipped.  Set for every
 * packet there before policy runs (cb is not zeroed for us). */
#define DP_CB_EARLY 4
/* Also in skb->cb[DP_CB_EARLY]: the packet's host interface has no policy
 * (dp_services looked), so policy at its host hook has nothing to check. */
#define DP_CB_HOST_UNPOLICED (1U << 7)
#define DP_CB_EARLY_MASK (DP_PCT_EARLY_UNTRACKED | DP_PCT_EARLY_PRE_DNAT)

static __always_inline int dp_hook_is_ingress(__u32 hook)
{
	return hook == DP_HOOK_FROM_WEP || hook == DP_HOOK_FROM_HEP || hook == DP_HOOK_FROM_TUN;
}

/* A packet as policy sees it, in the direction of the flow being judged. */
struct dp_flow {
	__be32 saddr;
	__be32 daddr;
	__u16 sport;     /* ICMP echo: the identifier, so both directions pair up */
	__u16 dport;
	__u8 proto;
	__u8 has_ports;  /* TCP/UDP/SCTP: rules' ports apply */
	__u8 icmp;       /* ICMP: icmp_type/code are valid */
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 tcp_flags;
	__u8 pad[2];
};

static __always_inline void dp_flow_of(const struct dp_pkt *p, struct dp_flow *f)
{
	__builtin_memset(f, 0, sizeof(*f));
	f->saddr = p->saddr;
	f->daddr = p->daddr;
	f->sport = p->sport;
	f->dport = p->dport;
	f->proto = p->proto;
	f->has_ports = 1;
	f->tcp_flags = p->tcp_flags;
}

/* Any IPv4 packet (the service parser only takes TCP/UDP/SCTP first
 * fragments).  Returns -1 for what policy does not judge: non-IPv4, and
 * fragments after the first (useless without it, which was judged). */
static __always_inline int dp_flow_parse(struct __sk_buff *skb, struct dp_flow *f)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct iphdr ip;
	__u16 l4[2];
	__u16 off;
	__u8 *th;

	__builtin_memset(f, 0, sizeof(*f));
	if (dp_read_iph(skb, &ip))
		return -1;
	if (ip.frag_off & bpf_htons(DP_IP_OFFSET))
		return -1;
	f->saddr = ip.saddr;
	f->daddr = ip.daddr;
	f->proto = ip.protocol;
	off = ETH_HLEN + ip.ihl * 4;
	if (ip.protocol == IPPROTO_TCP || ip.protocol == IPPROTO_UDP ||
	    ip.protocol == IPPROTO_SCTP) {
		th = data + ETH_HLEN + ip.ihl * 4;
		if (th + sizeof(struct tcphdr) > (__u8 *)end)
			th = 0;
		if (th)
			__builtin_memcpy(l4, th, sizeof(l4));
		else if (bpf_skb_load_bytes(skb, off, l4, sizeof(l4)))
			return 0; /* truncated: judged without ports */
		f->sport = bpf_ntohs(l4[0]);
		f->dport = bpf_ntohs(l4[1]);
		f->has_ports = 1;
		if (ip.protocol == IPPROTO_TCP) {
			__u8 flags;

			if (th)
				f->tcp_flags = th[13] & (DP_TCP_FIN | DP_TCP_SYN | DP_TCP_RST | DP_TCP_ACK);
			else if (!bpf_skb_load_bytes(skb, off + 13, &flags, 1))
				f->tcp_flags = flags & (DP_TCP_FIN | DP_TCP_SYN | DP_TCP_RST | DP_TCP_ACK);
		}
	} else if (ip.protocol == DP_IPPROTO_ICMP) {
		__u8 hdr[6];

		if (bpf_skb_load_bytes(skb, off, hdr, sizeof(hdr)))
			return 0;
		f->icmp = 1;
		f->icmp_type = hdr[0];
		f->icmp_code = hdr[1];
		if (hdr[0] == DP_ICMP_ECHO)
			f->sport = (hdr[4] << 8) | hdr[5];
		else if (hdr[0] == DP_ICMP_ECHO_REPLY)
			f->dport = (hdr[4] << 8) | hdr[5];
	}
	return 0;
}

static __always_inline void dp_flow_reverse(struct dp_flow *f)
{
	__be32 addr = f->saddr;
	__u16 port = f->sport;

	f->saddr = f->daddr;
	f->daddr = addr;
	f->sport = f->dport;
	f->dport = port;
}

/* ------------------------------------------------------------ rule matching */

static __always_inline int dp_set_has(__u32 set_id, __u8 proto, __u16 port, __be32 addr)
{
	struct dp_ipset_key k = {
		.prefixlen = 96, .set_id = set_id, .port = port, .proto = proto, .addr = addr,
	};

	return bpf_map_lookup_elem(&dp_ipset, &k) != 0;
}

static __always_inline int dp_rule_match(const struct dp_rule *r, const struct dp_flow *f)
{
	__u8 present = r->port_groups, matched = 0, named = r->named_groups;
	int i;

	if (r->flags & DP_R_NEVER)
		return 0;
	if (r->proto && r->proto != f->proto)
		return 0;
	if (r->not_proto && r->not_proto == f->proto)
		return 0;
	if (r->flags & DP_R_ICMP_TYPE) {
		if (!f->icmp || f->icmp_type != r->icmp_type)
			return 0;
		if ((r->flags & DP_R_ICMP_CODE) && f->icmp_code != r->icmp_code)
			return 0;
	}
	if ((r->flags & DP_R_NOT_ICMP_TYPE) && f->icmp && f->icmp_type == r->not_icmp_type &&
	    (!(r->flags & DP_R_NOT_ICMP_CODE) || f->icmp_code == r->not_icmp_code))
		return 0;

	if (present && f->has_ports) {
#pragma unroll
		for (i = 0; i < DP_RULE_PORTS; i++) {
			__u8 role = r->port_role[i];
			__u16 port;

			if (!role)
				break;
			port = role <= 2 ? f->sport : f->dport;
			if (port >= r->port_first[i] && port <= r->port_last[i])
				matched |= 1U << (role - 1);
		}
	}
	/* Cheap checks first: a port group that cannot match any more. */
	if (present & (DP_PG_SRC | DP_PG_DST) & ~matched & ~named)
		return 0;
	if (matched & (DP_PG_NOT_SRC | DP_PG_NOT_DST))
		return 0;

#pragma unroll
	for (i = 0; i < DP_RULE_SETS; i++) {
		__u8 role = r->set_role[i];
		__u32 id = r->set_id[i];
		__u8 group;

		if (!role)
			break;
		switch (role) {
		case DP_SET_SRC:
			if (!dp_set_has(id, 0, 0, f->saddr))
				return 0;
			continue;
		case DP_SET_NOT_SRC:
			if (dp_set_has(id, 0, 0, f->saddr))
				return 0;
			continue;
		case DP_SET_DST:
			if (!dp_set_has(id, 0, 0, f->daddr))
				return 0;
			continue;
		case DP_SET_NOT_DST:
			if (dp_set_has(id, 0, 0, f->daddr))
				return 0;
			continue;
		}
		group = 1U << (role - DP_SET_SRC_PORT);
		if ((matched & group) || !f->has_ports)
			continue;
		if (role <= DP_SET_NOT_SRC_PORT) {
			if (dp_set_has(id, f->proto, f->sport, f->saddr))
				matched |= group;
		} else if (dp_set_has(id, f->proto, f->dport, f->daddr)) {
			matched |= group;
		}
	}
	if (present & (DP_PG_SRC | DP_PG_DST) & ~matched)
		return 0;
	return !(matched & (DP_PG_NOT_SRC | DP_PG_NOT_DST));
}

/* ------------------------------------------------------------ programs */

struct dp_eval {
	struct dp_flow f;
	__u32 base;
	__u32 len;
	__u32 next;
	__u32 verdict;
};

static __always_inline void dp_rule_hit(__u32 idx)
{
	struct dp_rule_hit *h = bpf_map_lookup_elem(&dp_rule_hits, &idx);

	if (h)
		h->packets++;
}

/* One instruction; bpf_loop() calls it until it returns 1.  Jumps only go
 * forward, so DP_MAX_RULES steps finish any program. */
static long dp_eval_step(__u32 n, void *data)
{
	struct dp_eval *e = data;
	struct dp_rule *r;
	__u32 idx;

	(void)n;
	if (e->next >= e->len)
		return 1;
	idx = e->base + e->next;
	r = bpf_map_lookup_elem(&dp_rules, &idx);
	if (!r) {
		e->verdict = DP_V_DENY; /* a program outside the map: fail closed */
		return 1;
	}
	if (!dp_rule_match(r, &e->f)) {
		e->next++;
		return 0;
	}
	dp_rule_hit(idx);
	switch (r->action) {
	case DP_ACT_DENY:
		e->verdict = DP_V_DENY;
		return 1;
	case DP_ACT_ALLOW:
		e->verdict = DP_V_ALLOW;
		e->next = r->jump;
		return 0;
	case DP_ACT_PASS:
		e->next = r->jump;
		return 0;
	default: /* DP_ACT_LOG */
		e->next++;
		return 0;
	}
}

/* Evaluate one chain of an interface.  A global function: verified once, and
 * its loop state stays off the callers' stack frames. */
__attribute__((noinline)) int dp_run(const struct dp_ifpol *ifp, __u32 chain,
				     const struct dp_flow *f)
{
	struct dp_eval e = {};

	if (!ifp || !f || chain >= DP_CH_MAX)
		return DP_V_DENY;
	/* Bound the register the load uses (clang checks a copy otherwise). */
	asm volatile("%0 &= 7" : "+r"(chain));
	e.len = ifp->len[chain];
	if (!e.len)
		return DP_V_NONE;
	e.base = ifp->base[chain];
	e.f = *f;
	dp_count(DP_CNT_POLICY_EVAL);
	bpf_loop(DP_MAX_RULES, dp_eval_step, &e, 0);
	return e.verdict;
}

/* ------------------------------------------------------------ failsafes */

static __always_inline int dp_is_failsafe(__u8 dir, __u8 proto, __u16 port, __be32 peer)
{
	struct dp_failsafe_key k = {
		.prefixlen = 64, .dir = dir, .proto = proto, .port = port, .addr = peer,
	};

	return bpf_map_lookup_elem(&dp_failsafe, &k) != 0;
}

/* A packet of a failsafe flow in either direction, seen on a host interface
 * (ingress: arriving; else leaving).  Stateless, for doNotTrack policy. */
static __always_inline int dp_failsafe_packet(const struct dp_flow *f, int ingress)
{
	if (!f->has_ports)
		return 0;
	if (ingress)
		return dp_is_failsafe(DP_FS_IN, f->proto, f->dport, f->saddr) ||
		       dp_is_failsafe(DP_FS_OUT, f->proto, f->sport, f->saddr);
	return dp_is_failsafe(DP_FS_OUT, f->proto, f->dport, f->daddr) ||
	       dp_is_failsafe(DP_FS_IN, f->proto, f->sport, f->daddr);
}

/* The doNotTrack verdict of a host interface's policy for ``f`` (arriving
 * if ``ingress``, else leaving); failsafe traffic has none. */
static __always_inline int dp_untracked_verdict(const struct dp_ifpol *ifp, int ingress,
						const struct dp_flow *f)
{
	__u32 chain = ingress ? DP_CH_UNTRACKED_FROM : DP_CH_UNTRACKED_TO;

	if (!ifp->len[chain] || dp_failsafe_packet(f, ingress))
		return DP_V_NONE;
	return dp_run(ifp, chain, f);
}

static __always_inline int dp_is_wep(__be32 addr)
{
	struct dp_wep_key k = { .addr = addr };

	return bpf_map_lookup_elem(&dp_wep, &k) != 0;
}

static __always_inline int dp_is_host(__be32 addr)
{
	return dp_classify(addr) == DP_CLASS_HOST;
}

/* ------------------------------------------------------------ checks */

/* The verdict of one check of a flow (oriented as its first packet) on one
 * interface: "in" where it entered the node, else where it leaves. */
static __always_inline int dp_check(const struct dp_ifpol *ifp, int in, const struct dp_flow *f)
{
	int v;

	if (ifp->kind == DP_IF_WORKLOAD) {
		if (!in)
			return dp_run(ifp, DP_CH_TO, f);
		v = dp_run(ifp, DP_CH_FROM, f);
		if (v == DP_V_DENY)
			return v;
		if (dp_is_host(f->daddr) && !dp_is_wep(f->daddr))
			return dp_run(ifp, DP_CH_TO_HOST, f);
		return v;
	}
	if (in) {
		if (dp_is_host(f->daddr) && !dp_is_wep(f->daddr)) {
			if (f->has_ports && dp_is_failsafe(DP_FS_IN, f->proto, f->dport, f->saddr))
				return DP_V_ALLOW;
			return dp_run(ifp, DP_CH_FROM, f);
		}
		return dp_run(ifp, DP_CH_FROM_FWD, f);
	}
	if (dp_is_wep(f->daddr))
		return DP_V_NONE; /* to a local pod: its own ingress policy decides */
	if (dp_is_host(f->saddr)) {
		if (f->has_ports && dp_is_failsafe(DP_FS_OUT, f->proto, f->dport, f->daddr))
			return DP_V_ALLOW;
		return dp_run(ifp, DP_CH_TO, f);
	}
	return dp_run(ifp, DP_CH_TO_FWD, f);
}

static __always_inline int dp_pct_stale(const struct dp_pct_value *v, const struct dp_flow *f,
					__u64 now)
{
	__u64 timeout;

	if (f->proto == IPPROTO_TCP) {
		if ((f->tcp_flags & (DP_TCP_SYN | DP_TCP_ACK)) == DP_TCP_SYN &&
		    (v->tcp_seen & (DP_TCP_FIN | DP_TCP_RST)))
			return 1;
		if (v->tcp_seen & DP_TCP_RST)
			timeout = dp_cfg.ct_reset_seen_ns;
		else if (v->tcp_seen & DP_TCP_FIN)
			timeout = dp_cfg.ct_fins_seen_ns;
		else if (v->tcp_seen & DP_TCP_ACK)
			timeout = dp_cfg.ct_established_ns;
		else
			timeout = dp_cfg.ct_syn_sent_ns;
	} else if (f->proto == IPPROTO_UDP) {
		timeout = dp_cfg.ct_udp_ns;
	} else {
		timeout = dp_cfg.ct_generic_ns;
	}
	return now - v->last_seen_ns > timeout;
}

/* Canonical key; returns 1 if the packet's source is the key's dst. */
static __always_inline int dp_pct_key_of(const struct dp_flow *f, struct dp_ct_key *k)
{
	int swap = f->saddr > f->daddr || (f->saddr == f->daddr && f->sport > f->dport);

	__builtin_memset(k, 0, sizeof(*k));
	k->src = swap ? f->daddr : f->saddr;
	k->dst = swap ? f->saddr : f->daddr;
	k->sport = swap ? f->dport : f->sport;
	k->dport = swap ? f->sport : f->dport;
	k->proto = f->proto;
	return swap;
}

/* A packet leaving through an egress hook after reverse NAT (a reply of a
 * service flow) carries the frontend, not the backend policy judged: find
 * the flow's FWD entry and see the packet as it was before reverse NAT. */
static __always_inline int dp_untranslate(struct dp_flow *f)
{
	struct dp_ct_key k = {
		.src = f->daddr, .dst = f->saddr, .sport = f->dport, .dport = f->sport,
		.proto = f->proto,
	};
	struct dp_ct_value *fwd = bpf_map_lookup_elem(&dp_ct, &k);

	if (!fwd || fwd->type != DP_CT_FWD || !fwd->nat_addr)
		return -1;
	f->saddr = fwd->nat_addr;
	f->sport = fwd->nat_port;
	if (fwd->flags & DP_CT_F_HAIRPIN)
		f->daddr = fwd->alt_addr;
	return 0;
}

/* The policy of the interface the packet is on, for a packet whose
 * translation (if any) is done (``pf``: as the packet now is, after DNAT,
 * before reverse NAT).  TC_ACT_OK to go on, TC_ACT_SHOT to drop.
 *
 * ``ifindex``: the interface whose hook this is (the packet's own, except for
 * a packet redirected into a pod, which skips the pod interface's TC egress).
 *
 * The entry points here are global functions: the verifier checks each once,
 * on its own, instead of once per call site in every program (which would
 * multiply the states of the NAT paths by those of policy). */
__attribute__((noinline)) int dp_policy_at(struct __sk_buff *skb, __u32 hook, __u32 ifindex,
					   const struct dp_flow *pf)
{
	struct dp_pct_value *ct, *stale = 0, fresh = {};
	struct dp_ifpol *ifp;
	struct dp_ct_key key;
	struct dp_flow f;
	int swapped, reply = 0, in, v;
	__u8 tcp_flags, early = 0;
	__u64 now;

	if (!skb || !pf)
		return TC_ACT_SHOT;
	ifp = bpf_map_lookup_elem(&dp_ifpol, &ifindex);
	if (!ifp)
		return TC_ACT_OK;
	f = *pf;
	tcp_flags = f.tcp_flags;
	now = bpf_ktime_get_coarse_ns();
	swapped = dp_pct_key_of(&f, &key);
	ct = bpf_map_lookup_elem(&dp_pct, &key);
	/* A packet redirected into a pod (ifindex is not its own) comes with
	 * its flow as policy judges it: nothing to untranslate. */
	if (!ct && !dp_hook_is_ingress(hook) && ifindex == skb->ifindex &&
	    dp_untranslate(&f) == 0) {
		swapped = dp_pct_key_of(&f, &key);
		ct = bpf_map_lookup_elem(&dp_pct, &key);
	}
	if (ct && dp_pct_stale(ct, &f, now)) {
		stale = ct; /* rewritten in place below (see dp_ct_create) */
		ct = 0;
	}
	if (ct)
		reply = swapped != ct->opener;
	in = dp_hook_is_ingress(hook) ^ reply;

	if (ct) {
		__u32 slot_if = in ? ct->in_ifindex : ct->out_ifindex;
		__u32 slot_gen = in ? ct->in_gen : ct->out_gen;
		__u8 deny_bit = in ? DP_PCT_IN_DENY : DP_PCT_OUT_DENY;

		if (slot_if == ifindex && slot_gen == ifp->gen) {
			if (ct->deny & deny_bit)
				goto drop;
			if (now - ct->last_seen_ns > DP_CT_TOUCH_NS)
				ct->last_seen_ns = now;
			if ((ct->tcp_seen | tcp_flags) != ct->tcp_seen)
				ct->tcp_seen |= tcp_flags;
			return TC_ACT_OK;
		}
	}

	if (reply)
		dp_flow_reverse(&f);
	if (in && ifp->kind == DP_IF_HOST) {
		/* An explicit doNotTrack/preDNAT allow skips the normal check. */
		early = ct ? ct->early : 0;
		if (hook == DP_HOOK_FROM_HEP) /* this packet's doNotTrack verdict is current */
			early = (early & DP_PCT_EARLY_PRE_DNAT) |
				(skb->cb[DP_CB_EARLY] & DP_CB_EARLY_MASK);
		else if (early & DP_PCT_EARLY_UNTRACKED)
			/* Another packet's verdict, maybe under a doNotTrack
			 * policy since revoked: recorded now, under the new
			 * generation, it would let the flow's packets from the
			 * network skip the normal policy for good.  Ask the
			 * interface's doNotTrack policy again, for the flow as
			 * its opener sends it (``f``, oriented so by now). */
			early = (early & DP_PCT_EARLY_PRE_DNAT) |
				(dp_untracked_verdict(ifp, 1, &f) == DP_V_ALLOW ?
					 DP_PCT_EARLY_UNTRACKED : 0);
	}
	v = early ? DP_V_ALLOW : dp_check(ifp, in, &f);

	if (ct) {
		__u8 deny_bit = in ? DP_PCT_IN_DENY : DP_PCT_OUT_DENY;

		if (in) {
			ct->in_ifindex = ifindex;
			ct->in_gen = ifp->gen;
			ct->early = early;
		} else {
			ct->out_ifindex = ifindex;
			ct->out_gen = ifp->gen;
		}
		if (v == DP_V_DENY)
			ct->deny |= deny_bit;
		else
			ct->deny &= ~deny_bit;
		ct->last_seen_ns = now;
		ct->tcp_seen |= tcp_flags;
	} else if (v != DP_V_DENY) {
		fresh.last_seen_ns = now;
		fresh.opener = swapped;
		fresh.tcp_seen = tcp_flags;
		if (in) {
			fresh.in_ifindex = ifindex;
			fresh.in_gen = ifp->gen;
			fresh.early = early;
		} else {
			fresh.out_ifindex = ifindex;
			fresh.out_gen = ifp->gen;
		}
		if (stale)
			*stale = fresh;
		else if (bpf_map_update_elem(&dp_pct, &key, &fresh, BPF_ANY))
			dp_count(DP_CNT_CT_FULL);
	}
	if (v != DP_V_DENY)
		return TC_ACT_OK;
drop:
	dp_count(DP_CNT_POLICY_DENY);
	return TC_ACT_SHOT;
}

static __always_inline int dp_policy_flow(struct __sk_buff *skb, __u32 hook,
					  const struct dp_flow *f)
{
	if ((hook == DP_HOOK_FROM_HEP || hook == DP_HOOK_TO_HEP) &&
	    (skb->cb[DP_CB_EARLY] & DP_CB_HOST_UNPOLICED))
		return TC_ACT_OK;
	return dp_policy_at(skb, hook, skb->ifindex, f);
}

/* doNotTrack policy of a host interface: every packet, before conntrack
 * (failsafe traffic excepted, both directions).  Returns the verdict:
 * DENY drops, ALLOW also skips preDNAT (and, ingress, the normal policy:
 * the caller records it in DP_CB_EARLY), NONE goes on. */
__attribute__((noinline)) int dp_untracked(struct __sk_buff *skb, __u32 hook,
					   const struct dp_flow *f)
{
	int ingress = hook == DP_HOOK_FROM_HEP;
	struct dp_ifpol *ifp;
	__u32 ifindex;
	int v;

	if (!skb || !f)
		return DP_V_DENY;
	if (hook != DP_HOOK_FROM_HEP && hook != DP_HOOK_TO_HEP)
		return DP_V_NONE;
	ifindex = skb->ifindex;
	ifp = bpf_map_lookup_elem(&dp_ifpol, &ifindex);
	if (!ifp || ifp->kind != DP_IF_HOST)
		return DP_V_NONE;
	v = dp_untracked_verdict(ifp, ingress, f);
	if (v == DP_V_DENY)
		dp_count(DP_CNT_POLICY_DENY);
	return v;
}

/* preDNAT policy of a host interface: the first packet of a flow arriving
 * from the network, before service NAT (so NodePorts can be filtered by the
 * address the client used).  A deny drops; an allow goes on but skips the
 * interface's normal ingress policy (DP_CB_EARLY); no verdict goes on. */
__attribute__((noinline)) int dp_pre_dnat(struct __sk_buff *skb, const struct dp_flow *f)
{
	struct dp_ifpol *ifp;
	struct dp_ct_key key;
	__u32 ifindex;
	int v;

	if (!skb || !f)
		return TC_ACT_SHOT;
	ifindex = skb->ifindex;
	ifp = bpf_map_lookup_elem(&dp_ifpol, &ifindex);
	if (!ifp || ifp->kind != DP_IF_HOST || !ifp->len[DP_CH_PRE_DNAT])
		return TC_ACT_OK;
	dp_pct_key_of(f, &key);
	if (bpf_map_lookup_elem(&dp_pct, &key))
		return TC_ACT_OK; /* a known flow (e.g. a reply) */
	if (f->has_ports && dp_is_host(f->daddr) &&
	    dp_is_failsafe(DP_FS_IN, f->proto, f->dport, f->saddr))
		return TC_ACT_OK;
	v = dp_run(ifp, DP_CH_PRE_DNAT, f);
	if (v == DP_V_DENY) {
		dp_count(DP_CNT_POLICY_DENY);
		return TC_ACT_SHOT;
	}
	if (v == DP_V_ALLOW)
		skb->cb[DP_CB_EARLY] |= DP_PCT_EARLY_PRE_DNAT;
	return TC_ACT_OK;
}

/* Packets the service code does not parse (ICMP, other protocols): the
 * same checks, without NAT. */
static __always_inline int dp_policy_skb(struct __sk_buff *skb, __u32 hook)
{
	struct dp_flow f;
	int untracked;

	if (dp_flow_parse(skb, &f))
		return TC_ACT_OK;
	untracked = dp_untracked(skb, hook, &f);
	if (untracked == DP_V_DENY)
		return TC_ACT_SHOT;
	skb->cb[DP_CB_EARLY] = untracked == DP_V_ALLOW ? DP_PCT_EARLY_UNTRACKED : 0;
	if (hook == DP_HOOK_FROM_HEP && untracked != DP_V_ALLOW &&
	    dp_pre_dnat(skb, &f) != TC_ACT_OK)
		return TC_ACT_SHOT;
	return dp_policy_flow(skb, hook, &f);
}

#endif /* DP_POLICY_H */

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Keeping tunnelled packets inside the underlay's MTU.  VXLAN adds
 * DP_VXLAN_OVERHEAD bytes, so a full-size packet of the client would become
 * an outer packet the uplink must fragment (every segment in two, reassembled
 * on the backend's node: a tenth of the throughput).  Instead:
 *
 *   - the MSS option of TCP SYNs and SYN/ACKs of tunnelled flows is lowered
 *     to what fits (MTU - 50 - 40), where the tunnel is entered, left, and on
 *     DSR replies, so both ends send segments that fit from the start;
 *   - any other packet too big for the tunnel with DF set is answered with
 *     ICMP "fragmentation needed" carrying MTU - 50 (path MTU discovery), and
 *     dropped; without DF the kernel fragments the outer packet.
 *
 * The MTU is the smallest of the host interfaces', written to dp_globals by
 * the agent (read from the interfaces at every full sync).
 */
#ifndef DP_MTU_H
#define DP_MTU_H

#include "dp_packet.h"
#include "dp_reject.h"

#define DP_TCP_MAX_OPTS 40
#define DP_TCPOPT_EOL 0
#define DP_TCPOPT_NOP 1
#define DP_TCPOPT_MSS 2
#define DP_IP_TCP_HLEN 40 /* IPv4 + TCP headers without options: MSS = MTU - 40 */

/* The room inside the tunnel for one inner IP packet, 0: unknown (no checks). */
static __always_inline __u32 dp_tunnel_room(const struct dp_globals *g)
{
	return g->mtu > DP_VXLAN_OVERHEAD + 576 ? g->mtu - DP_VXLAN_OVERHEAD : 0;
}

struct dp_opt_walk {
	__u8 opt[DP_TCP_MAX_OPTS];
	__u32 len;  /* bytes of options */
	__u32 pos;  /* next option */
	__s32 mss;  /* offset of the MSS option, -1: none */
};

/* One TCP option; bpf_loop() calls it until it returns 1. */
static long dp_opt_step(__u32 n, void *data)
{
	struct dp_opt_walk *w = data;
	__u32 pos = w->pos;
	__u8 kind, len;

	(void)n;
	if (pos >= w->len || pos >= DP_TCP_MAX_OPTS - 1)
		return 1;
	kind = w->opt[pos];
	if (kind == DP_TCPOPT_EOL)
		return 1;
	if (kind == DP_TCPOPT_NOP) {
		w->pos = pos + 1;
		return 0;
	}
	len = w->opt[pos + 1];
	if (kind == DP_TCPOPT_MSS && len == 4) {
		w->mss = pos;
		return 1;
	}
	if (len < 2)
		return 1; /* malformed: leave it alone */
	w->pos = pos + len;
	return 0;
}

/* Lower the MSS option of the TCP SYN or SYN/ACK at ``l4_off`` to ``max_mss``
 * if it is higher.  Returns 1 if it was lowered.  A global function: verified
 * once, its scratch off the callers' frames. */
__attribute__((noinline)) int dp_clamp_mss(struct __sk_buff *skb, __u32 l4_off, __u32 max_mss)
{
	struct dp_opt_walk w = { .mss = -1 };
	__u8 doff;
	__be16 old, new;
	__u32 at, len;

	if (!skb || l4_off > 0xffff || max_mss > 0xffff)
		return 0;
	if (bpf_skb_load_bytes(skb, l4_off + 12, &doff, 1))
		return 0;
	len = (doff >> 4) * 4;
	if (len <= 20)
		return 0;
	len -= 20;
	if (len > DP_TCP_MAX_OPTS)
		return 0;
	w.len = len;
	if (bpf_skb_load_bytes(skb, l4_off + 20, w.opt, len))
		return 0;
	bpf_loop(DP_TCP_MAX_OPTS, dp_opt_step, &w, 0);
	if (w.mss < 0 || w.mss > DP_TCP_MAX_OPTS - 4 || (__u32)w.mss + 4 > w.len)
		return 0;
	at = w.mss;
	__builtin_memcpy(&old, &w.opt[at + 2], sizeof(old));
	if (bpf_ntohs(old) <= max_mss)
		return 0;
	new = bpf_htons(max_mss);
	if (bpf_l4_csum_replace(skb, l4_off + offsetof(struct tcphdr, check), old, new,
				sizeof(new)))
		return 0;
	if (bpf_skb_store_bytes(skb, l4_off + 20 + at + 2, &new, sizeof(new), 0))
		return 0;
	dp_count(DP_CNT_MSS_CLAMP);
	return 1;
}

/* TCP SYN or SYN/ACK entering, leaving or bypassing (DSR) the tunnel. */
static __always_inline void dp_clamp_syn(struct __sk_buff *skb, const struct dp_pkt *p,
					 const struct dp_globals *g)
{
	__u32 room = dp_tunnel_room(g);

	if (room && p->proto == IPPROTO_TCP && (p->tcp_flags & DP_TCP_SYN))
		dp_clamp_mss(skb, p->l4_off, room - DP_IP_TCP_HLEN);
}

#define DP_FITS (-1) /* dp_fit_tunnel: go on (no TC verdict is negative here) */

/* Before encapsulating (and before NAT, so an ICMP answer quotes what the
 * sender sent): clamp SYNs, answer packets that cannot fit.  Returns DP_FITS
 * to go on, else the packet's TC verdict. */
static __always_inline int dp_fit_tunnel(struct __sk_buff *skb, const struct dp_pkt *p,
					 const struct dp_globals *g, int egress)
{
	__u32 room = dp_tunnel_room(g);

	if (!room)
		return DP_FITS;
	dp_clamp_syn(skb, p, g);
	if (dp_wire_len(skb, p) <= room || !p->df)
		return DP_FITS; /* fits, or the outer packet may be fragmented */
	return dp_frag_needed(skb, p, room, egress);
}

#endif /* DP_MTU_H */

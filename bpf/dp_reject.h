/* SPDX-License-Identifier: Apache-2.0 */
/*
 * "No endpoints" REJECT, as kube-proxy does it: a TCP segment is answered
 * with a RST, anything else with ICMP port unreachable.  The packet is turned
 * into its own answer in place and sent back where it came from, so no
 * socket or netfilter is involved.
 */
#ifndef DP_REJECT_H
#define DP_REJECT_H

#include "dp_packet.h"

#define DP_REJECT_TTL 64
#define DP_ICMP_DEST_UNREACH 3
#define DP_ICMP_PORT_UNREACH 3
#define DP_ICMP_FRAG_NEEDED 4

/* <linux/icmp.h> drags in libc headers that do not build for -target bpf. */
struct dp_icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 unused;
};

struct dp_tcp_pseudo {
	__be32 saddr;
	__be32 daddr;
	__u8 zero;
	__u8 proto;
	__be16 len;
};

static __always_inline void dp_ip_reply_header(struct iphdr *ip, const struct iphdr *orig,
					       __u8 proto, __u16 tot_len)
{
	__builtin_memset(ip, 0, sizeof(*ip));
	ip->version = 4;
	ip->ihl = 5;
	ip->tot_len = bpf_htons(tot_len);
	ip->ttl = DP_REJECT_TTL;
	ip->protocol = proto;
	ip->saddr = orig->daddr;
	ip->daddr = orig->saddr;
	ip->check = dp_csum_fold(bpf_csum_diff(0, 0, (__be32 *)ip, sizeof(*ip), 0));
}

static __always_inline int dp_swap_eth(struct __sk_buff *skb)
{
	struct ethhdr eth;
	__u8 tmp[ETH_ALEN];

	if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)))
		return -1;
	__builtin_memcpy(tmp, eth.h_source, ETH_ALEN);
	__builtin_memcpy(eth.h_source, eth.h_dest, ETH_ALEN);
	__builtin_memcpy(eth.h_dest, tmp, ETH_ALEN);
	return bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), 0);
}

static __always_inline int dp_build_rst(struct __sk_buff *skb, const struct dp_pkt *p)
{
	struct iphdr orig, ip;
	struct tcphdr in, out;
	struct {
		struct dp_tcp_pseudo ph;
		struct tcphdr tcp;
	} sum = {};
	__u32 seglen;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &orig, sizeof(orig)) ||
	    bpf_skb_load_bytes(skb, p->l4_off, &in, sizeof(in)))
		return -1;
	if (in.rst)
		return -1; /* never answer a RST */
	seglen = bpf_ntohs(orig.tot_len) - sizeof(orig) - in.doff * 4 + in.syn + in.fin;

	__builtin_memset(&out, 0, sizeof(out));
	out.source = in.dest;
	out.dest = in.source;
	out.doff = 5;
	out.rst = 1;
	if (in.ack) {
		out.seq = in.ack_seq;
	} else {
		out.ack = 1;
		out.ack_seq = bpf_htonl(bpf_ntohl(in.seq) + seglen);
	}
	dp_ip_reply_header(&ip, &orig, IPPROTO_TCP, sizeof(ip) + sizeof(out));

	sum.ph.saddr = ip.saddr;
	sum.ph.daddr = ip.daddr;
	sum.ph.proto = IPPROTO_TCP;
	sum.ph.len = bpf_htons(sizeof(out));
	sum.tcp = out;
	out.check = dp_csum_fold(bpf_csum_diff(0, 0, (__be32 *)&sum, sizeof(sum), 0));

	if (bpf_skb_change_tail(skb, ETH_HLEN + sizeof(ip) + sizeof(out), 0))
		return -1;
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &ip, sizeof(ip), 0) ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + sizeof(ip), &out, sizeof(out), 0))
		return -1;
	return 0;
}

/* ICMP destination unreachable with ``code`` quoting the packet's IP header
 * and first 8 payload bytes; ``mtu`` is the next-hop MTU of "fragmentation
 * needed" (RFC 1191), 0 otherwise. */
static __always_inline int dp_build_icmp_unreach(struct __sk_buff *skb, __u8 code, __u16 mtu)
{
	struct {
		struct dp_icmphdr icmp;
		struct iphdr orig;
		__u8 l4[8];
	} msg = {};
	struct iphdr ip;
	__u16 len = sizeof(ip) + sizeof(msg);

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &msg.orig, sizeof(msg.orig) + sizeof(msg.l4)))
		return -1;
	msg.icmp.type = DP_ICMP_DEST_UNREACH;
	msg.icmp.code = code;
	msg.icmp.unused = bpf_htonl(mtu);
	msg.icmp.checksum = dp_csum_fold(bpf_csum_diff(0, 0, (__be32 *)&msg, sizeof(msg), 0));
	dp_ip_reply_header(&ip, &msg.orig, IPPROTO_ICMP, len);

	if (bpf_skb_change_tail(skb, ETH_HLEN + len, 0))
		return -1;
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &ip, sizeof(ip), 0) ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + sizeof(ip), &msg, sizeof(msg), 0))
		return -1;
	return 0;
}

/* Send a packet rewritten into its own answer back the way it came: out of
 * the interface it arrived on (ingress hooks) or into the host (egress hooks). */
static __always_inline int dp_send_back(struct __sk_buff *skb, int egress)
{
	if (dp_swap_eth(skb))
		return TC_ACT_SHOT;
	return bpf_redirect(skb->ifindex, egress ? BPF_F_INGRESS : 0);
}

/* Answer the packet and send the answer back the way it came. */
/* Not inlined: its scratch headers would otherwise sit in every program's
 * frame next to the policy call's (the verifier caps the combined stack). */
static __attribute__((noinline)) int dp_reject(struct __sk_buff *skb, const struct dp_pkt *p,
						int egress)
{
	int err;

	if (!p->ihl_is_5)
		return TC_ACT_SHOT; /* IP options: too rare to rebuild, drop */
	if (p->proto == IPPROTO_TCP)
		err = dp_build_rst(skb, p);
	else
		err = dp_build_icmp_unreach(skb, DP_ICMP_PORT_UNREACH, 0);
	if (err)
		return TC_ACT_SHOT;
	dp_count(DP_CNT_REJECT);
	return dp_send_back(skb, egress);
}

/* Path MTU discovery for a packet too big for the tunnel: answer "fragmentation
 * needed" with the MTU left inside the tunnel, and drop the packet. */
static __attribute__((noinline)) int dp_frag_needed(struct __sk_buff *skb, const struct dp_pkt *p,
						    __u32 mtu, int egress)
{
	dp_count(DP_CNT_TOO_BIG);
	if (!p || !p->ihl_is_5 || dp_build_icmp_unreach(skb, DP_ICMP_FRAG_NEEDED, mtu))
		return TC_ACT_SHOT;
	return dp_send_back(skb, egress);
}

#endif /* DP_REJECT_H */

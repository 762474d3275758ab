/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Packet parsing and in-place address/port rewriting.
 *
 * Parsing reads the headers in place when they are in the linear part (they
 * are, in practice), else copies them out with bpf_skb_load_bytes(): every
 * program parses every packet, and the helper calls were a measurable part of
 * their time.  Writes go through bpf_skb_store_bytes() plus the checksum
 * helpers, never through packet pointers: a program that writes directly
 * makes the kernel unclone every packet before it runs (TCP's are clones).
 */
#ifndef DP_PACKET_H
#define DP_PACKET_H

#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <stddef.h>
#include <bpf/bpf_endian.h>

#include "dp_maps.h"

#ifndef AF_INET
#define AF_INET 2 /* <sys/socket.h>'s, which a BPF build does not include */
#endif
#define DP_IP_DF 0x4000
#define DP_IP_MF 0x2000
#define DP_IP_OFFSET 0x1fff

/* What the programs need to know about one IPv4 packet. */
struct dp_pkt {
	__be32 saddr;
	__be32 daddr;
	__u16 sport;     /* host order */
	__u16 dport;     /* host order */
	__u16 l4_off;    /* offset of the L4 header from the start of the frame */
	__u16 csum_off;  /* offset of the L4 checksum, 0 if none to fix (SCTP) */
	__u8 proto;
	__u8 tcp_flags;  /* DP_TCP_* of this packet */
	__u8 csum_flags; /* BPF_F_MARK_MANGLED_0 for UDP (0 means "no checksum") */
	__u8 ihl_is_5;   /* no IP options: reject can rebuild the packet */
	__u8 df;         /* IPv4 don't-fragment bit */
	__u8 l4_hlen;    /* L4 header length (TCP: with options) */
};

static __always_inline void dp_count(__u32 idx)
{
	struct dp_counter *c = bpf_map_lookup_elem(&dp_counters, &idx);

	if (c)
		c->packets++;
}

/* Returns 0 for an IPv4 TCP/UDP/SCTP packet the service code can handle. */
/* The IPv4 header of an Ethernet packet, -1 if it is none.  The headers are
 * in the linear part (always, in practice): read in place; else copied out. */
static __always_inline int dp_read_iph(struct __sk_buff *skb, struct iphdr *ip)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return -1;
	if (data + ETH_HLEN + sizeof(*ip) <= end)
		__builtin_memcpy(ip, data + ETH_HLEN, sizeof(*ip));
	else if (bpf_skb_load_bytes(skb, ETH_HLEN, ip, sizeof(*ip)))
		return -1;
	return ip->version == 4 && ip->ihl >= 5 ? 0 : -1;
}

static __always_inline int dp_parse(struct __sk_buff *skb, struct dp_pkt *p)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct iphdr ip;
	__u16 ports[2];
	__u8 *l4;

	if (dp_read_iph(skb, &ip))
		return -1;
	if (ip.protocol != IPPROTO_TCP && ip.protocol != IPPROTO_UDP &&
	    ip.protocol != IPPROTO_SCTP)
		return -1;
	if (ip.frag_off & bpf_htons(DP_IP_MF | DP_IP_OFFSET)) {
		/* Later fragments carry no ports; translating only the first
		 * would split the datagram, so none is translated. */
		dp_count(DP_CNT_FRAGMENT);
		return -1;
	}
	p->saddr = ip.saddr;
	p->daddr = ip.daddr;
	p->proto = ip.protocol;
	p->ihl_is_5 = ip.ihl == 5;
	p->df = !!(ip.frag_off & bpf_htons(DP_IP_DF));
	p->l4_off = ETH_HLEN + ip.ihl * 4;
	l4 = data + ETH_HLEN + ip.ihl * 4;
	if (l4 + sizeof(struct tcphdr) > (__u8 *)end)
		l4 = 0; /* not all in place: copy */
	if (l4)
		__builtin_memcpy(ports, l4, sizeof(ports));
	else if (bpf_skb_load_bytes(skb, p->l4_off, ports, sizeof(ports)))
		return -1;
	p->sport = bpf_ntohs(ports[0]);
	p->dport = bpf_ntohs(ports[1]);
	p->tcp_flags = 0;
	p->csum_flags = 0;
	if (ip.protocol == IPPROTO_TCP) {
		__u8 off_flags[2]; /* data offset, flags */

		if (l4) {
			off_flags[0] = l4[12];
			off_flags[1] = l4[13];
		} else if (bpf_skb_load_bytes(skb, p->l4_off + 12, off_flags, sizeof(off_flags))) {
			return -1;
		}
		p->tcp_flags = off_flags[1] & (DP_TCP_FIN | DP_TCP_SYN | DP_TCP_RST | DP_TCP_ACK);
		p->l4_hlen = (off_flags[0] >> 4) * 4;
		p->csum_off = p->l4_off + offsetof(struct tcphdr, check);
	} else if (ip.protocol == IPPROTO_UDP) {
		p->l4_hlen = sizeof(struct udphdr);
		p->csum_off = p->l4_off + offsetof(struct udphdr, check);
		p->csum_flags = BPF_F_MARK_MANGLED_0;
	} else {
		p->l4_hlen = 12; /* SCTP common header */
		/* SCTP's CRC32c covers no pseudo header, so an address change
		 * needs no fix; see rewrite_port for ports. */
		p->csum_off = 0;
	}
	return 0;
}

/* Forwarding's TTL decrement, for packets the programs forward themselves
 * (the stack would have done it).  Returns -1 where the stack must take the
 * packet instead: TTL expiring (it answers "time exceeded"), or unreadable. */
static __always_inline int dp_dec_ttl(struct __sk_buff *skb)
{
	__u32 off = ETH_HLEN + offsetof(struct iphdr, ttl);
	__u16 old, new;
	__u8 ttl;

	if (bpf_skb_load_bytes(skb, off, &old, sizeof(old)))
		return -1;
	ttl = ((__u8 *)&old)[0];
	if (ttl <= 1)
		return -1;
	new = old;
	((__u8 *)&new)[0] = ttl - 1;
	if (bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), old, new,
				sizeof(new)))
		return -1;
	return bpf_skb_store_bytes(skb, off, &new, sizeof(new), 0) ? -1 : 0;
}

/* Rewrite the source (dst == 0) or destination address, fixing checksums. */
static __always_inline int dp_set_addr(struct __sk_buff *skb, struct dp_pkt *p, int dst,
				       __be32 addr)
{
	__be32 old = dst ? p->daddr : p->saddr;
	__u32 off = ETH_HLEN + (dst ? offsetof(struct iphdr, daddr) : offsetof(struct iphdr, saddr));

	if (old == addr)
		return 0;
	if (p->csum_off &&
	    bpf_l4_csum_replace(skb, p->csum_off, old, addr,
				BPF_F_PSEUDO_HDR | p->csum_flags | sizeof(addr)))
		return -1;
	if (bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), old, addr,
				sizeof(addr)))
		return -1;
	if (bpf_skb_store_bytes(skb, off, &addr, sizeof(addr), 0))
		return -1;
	if (dst)
		p->daddr = addr;
	else
		p->saddr = addr;
	return 0;
}

/* Rewrite the source (dst == 0) or destination port (host order). */
static __always_inline int dp_set_port(struct __sk_buff *skb, struct dp_pkt *p, int dst,
				       __u16 port)
{
	__be16 old = bpf_htons(dst ? p->dport : p->sport);
	__be16 new = bpf_htons(port);

	if (old == new)
		return 0;
	if (p->csum_off &&
	    bpf_l4_csum_replace(skb, p->csum_off, old, new, p->csum_flags | sizeof(new)))
		return -1;
	if (bpf_skb_store_bytes(skb, p->l4_off + (dst ? 2 : 0), &new, sizeof(new), 0))
		return -1;
	if (dst)
		p->dport = port;
	else
		p->sport = port;
	return 0;
}

static __always_inline __u16 dp_csum_fold(__s64 sum)
{
	__u32 s = (__u32)sum;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

/* The largest IP packet ``skb`` is on the wire: one segment of a GSO packet. */
static __always_inline __u32 dp_wire_len(struct __sk_buff *skb, const struct dp_pkt *p)
{
	__u32 gso = skb->gso_size;

	if (gso)
		return p->l4_off - ETH_HLEN + p->l4_hlen + gso;
	return skb->len - ETH_HLEN;
}

#endif /* DP_PACKET_H */

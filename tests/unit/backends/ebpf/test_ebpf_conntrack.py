"""Conntrack expiry as the agent's scan sees it: pairs joined, Calico's timeouts."""

from __future__ import annotations

import socket

from dataplane.backends.ebpf.maps import conntrack as ct
from dataplane.backends.ebpf.maps._map import pack_addr

S = 1_000_000_000
CLIENT, VIP, POD = pack_addr("10.100.0.2"), pack_addr("10.96.0.10"), pack_addr("10.100.1.2")


def pair(proto: int, seen_fwd: int, seen_rev: int, last: int, created: int = 0) -> list:  # type: ignore[type-arg]
    fwd_key = ct.CtKey(CLIENT, VIP, 40000, 80, proto)
    fwd = ct.CtValue(created, last, POD, 0, 0, 0, 8080, 0, ct.TYPE_FWD, 0, seen_fwd)
    rev_key = ct.CtKey(POD, CLIENT, 8080, 40000, proto)
    rev = ct.CtValue(created, last, VIP, 0, 0, 0, 80, 0, ct.TYPE_REV, 0, seen_rev)
    return [(fwd_key, fwd), (rev_key, rev)]


def expired(entries: list, now: int) -> set[tuple[int, int]]:  # type: ignore[type-arg]
    return {(k.src, k.sport) for k in ct.expired_pairs(entries, now * S, ct.Timeouts())}


TCP, UDP = socket.IPPROTO_TCP, socket.IPPROTO_UDP
SA = ct.TCP_SYN | ct.TCP_ACK


def test_established_tcp_lives_an_hour() -> None:
    entries = pair(TCP, SA, SA, last=0)
    assert expired(entries, 3599) == set()
    assert expired(entries, 3601) == {(CLIENT, 40000), (POD, 8080)}


def test_unanswered_syn_goes_after_20s() -> None:
    entries = pair(TCP, ct.TCP_SYN, 0, last=0)
    assert expired(entries, 19) == set()
    assert len(expired(entries, 21)) == 2


def test_fin_and_rst_shorten_the_timeout() -> None:
    assert len(expired(pair(TCP, SA | ct.TCP_FIN, SA, last=0), 31)) == 2
    assert expired(pair(TCP, SA | ct.TCP_RST, SA, last=0), 39) == set()
    assert len(expired(pair(TCP, SA | ct.TCP_RST, SA, last=0), 41)) == 2


def test_udp_uses_the_later_direction() -> None:
    entries = pair(UDP, 0, 0, last=0)
    entries[1][1].last_seen_ns = 50 * S  # the reply direction was active later
    assert expired(entries, 100) == set()
    assert len(expired(entries, 111)) == 2


def test_young_entries_and_orphans() -> None:
    young = pair(TCP, ct.TCP_SYN, 0, last=0, created=95 * S)
    assert expired(young, 100) == set()  # creation grace period
    orphan = pair(UDP, 0, 0, last=99 * S)[1:]  # a REV whose FWD is gone
    assert expired(orphan, 100) == {(POD, 8080)}


def test_hairpin_reverse_key() -> None:
    fwd_key = ct.CtKey(CLIENT, VIP, 40000, 80, TCP)
    fwd = ct.CtValue(0, 0, CLIENT, 0, VIP, 0, 8080, 0, ct.TYPE_FWD, ct.F_HAIRPIN, 0)
    rev = ct.reverse_key(fwd_key, fwd)
    assert (rev.src, rev.dst, rev.sport, rev.dport) == (CLIENT, VIP, 8080, 40000)

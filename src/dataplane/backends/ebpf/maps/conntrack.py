"""``dp_ct``: conntrack of NATed flows (LRU hash), plus its timeout policy.

C layout (``bpf/dp_maps.h``)::

    struct dp_ct_key   { __be32 src; __be32 dst; __u16 sport; __u16 dport;
                         __u8 proto; __u8 pad[3]; };
    struct dp_ct_value { __u64 created_ns; __u64 last_seen_ns;
                         __be32 nat_addr; __be32 tun_addr; __be32 alt_addr;
                         __u32 ifindex; __u16 nat_port; __u16 alt_port;
                         __u8 type; __u8 flags; __u8 tcp_seen; __u8 pad; };

A NATed connection is a pair: FWD keyed by the client's packet (client ->
frontend) and REV keyed by the backend's reply (backend -> client). The
datapath judges each entry by its own direction; :func:`expired_pairs`
joins the pair (REV key = FWD's NAT target -> FWD's source) and applies the
whole timeout table, so both go together (Calico's default timeouts).
"""

from __future__ import annotations

import ctypes
import socket
from collections.abc import Iterable, Mapping

import attrs

from dataplane.backends.ebpf.maps._map import MapSpec

TYPE_FWD = 1
TYPE_REV = 2

F_TUN_OUT = 1 << 0
F_TUN_IN = 1 << 1
F_TUN_BACK = 1 << 2
F_DSR = 1 << 3
F_HAIRPIN = 1 << 4
FLAG_NAMES = {
    F_TUN_OUT: "tunnel-out",
    F_TUN_IN: "tunnel-in",
    F_TUN_BACK: "tunnel-back",
    F_DSR: "dsr",
    F_HAIRPIN: "hairpin",
}

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_ACK = 0x10


class CtKey(ctypes.Structure):
    _fields_ = [
        ("src", ctypes.c_uint32),
        ("dst", ctypes.c_uint32),
        ("sport", ctypes.c_uint16),
        ("dport", ctypes.c_uint16),
        ("proto", ctypes.c_uint8),
        ("pad", ctypes.c_uint8 * 3),
    ]


class CtValue(ctypes.Structure):
    _fields_ = [
        ("created_ns", ctypes.c_uint64),
        ("last_seen_ns", ctypes.c_uint64),
        ("nat_addr", ctypes.c_uint32),
        ("tun_addr", ctypes.c_uint32),
        ("alt_addr", ctypes.c_uint32),
        ("ifindex", ctypes.c_uint32),
        ("nat_port", ctypes.c_uint16),
        ("alt_port", ctypes.c_uint16),
        ("type", ctypes.c_uint8),
        ("flags", ctypes.c_uint8),
        ("tcp_seen", ctypes.c_uint8),
        ("pad", ctypes.c_uint8),
    ]


SPEC = MapSpec(
    "dp_ct",
    CtKey,
    CtValue,
    "dp_ct_key",
    "dp_ct_value",
    batch=True,
    size_option="ebpf_conntrack_max",
)

_S = 1_000_000_000


@attrs.frozen
class Timeouts:
    """Conntrack timeouts in seconds (Felix's defaults; override via ``ebpf_ct_timeouts``)."""

    creation_grace: int = 10
    tcp_syn_sent: int = 20
    tcp_established: int = 3600
    tcp_fins_seen: int = 30
    tcp_reset_seen: int = 40
    udp: int = 60
    generic: int = 600

    @classmethod
    def from_option(cls, values: Mapping[str, int] | None) -> Timeouts:
        return cls(**dict(values or {}))

    def for_flow(self, proto: int, tcp_seen: int, replied: bool) -> int:
        """The idle timeout of a flow in seconds; TCP is established once both sides spoke."""
        if proto == socket.IPPROTO_TCP:
            if tcp_seen & TCP_RST:
                return self.tcp_reset_seen
            if tcp_seen & TCP_FIN:
                return self.tcp_fins_seen
            if tcp_seen & TCP_ACK and replied:
                return self.tcp_established
            return self.tcp_syn_sent
        if proto == socket.IPPROTO_UDP:
            return self.udp
        return self.generic


def reverse_key(key: CtKey, value: CtValue) -> CtKey:
    """The REV key of a FWD entry: the backend's reply to the (possibly hairpinned) client."""
    dst = value.alt_addr if value.flags & F_HAIRPIN else key.src
    return CtKey(value.nat_addr, dst, value.nat_port, key.sport, key.proto)


def _ident(key: CtKey) -> tuple[int, int, int, int, int]:
    return (key.src, key.dst, key.sport, key.dport, key.proto)


def expired_pairs(
    entries: Iterable[tuple[CtKey, CtValue]], now_ns: int, timeouts: Timeouts
) -> list[CtKey]:
    """Keys to delete: pairs idle past their timeout, and REV entries whose FWD is gone.

    A pair's state is the union of what both directions saw; its idle time
    runs from the later of the two ``last_seen``. Entries younger than the
    creation grace period are kept (their partner may be on its way in).
    """
    table = {_ident(k): (k, v) for k, v in entries}
    grace = timeouts.creation_grace * _S
    keep: set[tuple[int, int, int, int, int]] = set()
    doomed: list[CtKey] = []
    for key, value in table.values():
        if value.type != TYPE_FWD:
            continue
        rkey = reverse_key(key, value)
        rev = table.get(_ident(rkey))
        seen = value.tcp_seen | (rev[1].tcp_seen if rev else 0)
        last = max(value.last_seen_ns, rev[1].last_seen_ns if rev else 0)
        limit = timeouts.for_flow(key.proto, seen, replied=rev is not None and rev[1].tcp_seen != 0)
        if now_ns - value.created_ns >= grace and now_ns - last > limit * _S:
            doomed.append(key)
        elif rev:
            keep.add(_ident(rkey))
    for ident, (key, value) in table.items():
        if value.type == TYPE_REV and ident not in keep and now_ns - value.created_ns >= grace:
            doomed.append(key)
    return doomed

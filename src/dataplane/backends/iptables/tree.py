"""Service dispatch as a radix tree of chains, so a new connection walks ~20 rules, not 10k.

kube-proxy puts one rule per frontend in KUBE-SERVICES: every new connection
walks them all. Here each frontend is a 56-bit key (address 32 | protocol
8 | port 16). The root chain splits the keys by the next few bits after their
common prefix; each child with more than ``LEAF`` keys becomes a chain that
splits again (path-compressed: a child's chain starts at its own common
prefix). Address bits are matched with ``-d a.b.c.d/len`` (cheapest: part of
the rule header), the protocol byte with ``-p``, port bits with ``--dport
lo:hi``. With random ClusterIPs and 8-way splits 10k frontends need about 4
levels, i.e. ~15 rules per new connection instead of ~5k on average.

Packets only enter the tree after an ``hash:ip,port`` IP set said the key
is a frontend, so an interior chain's last child needs no match. Leaf rules
always match the full key, so a tree that lags behind the set (after a failed
restore) can only fail to DNAT, never pick a wrong frontend. Chains are named
by their prefix, so adding a frontend rewrites only its path.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence

import attrs

from dataplane.backends.iptables.store import Rules

KEY_BITS = 56
LEAF = 8
SPLIT_BITS = 3
PROTO_NAMES = {6: "tcp", 17: "udp", 132: "sctp"}


@attrs.frozen
class Entry:
    """One frontend: its key parts and the chain a matching packet goes to."""

    address: int
    protocol: int
    port: int
    target: str

    @property
    def key(self) -> int:
        return self.address << 24 | self.protocol << 16 | self.port


def _ip(value: int) -> str:
    return str(ipaddress.IPv4Address(value))


def leaf_rule(entry: Entry) -> str:
    proto = PROTO_NAMES[entry.protocol]
    return (
        f"-d {_ip(entry.address)}/32 -p {proto} -m {proto} --dport {entry.port} -g {entry.target}"
    )


def _prefix_match(key: int, length: int) -> str:
    """Rule text matching the top ``length`` bits of keys (``key`` holds just those bits)."""
    if length <= 32:
        return f"-d {_ip(key << (32 - length))}/{length}"
    proto_value = key >> (length - 40) & 0xFF if length >= 40 else 0
    proto = PROTO_NAMES[proto_value]
    if length == 40:
        return f"-p {proto}"
    shift = KEY_BITS - length
    low = (key << shift) & 0xFFFF
    high = low | ((1 << shift) - 1)
    ports = str(low) if low == high else f"{low}:{high}"
    return f"-p {proto} -m {proto} --dport {ports}"


def _common_prefix(a: int, b: int) -> int:
    return KEY_BITS - (a ^ b).bit_length()


def _split_width(prefix: int) -> int:
    """Bits to split on at ``prefix``: never across the address/protocol/port boundaries."""
    if prefix < 32:
        return min(SPLIT_BITS, 32 - prefix)
    if prefix < 40:
        return 40 - prefix  # the whole protocol byte at once
    return min(SPLIT_BITS, KEY_BITS - prefix)


def build(
    entries: Sequence[Entry], root: str, child_name: Callable[[str], str]
) -> dict[str, Rules]:
    """Chains (name → rules) of the tree over ``entries``; ``root`` is the entry chain."""
    chains: dict[str, Rules] = {}

    def node(name: str, items: Sequence[Entry]) -> None:
        if len(items) <= LEAF:
            chains[name] = tuple(leaf_rule(e) for e in items)
            return
        prefix = _common_prefix(items[0].key, items[-1].key)
        width = _split_width(prefix)
        shift = KEY_BITS - prefix - width
        groups: dict[int, list[Entry]] = {}
        for e in items:
            groups.setdefault(e.key >> shift, []).append(e)
        rules: list[str] = []
        for i, (digit, sub) in enumerate(groups.items()):
            if len(sub) == 1:
                rules.append(leaf_rule(sub[0]))
                continue
            child = child_name(f"{digit}/{prefix + width}")
            node(child, sub)
            last = i == len(groups) - 1
            match = "" if last else _prefix_match(digit, prefix + width) + " "
            rules.append(f"{match}-g {child}")
        chains[name] = tuple(rules)

    node(root, sorted(entries, key=lambda e: e.key))
    return chains

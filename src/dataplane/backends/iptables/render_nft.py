"""Frontends → a private nftables table (``iptables_nat="nftables"``): the NAT half of
services with maps, kube-proxy's nftables layout, instead of iptables-nft nat chains.

Why: on nf_tables every transaction that adds a rule re-validates every rule
reachable from the table's base chains (``nft_table_validate``), and iptables
has no maps, so its nat table holds one DNAT rule per endpoint: at 10,000
services × 10 endpoints one endpoint change costs ~150 ms of kernel
validation. Here endpoints are *elements* of a map (one per protocol), so an endpoint change
adds no rule and validates nothing::

    prerouting, output (nat, dstnat)   ip daddr . meta l4proto . th dport vmap @fe
    F-<frontend>   source ranges, masquerade marks per route, then the choice:
                   one backend: dnat to a:p;  n backends: goto pick-<proto>-<n>-<offset>
    pick-tcp-3-0   dnat ip to ip daddr . tcp dport . numgen random mod 3 map @eps_tcp
                   (shared by every frontend)
    eps_tcp        <frontend address> . <port> . <index> : <backend addr> . <port>
    postrouting    hairpin set → masq mark; masq mark → masquerade fully-random

Pick chains are shared by (protocol, count, offset) because a map bound to
10,000 rules costs 10,000 binding checks per element added. A frontend whose
routes choose among different backends gives each route its own index range
(``offset``). ClientIP affinity uses per-endpoint chains ``E-…`` that refresh
a dynamic set with the affinity timeout, as kube-proxy does. The filter half
(REJECT, source-range drops) stays in iptables (``render_services``).

Rules are written the way ``nft list`` prints them, so a read-back chain
compares equal and a restart rewrites nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from dataplane.backends.iptables.naming import Marks, digest
from dataplane.backends.iptables.render_services import key_text, reachable_routes
from dataplane.backends.iptables.store import ChainKey, Piece, Rules
from dataplane.backends.iptables.tree import PROTO_NAMES
from dataplane.calc.ir import Backend, Frontend, Route, SourceClass
from dataplane.model import IPNetwork

NFT, NFTSET = "nft", "nftset"  # Store "tables": chains, and set declarations
FE_MAP, PODS_SET, HAIRPIN_SET = "fe", "pods", "hp"
PROTOCOLS = ("tcp", "udp", "sctp")

BASE_CHAINS = {
    "prerouting": "type nat hook prerouting priority -100; policy accept;",
    "output": "type nat hook output priority -100; policy accept;",
    "postrouting": "type nat hook postrouting priority 100; policy accept;",
}
"""The table's base chains and their hook declarations."""


def eps_map(proto: str) -> str:
    """The endpoints map of one protocol. One map per protocol because a ``typeof`` key
    carries its protocol: nft refuses a udp rule on a key typed ``tcp dport``, and
    refuses rules added later against ``th dport``."""
    return f"eps_{proto}"


FIXED_SETS = {
    FE_MAP: "map",
    PODS_SET: "set",
    HAIRPIN_SET: "set",
    **{eps_map(p): "map" for p in PROTOCOLS},
}
FIXED_SET_DECLS = {
    FE_MAP: "type ipv4_addr . inet_proto . inet_service : verdict;",
    PODS_SET: "type ipv4_addr; flags interval;",
    HAIRPIN_SET: "type ipv4_addr . inet_proto . inet_service . ipv4_addr;",
    **{
        eps_map(p): f"typeof ip daddr . {p} dport . numgen random mod 2 : ip daddr . {p} dport;"
        for p in PROTOCOLS
    },
}


NFT_MEMBERS = "nft:"


def members_key(set_name: str) -> str:
    """The Store members name of an nft set (kept apart from ipset names)."""
    return NFT_MEMBERS + set_name


def _hex(value: int) -> str:
    return f"0x{value:08x}"


def _mark_set(marks: Marks) -> str:
    return f"meta mark set meta mark | {_hex(marks.masq)}"


def _class_match(sources: SourceClass, negate: bool) -> str:
    if sources is SourceClass.POD:
        return f"ip saddr {'!= ' if negate else ''}@{PODS_SET}"
    if sources is SourceClass.HOST:
        return f"fib saddr type {'!= ' if negate else ''}local"
    return ""


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def _first_match(route: Route, before: tuple[SourceClass, ...]) -> str:
    return _join(*(_class_match(c, True) for c in before), _class_match(route.sources, False))


def interval_members(nets: Iterable[IPNetwork]) -> frozenset[str]:
    """Networks as an nft interval set prints them: no overlaps, a /32 without its prefix."""
    v4 = [ipaddress.IPv4Network(n) for n in nets if n.version == 4]
    return frozenset(
        str(n.network_address) if n.prefixlen == 32 else str(n)
        for n in ipaddress.collapse_addresses(v4)
    )


def skeleton_piece(marks: Marks, cluster_cidrs: Iterable[IPNetwork]) -> Piece:
    """The base chains, the fixed sets and the pod CIDRs."""
    dispatch = (f"ip daddr . meta l4proto . th dport vmap @{FE_MAP}",)
    masq = _hex(marks.masq)
    chains: dict[ChainKey, Rules] = {
        (NFT, "prerouting"): dispatch,
        (NFT, "output"): dispatch,
        (NFT, "postrouting"): (
            f"ct status dnat ip saddr . meta l4proto . th dport . ip daddr @{HAIRPIN_SET} "
            + _mark_set(marks),
            f"meta mark & {masq} != {masq} return",
            f"meta mark set meta mark & {_hex(~marks.masq & 0xFFFFFFFF)}",
            "masquerade fully-random",
        ),
    }
    chains.update({(NFTSET, name): (decl,) for name, decl in FIXED_SET_DECLS.items()})
    members = {members_key(PODS_SET): interval_members(cluster_cidrs)}
    return Piece(chains=chains, members=members)


def frontend_chain(fe: Frontend) -> str:
    return f"F-{digest(key_text(fe.key))}"


class _Builder:
    """Accumulates one frontend's chains, set declarations and map elements."""

    def __init__(self, fe: Frontend) -> None:
        self.fe = fe
        self.proto = PROTO_NAMES[int(fe.protocol)]
        self.chains: dict[ChainKey, Rules] = {}
        self.members: dict[str, set[str]] = {}
        self.next_index = 0

    def member(self, set_name: str, value: str) -> None:
        self.members.setdefault(members_key(set_name), set()).add(value)

    def dnat(self, b: Backend, match: str = "") -> str:
        return _join(match, f"meta l4proto {self.proto} dnat to {b.address}:{b.port}")

    def choice(self, backends: tuple[Backend, ...], match: str) -> list[str]:
        """Rules that pick one of ``backends`` for packets matching ``match``."""
        if self.fe.affinity_timeout is not None:
            return self.sticky_choice(backends, match)
        if len(backends) <= 1:
            return [self.dnat(b, match) for b in backends]
        offset, self.next_index = self.next_index, self.next_index + len(backends)
        fe = self.fe
        for i, b in enumerate(backends):
            self.member(
                eps_map(self.proto),
                f"{fe.address} . {fe.port} . {offset + i} : {b.address} . {b.port}",
            )
        return [_join(match, f"goto pick-{self.proto}-{len(backends)}-{offset}")]

    def sticky_choice(self, backends: tuple[Backend, ...], match: str) -> list[str]:
        """Clients seen within the timeout go back to their endpoint; others pick one."""
        chains = [self.sticky_endpoint(b) for b in backends]
        rules = [_join(match, f"ip saddr @{aff} goto {chain}") for chain, aff in chains]
        if len(chains) == 1:
            return [*rules, _join(match, f"goto {chains[0][0]}")]
        vmap = ", ".join(f"{i} : goto {chain}" for i, (chain, _) in enumerate(chains))
        return [*rules, _join(match, f"numgen random mod {len(chains)} vmap {{ {vmap} }}")]

    def sticky_endpoint(self, b: Backend) -> tuple[str, str]:
        fe = self.fe
        ident = f"{fe.service}|{self.proto}|{b.address}:{b.port}|{fe.affinity_timeout}"
        chain, aff = f"E-{digest(ident)}", f"A-{digest(ident)}"
        decl = f"type ipv4_addr; flags dynamic,timeout; timeout {fe.affinity_timeout}s;"
        self.chains[(NFTSET, aff)] = (decl,)
        self.chains[(NFT, chain)] = (f"update @{aff} {{ ip saddr }}", self.dnat(b))
        return chain, aff


def pick_chains(rules: Iterable[str]) -> dict[ChainKey, Rules]:
    """The shared pick chains that ``rules`` go to (one per protocol, count and offset)."""
    names = {word for rule in rules for word in rule.split() if word.startswith("pick-")}
    return {(NFT, name): (pick_rule(name),) for name in names}


def pick_rule(name: str) -> str:
    _, proto, count, offset = name.split("-")
    tail = f" offset {offset}" if offset != "0" else ""
    key = f"ip daddr . {proto} dport . numgen random mod {count}{tail}"
    return f"dnat ip to {key} map @{eps_map(proto)}"


def frontend_piece(fe: Frontend, marks: Marks) -> Piece:
    """The nft chains and elements of one (supported) frontend; shared pick chains included
    (the Store counts references, so a pick chain lives while a frontend uses it)."""
    b = _Builder(fe)
    routes = reachable_routes(fe)
    rules: list[str] = []
    if fe.source_ranges:
        nets = ", ".join(sorted(interval_members(fe.source_ranges), key=_net_sort))
        rules.append(f"ip saddr != {{ {nets} }} return")
    for route, before in routes:
        if route.masquerade and route.backends:
            rules.append(_join(_first_match(route, before), _mark_set(marks)))
    if routes and all(r.backends == routes[0][0].backends for r, _ in routes):
        rules += b.choice(routes[0][0].backends, "")
    else:
        for route, _ in routes:
            match = _class_match(route.sources, False)
            if route.backends:
                rules += b.choice(route.backends, match)
            else:
                rules.append(_join(match, "return"))
    chain = frontend_chain(fe)
    b.chains[(NFT, chain)] = tuple(rules)
    b.chains.update(pick_chains(rules))
    b.member(FE_MAP, f"{fe.address} . {b.proto} . {fe.port} : goto {chain}")
    if fe.hairpin_masquerade:  # only a pod on this node can reach itself through us
        for route, _ in routes:
            for backend in route.backends:
                if backend.local:
                    addr = backend.address
                    b.member(HAIRPIN_SET, f"{addr} . {b.proto} . {backend.port} . {addr}")
    members = {k: frozenset(v) for k, v in b.members.items()}
    return Piece(chains=b.chains, members=members)


def _net_sort(text: str) -> tuple[int, int]:
    net = ipaddress.IPv4Network(text)
    return int(net.network_address), net.prefixlen

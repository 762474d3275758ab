"""Frontends → nat and filter chains (pure: IR in, :class:`Piece` out).

Per frontend one nat chain ``F-…``: source-range check, masquerade marks
for the routes that ask for it, then the backend choice. When every
reachable route has the same backends (the usual ClusterIP case: pods
without SNAT, everyone else with) the choice is inlined, so a 10k-service
table has ~10k chains, not kube-proxy's ~120k (which iptables-nft restores
100× slower). Otherwise each route jumps to a pool chain ``L-…`` named by its
content and shared between frontends. Backends are picked like kube-proxy
(``statistic --probability 1/(n-i)``) and DNATed right in that rule; only
ClientIP affinity needs per-endpoint chains ``E-…``, which remember the
client in a ``hash:ip`` set with the affinity timeout (no ``-m recent``
100-entry limit).

Hairpin masquerade (a pod reaching itself) is one POSTROUTING rule on a
``hash:ip,port,ip`` set of ``backend,proto:port,backend`` entries matched as
``src,dst,dst``: source == chosen endpoint, exactly, with no per-endpoint
chain. Only local backends are listed: a pod that reaches itself runs here.

Routes without backends and source ranges are enforced in filter (nat cannot
drop): a frontend that needs it gets a chain ``G-…`` reached through the same
kind of dispatch tree, for packets that were not DNATed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import attrs

from dataplane.backends.iptables.naming import Marks, Names
from dataplane.backends.iptables.render_ipsets import net_members
from dataplane.backends.iptables.store import Piece, Rules, SetSpec, merge
from dataplane.backends.iptables.tree import PROTO_NAMES, Entry
from dataplane.calc.ir import Backend, Frontend, FrontendKey, NoEndpoints, Route, SourceClass


@attrs.frozen
class ServiceNames:
    """The fixed names the service chains refer to."""

    names: Names
    marks: Marks

    @property
    def frontends_set(self) -> str:
        return self.names.fixed("FE")

    @property
    def filtered_set(self) -> str:
        return self.names.fixed("FEF")

    @property
    def cluster_set(self) -> str:
        return self.names.fixed("POD")

    @property
    def hairpin_set(self) -> str:
        return self.names.fixed("HP")

    def nat_chain(self, key: FrontendKey) -> str:
        return self.names.hashed("F", key_text(key))

    def filter_chain(self, key: FrontendKey) -> str:
        return self.names.hashed("G", key_text(key))


def key_text(key: FrontendKey) -> str:
    address, protocol, port = key
    return f"{address}|{int(protocol)}|{port}"


def supported(fe: Frontend) -> bool:
    """IPv4 frontends of TCP, UDP or SCTP (the others are reported as warnings)."""
    return fe.address.version == 4 and int(fe.protocol) in PROTO_NAMES


def _class_match(sources: SourceClass, sn: ServiceNames, negate: bool) -> str:
    bang = "! " if negate else ""
    if sources is SourceClass.POD:
        return f"-m set {bang}--match-set {sn.cluster_set} src"
    if sources is SourceClass.HOST:
        return f"-m addrtype {bang}--src-type LOCAL"
    return ""


def reachable_routes(fe: Frontend) -> list[tuple[Route, tuple[SourceClass, ...]]]:
    """The routes a packet can take, each with the classes of the routes tried before it."""
    out: list[tuple[Route, tuple[SourceClass, ...]]] = []
    seen: list[SourceClass] = []
    for route in fe.routes:
        if SourceClass.ANY in seen or route.sources in seen:
            continue
        out.append((route, tuple(seen)))
        seen.append(route.sources)
    return out


def first_match(route: Route, before: tuple[SourceClass, ...], sn: ServiceNames) -> str:
    """Matches packets whose *first* matching route is ``route``."""
    parts = [_class_match(c, sn, negate=True) for c in before]
    parts.append(_class_match(route.sources, sn, negate=False))
    return " ".join(p for p in parts if p)


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def probability(i: int, n: int) -> str:
    """``1/(n-i)`` as iptables-save prints it (the kernel keeps it as a u32 fraction of 2^31)."""
    fixed = math.floor(0x80000000 / (n - i) + 0.5)
    return f"{fixed / 0x80000000:.11f}"


def _dnat(proto: str, b: Backend, *matches: str) -> str:
    """A DNAT rule; ``-p`` goes first because that is where iptables-save prints it
    (a rule rendered differently would never compare equal to its read-back)."""
    return _join(f"-p {proto}", *matches, f"-j DNAT --to-destination {b.address}:{b.port}")


@attrs.define
class _Builder:
    """Accumulates one frontend's piece."""

    fe: Frontend
    sn: ServiceNames
    nat: dict[str, Rules] = attrs.field(factory=dict)
    sets: list[SetSpec] = attrs.field(factory=list)
    members: dict[str, set[str]] = attrs.field(factory=dict)

    @property
    def proto(self) -> str:
        return PROTO_NAMES[int(self.fe.protocol)]

    def member(self, set_name: str, value: str) -> None:
        self.members.setdefault(set_name, set()).add(value)

    def choice(self, backends: tuple[Backend, ...], match: str) -> list[str]:
        """Rules that pick one of ``backends`` for packets matching ``match``."""
        n = len(backends)
        if self.fe.affinity_timeout is None:
            return [_dnat(self.proto, b, match, _stat(i, n)) for i, b in enumerate(backends)]
        seps = [self.sticky_endpoint(b) for b in backends]
        remembered = [
            _join(match, f"-m set --match-set {aff} src", f"-g {sep}") for sep, aff in seps
        ]
        fresh = [_join(match, _stat(i, n), f"-g {sep}") for i, (sep, _) in enumerate(seps)]
        return remembered + fresh

    def sticky_endpoint(self, b: Backend) -> tuple[str, str]:
        """An affinity endpoint chain and the set remembering its clients (per service)."""
        ident = f"{self.fe.service}|{self.proto}|{b.address}:{b.port}|{self.fe.affinity_timeout}"
        names = self.sn.names
        chain, aff = names.hashed("E", ident), names.hashed("A", ident)
        self.sets.append(SetSpec(aff, "hash:ip", timeout=self.fe.affinity_timeout))
        self.nat[chain] = (f"-j SET --add-set {aff} src --exist", _dnat(self.proto, b))
        return chain, aff

    def pool(self, backends: tuple[Backend, ...]) -> str:
        """A chain choosing among ``backends``, named by its content so frontends share it."""
        rules = tuple(self.choice(backends, ""))
        name = self.sn.names.hashed("L", "\n".join(rules))
        self.nat[name] = rules
        return name


def _stat(i: int, n: int) -> str:
    if i == n - 1:
        return ""
    return f"-m statistic --mode random --probability {probability(i, n)}"


def frontend_piece(fe: Frontend, sn: ServiceNames) -> Piece:
    """All kernel state of one (supported) frontend: its nat half and its filter half."""
    return merge(nat_piece(fe, sn), filter_piece(fe, sn))


def _ranges_set(fe: Frontend, sn: ServiceNames) -> str | None:
    return sn.names.hashed("R", key_text(fe.key)) if fe.source_ranges else None


def _ranges_piece(fe: Frontend, sn: ServiceNames) -> tuple[str | None, Piece]:
    name = _ranges_set(fe, sn)
    if name is None:
        return None, Piece()
    return name, Piece(
        sets=(SetSpec(name, "hash:net"),),
        members={name: frozenset(net_members(fe.source_ranges))},
    )


def nat_piece(fe: Frontend, sn: ServiceNames) -> Piece:
    """The nat chains of one frontend (DNAT, masquerade marks, hairpin members)."""
    b = _Builder(fe, sn)
    routes = reachable_routes(fe)
    rules: list[str] = []
    ranges_set, ranges = _ranges_piece(fe, sn)
    if ranges_set:
        rules.append(f"-m set ! --match-set {ranges_set} src -j RETURN")
    for route, before in routes:
        if route.masquerade and route.backends:
            rules.append(_join(first_match(route, before, sn), sn.marks.set(sn.marks.masq)))
    if routes and all(r.backends == routes[0][0].backends for r, _ in routes):
        rules += b.choice(routes[0][0].backends, "")
    else:
        for route, _ in routes:
            match = _class_match(route.sources, sn, negate=False)
            if not route.backends:
                rules.append(_join(match, "-j RETURN"))
            elif len(route.backends) == 1 and fe.affinity_timeout is None:
                rules.append(_dnat(b.proto, route.backends[0], match))
            else:
                rules.append(_join(match, f"-g {b.pool(route.backends)}"))
    b.nat[sn.nat_chain(fe.key)] = tuple(rules)
    b.member(sn.frontends_set, entry_member(fe.key))
    if fe.hairpin_masquerade:  # only a pod on this node can reach itself through us
        for route, _ in routes:
            for backend in route.backends:
                if backend.local:
                    addr = backend.address
                    b.member(sn.hairpin_set, f"{addr},{b.proto}:{backend.port},{addr}")
    chains = {("nat", name): r for name, r in b.nat.items()}
    members = {k: frozenset(v) for k, v in b.members.items()}
    return merge(Piece(chains=chains, sets=tuple(b.sets), members=members), ranges)


def filter_piece(fe: Frontend, sn: ServiceNames) -> Piece:
    """The filter chain of one frontend, when it drops or rejects anything."""
    ranges_set, ranges = _ranges_piece(fe, sn)
    rules = _filter_rules(fe, reachable_routes(fe), ranges_set, sn)
    if not rules:
        return Piece()
    return merge(
        Piece(
            chains={("filter", sn.filter_chain(fe.key)): rules},
            members={sn.filtered_set: frozenset({entry_member(fe.key)})},
        ),
        ranges,
    )


def _filter_rules(
    fe: Frontend,
    routes: list[tuple[Route, tuple[SourceClass, ...]]],
    ranges_set: str | None,
    sn: ServiceNames,
) -> Rules:
    """Drop sources outside the ranges; REJECT/DROP packets whose route has no backends."""
    rules: list[str] = []
    if ranges_set:
        rules.append(f"-m set ! --match-set {ranges_set} src -j DROP")
    for route, before in routes:
        if route.backends:
            continue
        verdict = (
            "-j REJECT --reject-with icmp-port-unreachable"
            if route.if_empty is NoEndpoints.REJECT
            else "-j DROP"
        )
        rules.append(_join(first_match(route, before, sn), verdict))
    return tuple(rules)


def entry_member(key: FrontendKey) -> str:
    address, protocol, port = key
    return f"{address},{PROTO_NAMES[int(protocol)]}:{port}"


def tree_entry(key: FrontendKey, target: str) -> Entry:
    address, protocol, port = key
    return Entry(int(address), int(protocol), port, target)


def health_check_rules(ports: Iterable[int]) -> Rules:
    """healthCheckNodePorts are accepted (kube-proxy's KUBE-NODEPORTS filter rules)."""
    return tuple(f"-p tcp -m tcp --dport {p} -j ACCEPT" for p in sorted(ports))

"""Calico policy semantics → per-endpoint ordered programs over IP sets.

Which policies apply to an endpoint, their order (tier order, then policy
order, then name; a missing order sorts last), which hook each one belongs
to (normal, applyOnForward, preDNAT, doNotTrack) and how every rule's
selectors, CIDRs and named ports become IP-set references — all decided
here. Backends and the reference evaluator only execute the result.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator, Mapping

import attrs

from dataplane.calc.ipsets import EndpointFacts, NamedPortMatch, PeerMatch, nets_set
from dataplane.calc.ir import (
    ALLOW_ALL,
    NO_VERDICT,
    Chain,
    ChainEnd,
    Direction,
    HostProgram,
    IpSet,
    IRRule,
    PolicyProgram,
    PortMatch,
    RuleRef,
    TierProgram,
    WorkloadProgram,
)
from dataplane.model import (
    EntityMatch,
    HostEndpoint,
    Policy,
    PolicyType,
    PortRange,
    Profile,
    Protocol,
    Rule,
    Tier,
    TierDefault,
    WorkloadEndpoint,
)
from dataplane.selector import parse

OwnPorts = Mapping[tuple[str, Protocol], int]


@attrs.define
class SetUse:
    """IP sets that compiled rules refer to (selector sets are filled by the index)."""

    peers: set[PeerMatch] = attrs.field(factory=set)
    named: set[NamedPortMatch] = attrs.field(factory=set)
    nets: dict[str, IpSet] = attrs.field(factory=dict)

    def merge(self, other: SetUse) -> None:
        self.peers |= other.peers
        self.named |= other.named
        self.nets.update(other.nets)


def policy_label(policy: Policy) -> str:
    return f"{policy.namespace}/{policy.name}" if policy.namespace else f"gnp:{policy.name}"


def _canonical(text: str | None) -> str | None:
    return None if text is None else parse(text).canonical


def _peer(match: EntityMatch, scope: str | None, negated: bool) -> PeerMatch | None:
    selector = match.not_selector if negated else match.selector
    if selector is None and (negated or match.namespace_selector is None):
        return None
    return PeerMatch(_canonical(selector), _canonical(match.namespace_selector), scope)


def _ports(
    specs: tuple[PortRange | str, ...],
    protocol: Protocol | None,
    own: OwnPorts | None,
    peer: PeerMatch | None,
    use: SetUse,
) -> PortMatch | None:
    """Ranges plus named ports; named ports resolve on ``own`` (the endpoint itself) if given."""
    if not specs:
        return None
    ranges: list[PortRange] = [s for s in specs if isinstance(s, PortRange)]
    named: list[str] = []
    for name in (s for s in specs if isinstance(s, str)):
        if protocol is None:
            continue
        if own is not None:
            if (name, protocol) in own:
                port = own[(name, protocol)]
                ranges.append(PortRange(port, port))
        else:
            match = NamedPortMatch(peer, name, protocol)
            use.named.add(match)
            named.append(match.set_id)
    return PortMatch(tuple(sorted(set(ranges))), tuple(named))


def _side(
    match: EntityMatch, scope: str | None, use: SetUse
) -> tuple[tuple[str, ...], tuple[str, ...], PeerMatch | None]:
    sets: list[str] = []
    not_sets: list[str] = []
    if match.nets:
        s = nets_set(match.nets)
        use.nets[s.id] = s
        sets.append(s.id)
    if match.not_nets:
        s = nets_set(match.not_nets)
        use.nets[s.id] = s
        not_sets.append(s.id)
    peer = _peer(match, scope, negated=False)
    if peer is not None:
        use.peers.add(peer)
        sets.append(peer.set_id)
    not_peer = _peer(match, scope, negated=True)
    if not_peer is not None:
        use.peers.add(not_peer)
        not_sets.append(not_peer.set_id)
    return tuple(sets), tuple(not_sets), peer


def compile_rule(
    rule: Rule, ref: RuleRef, scope: str | None, own: OwnPorts | None, use: SetUse
) -> IRRule | None:
    """One model rule → one IR rule; None if it can never match (unresolvable named port).

    ``own`` holds the endpoint's named ports: they resolve the *destination*
    ports of ingress rules (and the source ports of egress rules), since that
    side is the endpoint itself.
    """
    proto = rule.protocol if isinstance(rule.protocol, Protocol) else None
    src_sets, not_src_sets, src_peer = _side(rule.source, scope, use)
    dst_sets, not_dst_sets, dst_peer = _side(rule.destination, scope, use)
    ingress = ref.direction is Direction.INGRESS
    dst_own = own if ingress else None
    src_own = None if ingress else own
    dst_ports = _ports(rule.destination.ports, proto, dst_own, dst_peer, use)
    src_ports = _ports(rule.source.ports, proto, src_own, src_peer, use)
    for pm in (dst_ports, src_ports):
        if pm is not None and not pm.ranges and not pm.named_sets:
            return None
    return IRRule(
        action=rule.action,
        ref=ref,
        protocol=int(rule.protocol) if rule.protocol is not None else None,
        not_protocol=int(rule.not_protocol) if rule.not_protocol is not None else None,
        icmp_type=rule.icmp.type if rule.icmp else None,
        icmp_code=rule.icmp.code if rule.icmp else None,
        not_icmp_type=rule.not_icmp.type if rule.not_icmp else None,
        not_icmp_code=rule.not_icmp.code if rule.not_icmp else None,
        ip_version=rule.ip_version,
        src_sets=src_sets,
        not_src_sets=not_src_sets,
        dst_sets=dst_sets,
        not_dst_sets=not_dst_sets,
        src_ports=src_ports,
        not_src_ports=_ports(rule.source.not_ports, proto, src_own, src_peer, use),
        dst_ports=dst_ports,
        not_dst_ports=_ports(rule.destination.not_ports, proto, dst_own, dst_peer, use),
    )


def compile_rules(
    name: str,
    rules: Iterable[Rule],
    direction: Direction,
    scope: str | None,
    own: OwnPorts | None,
    use: SetUse,
) -> PolicyProgram:
    out = []
    for i, rule in enumerate(rules):
        compiled = compile_rule(rule, RuleRef(name, direction, i), scope, own, use)
        if compiled is not None:
            out.append(compiled)
    return PolicyProgram(name, tuple(out))


# ------------------------------------------------------------------ applicability


def _order(value: float | None) -> float:
    return math.inf if value is None else float(value)


def _policy_key(p: Policy) -> tuple[float, str]:
    return (_order(p.order), policy_label(p))


def sort_policies(policies: Iterable[Policy]) -> list[Policy]:
    return sorted(policies, key=_policy_key)


def sort_tiers(tiers: Iterable[Tier]) -> list[Tier]:
    return sorted(tiers, key=lambda t: (_order(t.order), t.name))


def applies(policy: Policy, ep: EndpointFacts, ns_labels: Mapping[str, str] | None) -> bool:
    """Does ``policy`` select endpoint ``ep``? (namespace scoping included)."""
    if policy.namespace is not None and policy.namespace != ep.namespace:
        return False
    if policy.namespace_selector is not None:
        labels = ns_labels if ns_labels is not None else {}
        if not parse(policy.namespace_selector).matches(labels):
            return False
    return parse(policy.selector).matches(ep.labels)


def _uses_named_ports(policy: Policy) -> bool:
    return any(
        isinstance(spec, str)
        for rule in (*policy.ingress, *policy.egress)
        for match in (rule.source, rule.destination)
        for spec in (*match.ports, *match.not_ports)
    )


@attrs.frozen
class PolicyWorld:
    """Tiers, policies (sorted and indexed once) and profiles, as calc sees them.

    Policies are indexed by (tier, namespace) — None for global ones — because
    a namespaced policy can only select endpoints of its own namespace; and a
    policy's compiled rules are cached per direction (and per endpoint named
    ports, only when the policy uses named ports), since thousands of
    endpoints share the same policies.
    """

    tiers: tuple[Tier, ...]
    by_scope: Mapping[tuple[str, str | None], tuple[Policy, ...]]
    profiles: Mapping[str, Profile]
    named: frozenset[str]  # labels of policies whose rules use named ports
    cache: dict[object, tuple[PolicyProgram, SetUse]] = attrs.field(factory=dict, eq=False)

    @classmethod
    def build(
        cls, tiers: Iterable[Tier], policies: Iterable[Policy], profiles: Iterable[Profile]
    ) -> PolicyWorld:
        by_name = {t.name: t for t in tiers}
        by_name.setdefault("default", Tier("default"))
        grouped: dict[tuple[str, str | None], list[Policy]] = {}
        named = set()
        for p in policies:
            grouped.setdefault((p.tier, p.namespace), []).append(p)
            if _uses_named_ports(p):
                named.add(policy_label(p))
        return cls(
            tiers=tuple(sort_tiers(by_name.values())),
            by_scope={k: tuple(sort_policies(ps)) for k, ps in grouped.items()},
            profiles={p.name: p for p in profiles},
            named=frozenset(named),
        )

    def candidates(self, tier: str, namespace: str | None) -> list[Policy]:
        """Policies of ``tier`` that may select an endpoint of ``namespace``, in order."""
        own = self.by_scope.get((tier, namespace), ()) if namespace is not None else ()
        glob = self.by_scope.get((tier, None), ())
        if not own or not glob:
            return list(own or glob)
        return list(heapq.merge(own, glob, key=_policy_key))

    def program(
        self, policy: Policy, direction: Direction, own: OwnPorts, use: SetUse
    ) -> PolicyProgram:
        label = policy_label(policy)
        ports_key = tuple(sorted(own.items())) if label in self.named else None
        key = (label, direction, ports_key)
        hit = self.cache.get(key)
        if hit is None:
            local = SetUse()
            rules = policy.ingress if direction is Direction.INGRESS else policy.egress
            prog = compile_rules(label, rules, direction, policy.namespace, own, local)
            hit = self.cache[key] = (prog, local)
        use.merge(hit[1])
        return hit[0]


class Hook:
    """Which policies feed a chain, and what happens when nothing decides."""

    NORMAL = "normal"
    FORWARD = "forward"
    PRE_DNAT = "pre-dnat"
    UNTRACKED = "untracked"


def _in_hook(policy: Policy, hook: str) -> bool:
    if hook == Hook.PRE_DNAT:
        return policy.pre_dnat
    if hook == Hook.UNTRACKED:
        return policy.do_not_track
    if policy.pre_dnat or policy.do_not_track:
        return False
    return hook == Hook.NORMAL or policy.apply_on_forward


def build_chain(
    world: PolicyWorld,
    ep: EndpointFacts,
    ns_labels: Mapping[str, str] | None,
    direction: Direction,
    hook: str,
    profiles: tuple[str, ...],
    use: SetUse,
) -> Chain:
    ptype = PolicyType.INGRESS if direction is Direction.INGRESS else PolicyType.EGRESS
    own = ep.named_ports
    tiers: list[TierProgram] = []
    for tier in world.tiers:
        programs = []
        for pol in world.candidates(tier.name, ep.namespace):
            if ptype not in pol.effective_types or not _in_hook(pol, hook):
                continue
            if not applies(pol, ep, ns_labels):
                continue
            programs.append(world.program(pol, direction, own, use))
        if programs:
            # preDNAT and untracked chains never drop at the end of a tier.
            default = (
                tier.default_action if hook in (Hook.NORMAL, Hook.FORWARD) else (TierDefault.PASS)
            )
            tiers.append(TierProgram(tier.name, default, tuple(programs)))
    if hook in (Hook.PRE_DNAT, Hook.UNTRACKED):
        return Chain(tuple(tiers), (), ChainEnd.CONTINUE) if tiers else NO_VERDICT
    if hook == Hook.FORWARD:
        return Chain(tuple(tiers), (), ChainEnd.DENY) if tiers else ALLOW_ALL
    return Chain(tuple(tiers), tuple(_profiles(world, profiles, direction, use)), ChainEnd.DENY)


def _profiles(
    world: PolicyWorld, names: tuple[str, ...], direction: Direction, use: SetUse
) -> Iterator[PolicyProgram]:
    for name in names:
        prof = world.profiles.get(name)
        if prof is None:
            continue
        rules = prof.ingress if direction is Direction.INGRESS else prof.egress
        yield compile_rules(f"profile:{name}", rules, direction, None, None, use)


def workload_program(
    world: PolicyWorld, ep: WorkloadEndpoint, ns_labels: Mapping[str, str] | None, use: SetUse
) -> WorkloadProgram:
    facts = EndpointFacts.of(ep)
    return WorkloadProgram(
        key=ep.key,
        interface=ep.interface,
        addresses=ep.addresses,
        ingress=build_chain(
            world, facts, ns_labels, Direction.INGRESS, Hook.NORMAL, ep.profiles, use
        ),
        egress=build_chain(
            world, facts, ns_labels, Direction.EGRESS, Hook.NORMAL, ep.profiles, use
        ),
    )


def host_program(world: PolicyWorld, hep: HostEndpoint, use: SetUse) -> HostProgram:
    facts = EndpointFacts.of(hep)

    def chain(direction: Direction, hook: str) -> Chain:
        return build_chain(world, facts, None, direction, hook, hep.profiles, use)

    return HostProgram(
        key=hep.key,
        interface=hep.interface,
        addresses=hep.expected_ips,
        ingress=chain(Direction.INGRESS, Hook.NORMAL),
        egress=chain(Direction.EGRESS, Hook.NORMAL),
        forward_ingress=chain(Direction.INGRESS, Hook.FORWARD),
        forward_egress=chain(Direction.EGRESS, Hook.FORWARD),
        pre_dnat_ingress=chain(Direction.INGRESS, Hook.PRE_DNAT),
        untracked_ingress=chain(Direction.INGRESS, Hook.UNTRACKED),
        untracked_egress=chain(Direction.EGRESS, Hook.UNTRACKED),
    )

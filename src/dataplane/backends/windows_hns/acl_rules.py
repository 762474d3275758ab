"""HNS ACL rules before they become JSON: matches that can be intersected.

An :class:`AclRule` is one HNS ACL in the making: an action, a protocol,
address sets and port ranges on the local (endpoint) and remote side, where
``None`` means "any". Flattening tiers needs ``rule_a ∧ rule_b`` (Calico for
Windows' ``combineRules``): a Pass rule is replaced by itself intersected
with each rule of the next tier, so every packet the Pass matched is decided
by the next tier's rules, in their order, and by nothing else.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import attrs

from dataplane.model import IPNetwork, PortRange

Nets = frozenset[IPNetwork] | None
Ports = tuple[PortRange, ...] | None

ALLOW = "Allow"
BLOCK = "Block"
PASS = "Pass"


@attrs.frozen
class AclRule:
    """One ACL: ``action`` if protocol, addresses and ports all match."""

    action: str
    ref: str  # the IR rule (or tier default) it came from, for the ACL Id
    protocol: int | None = None
    local: Nets = None
    remote: Nets = None
    local_ports: Ports = None
    remote_ports: Ports = None


def match_all(action: str, ref: str) -> AclRule:
    return AclRule(action, ref)


def combine(first: AclRule, second: AclRule) -> AclRule | None:
    """``first ∧ second`` with ``second``'s action and ref; None if nothing can match both."""
    if first.protocol is not None and second.protocol not in (None, first.protocol):
        return None
    local = intersect_nets(first.local, second.local)
    remote = intersect_nets(first.remote, second.remote)
    local_ports = intersect_ports(first.local_ports, second.local_ports)
    remote_ports = intersect_ports(first.remote_ports, second.remote_ports)
    if any(v is not None and not v for v in (local, remote, local_ports, remote_ports)):
        return None
    return attrs.evolve(
        second,
        protocol=first.protocol if second.protocol is None else second.protocol,
        local=local,
        remote=remote,
        local_ports=local_ports,
        remote_ports=remote_ports,
    )


def intersect_nets(a: Nets, b: Nets) -> Nets:
    """Addresses in both (``None`` = any); pairwise, the smaller of two nested networks."""
    if a is None:
        return b
    if b is None:
        return a
    out: set[IPNetwork] = set()
    for x in a:
        for y in b:
            if x.version != y.version:
                continue
            if x.subnet_of(y):  # type: ignore[arg-type]
                out.add(x)
            elif y.subnet_of(x):  # type: ignore[arg-type]
                out.add(y)
    return collapse(out)


def collapse(nets: Iterable[IPNetwork]) -> frozenset[IPNetwork]:
    listed = list(nets)
    v4 = [n for n in listed if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in listed if isinstance(n, ipaddress.IPv6Network)]
    return frozenset([*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6)])


def intersect_ports(a: Ports, b: Ports) -> Ports:
    if a is None:
        return b
    if b is None:
        return a
    pieces = [
        PortRange(max(x.first, y.first), min(x.last, y.last))
        for x in a
        for y in b
        if max(x.first, y.first) <= min(x.last, y.last)
    ]
    return merge_ports(pieces)


def merge_ports(ranges: Iterable[PortRange]) -> tuple[PortRange, ...]:
    merged: list[PortRange] = []
    for r in sorted(ranges, key=lambda r: (r.first, r.last)):
        if merged and r.first <= merged[-1].last + 1:
            merged[-1] = PortRange(merged[-1].first, max(merged[-1].last, r.last))
        else:
            merged.append(r)
    return tuple(merged)


def flatten(stages: list[list[AclRule]], last_pass_action: str) -> list[AclRule]:
    """Tiers (each a rule list ending in its default rule) → one first-match list.

    Calico for Windows' ``flattenTiers``: a Pass in stage k becomes its
    combination with every rule of stage k+1; Pass in the last stage has
    nowhere to go and takes ``last_pass_action``. Stages after one without
    any Pass are unreachable and dropped.
    """
    if not stages:
        return []
    last = [attrs.evolve(r, action=last_pass_action) if r.action == PASS else r for r in stages[-1]]
    current, rest = (stages[0], [*stages[1:-1], last]) if len(stages) > 1 else (last, [])
    for following in rest:
        if not any(r.action == PASS for r in current):
            return current
        merged: list[AclRule] = []
        for rule in current:
            if rule.action != PASS:
                merged.append(rule)
                continue
            merged.extend(c for c in (combine(rule, r) for r in following) if c is not None)
        current = merged
    return current

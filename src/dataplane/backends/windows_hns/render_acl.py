"""A workload's IR policy chains → ACL policies on its HostComputeEndpoint (pure).

Follows Calico for Windows (``felix/dataplane/windows/policysets``):

- In: source → ``RemoteAddresses``/``RemotePorts``, destination → ``Local…``;
  Out: the reverse. IP-set ids are expanded into address lists through
  ``ir.ip_sets``; several sets on one side are ANDed, so their member lists
  are intersected (an empty intersection means the rule never matches and is
  left out, exactly).
- Allow → ``Allow``, Deny → ``Block``; tiers are flattened into one
  first-match list (:func:`.acl_rules.flatten`), each tier ending in a default
  rule (Block for Deny, Pass for Pass), profiles and the chain's end verdict
  forming the last stage. The result ends in a match-all default rule per
  direction.
- Priorities ascend from 1000 (Calico's ``PolicyRuleBasePriority``) up to
  65000; address and port lists are split at 4,000 entries per ACL.

HNS cannot express negations, ICMP type/code, named ports, Log, or protocols
other than ICMP, IGMP, TCP, UDP and ICMPv6. Such rules fail closed and are
reported: an Allow (or Pass) is left out (named ports: narrowed to the rule's
numeric ports), a Deny is widened to ignore the inexpressible criterion.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from dataplane.backends.windows_hns import schema
from dataplane.backends.windows_hns.acl_rules import (
    ALLOW,
    BLOCK,
    PASS,
    AclRule,
    Nets,
    Ports,
    collapse,
    flatten,
    intersect_nets,
    match_all,
    merge_ports,
)
from dataplane.backends.windows_hns.identity import acl_id
from dataplane.calc.ir import (
    Chain,
    ChainEnd,
    Direction,
    IpSet,
    IRRule,
    PortMatch,
    WorkloadProgram,
)
from dataplane.errors import CapacityError
from dataplane.model import Action, IPNetwork, TierDefault

Document = dict[str, Any]

PRIORITY_BASE = 1000
PRIORITY_MAX = 65000
_ACTIONS = {Action.ALLOW: ALLOW, Action.DENY: BLOCK, Action.PASS: PASS}
_HNS_DIRECTION = {Direction.INGRESS: "In", Direction.EGRESS: "Out"}
_ALL: dict[int, IPNetwork] = {
    4: ipaddress.ip_network("0.0.0.0/0"),
    6: ipaddress.ip_network("::/0"),
}


def render_workload_acls(
    program: WorkloadProgram, ip_sets: Mapping[str, IpSet], instance: str
) -> tuple[list[Document], list[str]]:
    """The ACL endpoint policies for one workload, ingress then egress, and warnings."""
    owner = str(program.key)
    warnings: list[str] = []
    policies: list[Document] = []
    chains = ((Direction.INGRESS, program.ingress), (Direction.EGRESS, program.egress))
    for direction, chain in chains:
        rules = _flatten_chain(chain, direction, ip_sets, owner, warnings)
        policies.extend(_to_policies(rules, _HNS_DIRECTION[direction], instance, owner))
    return policies, warnings


def _flatten_chain(
    chain: Chain,
    direction: Direction,
    ip_sets: Mapping[str, IpSet],
    owner: str,
    warnings: list[str],
) -> list[AclRule]:
    stages: list[list[AclRule]] = []
    for tier in chain.tiers:
        rules = [
            acl
            for policy in tier.policies
            for rule in policy.rules
            for acl in convert_rule(rule, direction, ip_sets, f"{owner}: {rule.ref}", warnings)
        ]
        default = BLOCK if tier.default_action is TierDefault.DENY else PASS
        rules.append(match_all(default, f"tier {tier.name} {direction.value} default"))
        stages.append(rules)
    end = BLOCK if chain.end is ChainEnd.DENY else ALLOW  # CONTINUE: no verdict here, HNS allows
    final = [
        acl
        for profile in chain.profiles
        for rule in profile.rules
        for acl in convert_rule(rule, direction, ip_sets, f"{owner}: {rule.ref}", warnings)
    ]
    final.append(match_all(end, f"{direction.value} default"))
    stages.append(final)
    return flatten(stages, end)


def convert_rule(
    rule: IRRule,
    direction: Direction,
    ip_sets: Mapping[str, IpSet],
    where: str,
    warnings: list[str],
) -> list[AclRule]:
    """One IR rule as ACL rules (several when ports need TCP and UDP); [] if it never matches."""
    if rule.action is Action.LOG:
        warnings.append(f"{where}: Log is not supported by HNS ACLs; rule skipped")
        return []
    action = _ACTIONS[rule.action]
    widen = action == BLOCK
    inexpressible = _inexpressible(rule)
    if inexpressible:
        if not widen:
            warnings.append(f"{where}: {inexpressible} not expressible in HNS; {action} left out")
            return []
        warnings.append(f"{where}: {inexpressible} not expressible in HNS; Block widened")
    if rule.protocol is not None and rule.protocol not in schema.ACL_PROTOCOLS:
        warnings.append(f"{where}: protocol {rule.protocol} not supported by HNS ACLs; left out")
        return []
    src_ports = _ports(rule.src_ports, widen, where, warnings)
    dst_ports = _ports(rule.dst_ports, widen, where, warnings)
    src = _nets(rule.src_sets, ip_sets, where, warnings)
    dst = _nets(rule.dst_sets, ip_sets, where, warnings)
    if rule.ip_version is not None:
        src = intersect_nets(src, frozenset({_ALL[rule.ip_version]}))
        dst = intersect_nets(dst, frozenset({_ALL[rule.ip_version]}))
    if any(v is not None and not v for v in (src, dst, src_ports, dst_ports)):
        return []
    has_ports = src_ports is not None or dst_ports is not None
    protocols = [rule.protocol] if rule.protocol is not None or not has_ports else [6, 17]
    ref = str(rule.ref)
    if direction is Direction.INGRESS:
        return [AclRule(action, ref, p, dst, src, dst_ports, src_ports) for p in protocols]
    return [AclRule(action, ref, p, src, dst, src_ports, dst_ports) for p in protocols]


def _inexpressible(rule: IRRule) -> str:
    reasons = []
    if rule.not_protocol is not None:
        reasons.append("protocol negation")
    if rule.not_src_sets or rule.not_dst_sets:
        reasons.append("address negation (notNets/notSelector)")
    if rule.not_src_ports is not None or rule.not_dst_ports is not None:
        reasons.append("port negation")
    icmp = (rule.icmp_type, rule.icmp_code, rule.not_icmp_type, rule.not_icmp_code)
    if any(v is not None for v in icmp):
        reasons.append("ICMP type/code")
    return ", ".join(reasons)


def _ports(match: PortMatch | None, widen: bool, where: str, warnings: list[str]) -> Ports:
    """Numeric ranges; named ports make a Block match any port, an Allow only its ranges."""
    if match is None:
        return None
    if match.named_sets:
        if widen:
            warnings.append(f"{where}: named ports not supported by HNS; Block widened to any port")
            return None
        warnings.append(
            f"{where}: named ports not supported by HNS; "
            + ("rule narrowed to its numeric ports" if match.ranges else "Allow left out")
        )
    return merge_ports(match.ranges)


def _nets(
    ids: Sequence[str], ip_sets: Mapping[str, IpSet], where: str, warnings: list[str]
) -> Nets:
    """The addresses in every one of ``ids`` (None when there are no ids: any address)."""
    result: Nets = None
    for set_id in ids:
        ip_set = ip_sets.get(set_id)
        if ip_set is None:
            warnings.append(f"{where}: IP set {set_id} is missing; rule matches nothing")
            return frozenset()
        result = intersect_nets(result, collapse(ip_set.nets))
    return result


def _to_policies(rules: list[AclRule], direction: str, instance: str, owner: str) -> list[Document]:
    chunks = [c for r in rules for c in _split(r)]
    priorities = _priorities([c.action for c in chunks], owner)
    return [
        {"Type": "ACL", "Settings": _settings(c, direction, p, instance)}
        for c, p in zip(chunks, priorities, strict=True)
    ]


def _split(rule: AclRule) -> list[AclRule]:
    """One ACL per combination of ≤4,000-entry slices of each list."""
    limit = schema.ACL_MAX_ENTRIES

    def slices(values: Sequence[Any] | None) -> list[Any]:
        if values is None:
            return [None]
        return [tuple(values[i : i + limit]) for i in range(0, len(values), limit)]

    local = slices(_sorted_nets(rule.local))
    remote = slices(_sorted_nets(rule.remote))
    lports = slices(rule.local_ports)
    rports = slices(rule.remote_ports)
    return [
        AclRule(
            rule.action,
            rule.ref,
            rule.protocol,
            None if lo is None else frozenset(lo),
            None if re is None else frozenset(re),
            lp,
            rp,
        )
        for lo, re, lp, rp in itertools.product(local, remote, lports, rports)
    ]


def _priorities(actions: list[str], owner: str) -> list[int]:
    """Ascending from 1000; past the band, runs of one action share a priority (Calico)."""
    band = PRIORITY_MAX - PRIORITY_BASE + 1
    if len(actions) <= band:
        return [PRIORITY_BASE + i for i in range(len(actions))]
    priorities = []
    current = PRIORITY_BASE
    for i, action in enumerate(actions):
        if i and action != actions[i - 1]:
            current += 1
        priorities.append(current)
    if current > PRIORITY_MAX:
        raise CapacityError(f"{owner}: {len(actions)} ACLs do not fit HNS priorities 1000-65000")
    return priorities


def _sorted_nets(nets: Nets) -> list[IPNetwork] | None:
    if nets is None:
        return None
    return sorted(nets, key=lambda n: (n.version, n.network_address.packed, n.prefixlen))


def _settings(rule: AclRule, direction: str, priority: int, instance: str) -> Document:
    settings: Document = {
        "Id": acl_id(instance, rule.ref),
        "Protocols": str(schema.ACL_ANY_PROTOCOL if rule.protocol is None else rule.protocol),
        "Action": rule.action,
        "Direction": direction,
        "RuleType": "Switch",
        "Priority": priority,
    }
    for key, nets in (("LocalAddresses", rule.local), ("RemoteAddresses", rule.remote)):
        sorted_nets = _sorted_nets(nets)
        if sorted_nets is not None:
            settings[key] = ",".join(map(str, sorted_nets))
    for key, ports in (("LocalPorts", rule.local_ports), ("RemotePorts", rule.remote_ports)):
        if ports is not None:
            settings[key] = ",".join(
                str(p.first) if p.first == p.last else f"{p.first}-{p.last}" for p in ports
            )
    return settings

"""What an IR means for one packet: the executable reference semantics.

The fake backend's ``trace()`` is this module; the kernel backends are
tested against it with real packets. It evaluates one node's IR in the
order a packet meets the hooks (Calico's host-endpoint summary):

1. arriving on a host interface: failsafes, untracked (doNotTrack), preDNAT;
   an explicit allow in untracked skips preDNAT, and an explicit allow in
   either skips that host endpoint's normal and applyOnForward ingress policy;
2. service NAT: frontend lookup, source ranges, route by source class;
3. policy by path: workload egress → workload ingress; host endpoint normal
   policy for traffic to/from host processes; applyOnForward policy for
   forwarded traffic; endpoint-to-host action for pod → own host.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping

import attrs

from dataplane.calc.ir import (
    Backend,
    Chain,
    ChainEnd,
    IpSet,
    IRRule,
    PortMatch,
)
from dataplane.model import Action, IPAddress, Protocol, TierDefault
from dataplane.model.enums import to_protocol


class Verdict(enum.Enum):
    ALLOW = "allow"
    DENY = "deny"  # policy said no
    REJECT = "reject"  # service without endpoints: TCP RST / ICMP unreachable
    DROP = "drop"  # silently dropped (no local endpoints, source range)
    MIXED = "mixed"  # candidates of a service disagree


@attrs.frozen
class Packet:
    """A packet as it arrives at this node.

    ``ingress_interface``: where it arrives; None means it was sent by a
    process on this node, unless ``src`` is a local workload's address, in
    which case that workload's interface is assumed. ``egress_interface``
    names the host interface forwarded traffic leaves by (for named host
    endpoints); None matches only ``*`` host endpoints.
    """

    src: IPAddress = attrs.field(converter=ipaddress.ip_address)
    dst: IPAddress = attrs.field(converter=ipaddress.ip_address)
    protocol: Protocol = attrs.field(default=Protocol.TCP, converter=to_protocol)
    dst_port: int | None = None
    src_port: int = 40000
    ingress_interface: str | None = None
    egress_interface: str | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None


@attrs.frozen
class Decision:
    verdict: Verdict
    reason: str  # the rule (``ns/policy ingress[0]``) or mechanism that decided


@attrs.frozen
class CandidateTrace:
    """The fate of the packet if NAT (or routing) sends it to ``backend``."""

    backend: Backend | None
    decision: Decision
    steps: tuple[str, ...]


@attrs.frozen
class TraceResult:
    verdict: Verdict
    reason: str
    frontend: str | None  # the service port that matched, if any
    masquerade: bool
    candidates: tuple[CandidateTrace, ...]
    steps: tuple[str, ...]

    @property
    def dnat(self) -> tuple[tuple[IPAddress, int], ...]:
        return tuple((c.backend.address, c.backend.port) for c in self.candidates if c.backend)


# ------------------------------------------------------------------ rule matching


def _in_set(ip_set: IpSet | None, addr: IPAddress) -> bool:
    return ip_set is not None and any(addr in net for net in ip_set.nets)


def _port_match(
    pm: PortMatch, addr: IPAddress, proto: int, port: int | None, sets: Mapping[str, IpSet]
) -> bool:
    if port is None:
        return False
    if any(r.first <= port <= r.last for r in pm.ranges):
        return True
    for set_id in pm.named_sets:
        members = sets[set_id].ports if set_id in sets else frozenset()
        if any(addr in net and p == proto and n == port for net, p, n in members):
            return True
    return False


def rule_matches(
    rule: IRRule, pkt: Packet, dst: IPAddress, dport: int | None, sets: Mapping[str, IpSet]
) -> bool:
    proto = int(pkt.protocol)
    checks = (
        rule.protocol is None or rule.protocol == proto,
        rule.not_protocol is None or rule.not_protocol != proto,
        rule.ip_version is None or rule.ip_version == pkt.src.version,
        rule.icmp_type is None
        or (
            pkt.icmp_type == rule.icmp_type
            and (rule.icmp_code is None or pkt.icmp_code == rule.icmp_code)
        ),
        rule.not_icmp_type is None
        or not (
            pkt.icmp_type == rule.not_icmp_type
            and (rule.not_icmp_code is None or pkt.icmp_code == rule.not_icmp_code)
        ),
    )
    if not all(checks):
        return False
    if not all(_in_set(sets.get(s), pkt.src) for s in rule.src_sets):
        return False
    if any(_in_set(sets.get(s), pkt.src) for s in rule.not_src_sets):
        return False
    if not all(_in_set(sets.get(s), dst) for s in rule.dst_sets):
        return False
    if any(_in_set(sets.get(s), dst) for s in rule.not_dst_sets):
        return False
    sport = pkt.src_port
    for pm, addr, port, negate in (
        (rule.src_ports, pkt.src, sport, False),
        (rule.not_src_ports, pkt.src, sport, True),
        (rule.dst_ports, dst, dport, False),
        (rule.not_dst_ports, dst, dport, True),
    ):
        if pm is not None and _port_match(pm, addr, proto, port, sets) == negate:
            return False
    return True


def evaluate_chain(
    chain: Chain, pkt: Packet, dst: IPAddress, dport: int | None, sets: Mapping[str, IpSet]
) -> Decision | None:
    """A chain's decision, or None when it ends in CONTINUE (the next stage decides)."""
    for tier in chain.tiers:
        passed = False
        for policy in tier.policies:
            for rule in policy.rules:
                if not rule_matches(rule, pkt, dst, dport, sets):
                    continue
                if rule.action is Action.LOG:
                    continue
                if rule.action is Action.PASS:
                    passed = True
                    break
                verdict = Verdict.ALLOW if rule.action is Action.ALLOW else Verdict.DENY
                return Decision(verdict, str(rule.ref))
            if passed:
                break
        if not passed and tier.default_action is TierDefault.DENY:
            return Decision(Verdict.DENY, f"end of tier {tier.name}")
    for profile in chain.profiles:
        for rule in profile.rules:
            if rule.action in (Action.LOG, Action.PASS):
                continue
            if rule_matches(rule, pkt, dst, dport, sets):
                verdict = Verdict.ALLOW if rule.action is Action.ALLOW else Verdict.DENY
                return Decision(verdict, str(rule.ref))
    if chain.end is ChainEnd.CONTINUE:
        return None
    if chain.end is ChainEnd.ALLOW:
        return Decision(Verdict.ALLOW, "no policy")
    return Decision(Verdict.DENY, "no policy or profile allowed it")

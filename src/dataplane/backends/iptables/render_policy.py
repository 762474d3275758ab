"""Per-endpoint policy programs → chains (pure: IR in, :class:`Piece` out).

An IR :class:`~dataplane.calc.ir.Chain` becomes one endpoint chain that
calls a chain per tier, which calls a chain per policy (Felix's layout). Marks
carry the outcome up: an Allow rule sets ``accept`` and returns, a Pass rule
sets ``passed`` and returns, a Deny rule drops on the spot, Log logs and goes
on. After each tier the endpoint chain takes ``accept`` as the verdict, and a
tier that fell through drops ("end of tier") unless its default is Pass.
Profiles run once every tier passed; the chain end (DENY/ALLOW/CONTINUE)
comes last.

Policy and tier chains are named by their content: endpoints that share a
policy share its chain, and changing a policy makes new chains instead of
editing live ones. What "allowed" means depends on the hook, so the endpoint
chain gets it as ``allowed``: ACCEPT for host INPUT/OUTPUT, RETURN where more
stages follow (FORWARD: the source's egress, the destination's ingress and
applyOnForward host policy all have to allow), and for untracked/preDNAT a
chain that also records the early allow (mark ``early``) so that normal host
policy is skipped, as Calico specifies.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import attrs

from dataplane.backends.iptables.naming import Marks, Names
from dataplane.backends.iptables.render_ipsets import set_name
from dataplane.backends.iptables.store import ChainKey, Rules
from dataplane.calc.ir import Chain, ChainEnd, IRRule, PolicyProgram, PortMatch, TierProgram
from dataplane.model import Action, ProtoPort, TierDefault

_PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 132: "sctp", 136: "udplite"}
_PORT_PROTOCOLS = (6, 17, 132)  # ports without a protocol: any of these
_MULTIPORT_MAX = 15


@attrs.frozen
class PolicyNames:
    names: Names
    marks: Marks

    def ipset(self, set_id: str) -> str:
        return set_name(self.names, set_id)


def proto_name(number: int) -> str:
    return _PROTO_NAMES.get(number, str(number))


def _icmp(type_: int | None, code: int | None, negate: bool) -> str:
    if type_ is None:
        return ""
    value = f"{type_}/{code}" if code is not None else str(type_)
    return f"-m icmp {'! ' if negate else ''}--icmp-type {value}"


def _multiport_chunks(ranges: Sequence[object]) -> Iterator[str]:
    """Port ranges as multiport lists of at most 15 ports (a range counts twice)."""
    chunk: list[str] = []
    used = 0
    for r in ranges:
        text = str(r)
        cost = 2 if ":" in text else 1
        if used + cost > _MULTIPORT_MAX:
            yield ",".join(chunk)
            chunk, used = [], 0
        chunk.append(text)
        used += cost
    if chunk:
        yield ",".join(chunk)


def _ports_any(pm: PortMatch | None, side: str, pn: PolicyNames) -> list[str] | None:
    """Alternatives (OR) for a positive port match; None when there is no port match."""
    if pm is None:
        return None
    flag = "--dports" if side == "dst" else "--sports"
    alts = [f"-m multiport {flag} {chunk}" for chunk in _multiport_chunks(pm.ranges)]
    alts += [f"-m set --match-set {pn.ipset(s)} {side},{side}" for s in pm.named_sets]
    return alts


def _ports_none(pm: PortMatch | None, side: str, pn: PolicyNames) -> str:
    """One conjunction for a negated port match: in none of the ranges or named sets."""
    if pm is None:
        return ""
    flag = "--dports" if side == "dst" else "--sports"
    parts = [f"-m multiport ! {flag} {chunk}" for chunk in _multiport_chunks(pm.ranges)]
    parts += [f"-m set ! --match-set {pn.ipset(s)} {side},{side}" for s in pm.named_sets]
    return " ".join(parts)


def _needs_protocol(rule: IRRule) -> bool:
    port_matches = (rule.src_ports, rule.not_src_ports, rule.dst_ports, rule.not_dst_ports)
    return any(pm is not None and pm.ranges for pm in port_matches)


def rule_matches(rule: IRRule, pn: PolicyNames) -> list[str]:
    """The match texts of one IR rule; the rule matches if any of them does."""
    if rule.ip_version == 6:
        return []
    protocol = rule.protocol
    if protocol is None and (rule.icmp_type is not None or rule.not_icmp_type is not None):
        protocol = 1
    protocols: list[int | None] = [protocol]
    if protocol is None and _needs_protocol(rule):
        protocols = list(_PORT_PROTOCOLS)
    sets = [f"-m set --match-set {pn.ipset(s)} src" for s in rule.src_sets]
    sets += [f"-m set ! --match-set {pn.ipset(s)} src" for s in rule.not_src_sets]
    sets += [f"-m set --match-set {pn.ipset(s)} dst" for s in rule.dst_sets]
    sets += [f"-m set ! --match-set {pn.ipset(s)} dst" for s in rule.not_dst_sets]
    src_alts = _ports_any(rule.src_ports, "src", pn)
    dst_alts = _ports_any(rule.dst_ports, "dst", pn)
    if src_alts == [] or dst_alts == []:
        return []  # a port match with nothing in it matches nothing
    out = []
    for proto, src, dst in itertools.product(protocols, src_alts or [""], dst_alts or [""]):
        parts = [
            f"-p {proto_name(proto)}" if proto is not None else "",
            f"! -p {proto_name(rule.not_protocol)}" if rule.not_protocol is not None else "",
            _icmp(rule.icmp_type, rule.icmp_code, negate=False),
            _icmp(rule.not_icmp_type, rule.not_icmp_code, negate=True),
            *sets,
            src,
            _ports_none(rule.not_src_ports, "src", pn),
            dst,
            _ports_none(rule.not_dst_ports, "dst", pn),
        ]
        out.append(" ".join(p for p in parts if p))
    return out


def _with(match: str, target: str) -> str:
    return f"{match} {target}" if match else target


def rule_lines(rule: IRRule, pn: PolicyNames) -> list[str]:
    """Rule texts for one IR rule (several when ports or protocols are alternatives)."""
    matches = rule_matches(rule, pn)
    if not matches:
        return []
    marks = pn.marks
    if rule.action is Action.DENY:
        return [_with(m, "-j DROP") for m in matches]
    if rule.action is Action.LOG:
        prefix = f"dp {rule.ref.policy}"[:27]
        return [_with(m, f'-j LOG --log-prefix "{prefix} "') for m in matches]
    bit = marks.accept if rule.action is Action.ALLOW else marks.passed
    return [_with(m, marks.set(bit)) for m in matches] + [f"{marks.has(bit)} -j RETURN"]


@attrs.define
class ProgramRenderer:
    """Renders IR chains into one table's chains, sharing content-named ones."""

    pn: PolicyNames
    table: str
    chains: dict[ChainKey, Rules] = attrs.field(factory=dict)

    def _named(self, kind: str, rules: list[str]) -> str:
        name = self.pn.names.hashed(kind, "\n".join(rules))
        self.chains[(self.table, name)] = tuple(rules)
        return name

    def policy(self, program: PolicyProgram) -> str:
        lines = [line for rule in program.rules for line in rule_lines(rule, self.pn)]
        return self._named("P", lines)

    def tier(self, tier: TierProgram) -> str:
        marks = self.pn.marks
        lines: list[str] = []
        for policy in tier.policies:
            lines.append(f"-j {self.policy(policy)}")
            lines.append(f"{marks.has_any(marks.accept | marks.passed)} -j RETURN")
        if tier.default_action is TierDefault.DENY:
            lines.append("-j DROP")
        return self._named("T", lines)

    def endpoint(self, name: str, chain: Chain, prologue: Sequence[str], allowed: str) -> None:
        """The chain ``name`` evaluating ``chain``; allowed packets go to ``-j allowed``."""
        marks = self.pn.marks
        lines = list(prologue)
        lines.append(marks.clear(marks.accept | marks.passed))
        stages = [self.tier(t) for t in chain.tiers] + [self.policy(p) for p in chain.profiles]
        for stage in stages:
            lines.append(f"-j {stage}")
            lines.append(f"{marks.has(marks.accept)} -j {allowed}")
            lines.append(marks.clear(marks.passed))
        if chain.end is ChainEnd.DENY:
            lines.append("-j DROP")
        elif chain.end is ChainEnd.ALLOW:
            lines.append(marks.set(marks.accept))
            lines.append(f"-j {allowed}")
        self.chains[(self.table, name)] = tuple(lines)


def failsafe_rules(entries: Sequence[ProtoPort], *, inbound: bool, reply: bool) -> list[str]:
    """ACCEPT rules for failsafe ports; ``reply`` matches the return direction (raw table)."""
    out = []
    for pp in entries:
        proto = proto_name(int(pp.protocol))
        peer_is_source = inbound != reply
        peer = f"{'-s' if peer_is_source else '-d'} {pp.net} " if pp.net else ""
        port = "--sport" if reply else "--dport"
        out.append(f"{peer}-p {proto} -m {proto} {port} {pp.port} -j ACCEPT")
    return out

"""IR chains → policy programs: the instructions the datapath interprets (pure).

A :class:`~dataplane.calc.ir.Chain` becomes a flat run of
:class:`~dataplane.backends.ebpf.maps.rules.Rule` values with forward jumps
only, so one pass of at most :data:`~dataplane.backends.ebpf.maps.rules.MAX_RULES`
steps evaluates it (``bpf/dp_policy.h``):

* a rule: ALLOW jumps to the chain's end (the next chain, or the end of the
  program), DENY stops, LOG counts and goes on, PASS jumps past its tier;
* a tier whose default is Deny ends in an unconditional DENY ("end of
  tier"), which Pass jumps over;
* profiles follow (their Log and Pass rules do nothing, as in
  :func:`dataplane.calc.evaluate.evaluate_chain`), then the chain's end:
  DENY, an unconditional ALLOW, or nothing (CONTINUE: no verdict).

Several chains in a row (several ``*`` host endpoints) are evaluated like
``trace``: a deny stops, anything else goes on to the next. Semantics are
calc's; this module only changes their shape. Limits that the maps impose
raise :class:`CapacityError` naming the policy, never truncate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from dataplane.backends.ebpf.maps import rules as r
from dataplane.calc.ir import Chain, ChainEnd, IRRule, PortMatch
from dataplane.errors import CapacityError
from dataplane.model import Action, TierDefault


@attrs.frozen
class Instruction:
    """One dp_rules entry, with where it came from (a rule, or a tier/chain end)."""

    rule: bytes  # the packed dp_rule
    origin: str  # ``str(RuleRef)``, "end of tier X", "chain end"

    def decode(self) -> r.Rule:
        return r.Rule.from_buffer_copy(self.rule)


Program = tuple[Instruction, ...]


@attrs.define
class _Pending:
    rule: r.Rule
    origin: str
    policy: str | None  # None for tier and chain ends
    target: str | None = None  # label this instruction jumps to


class _Builder:
    def __init__(self, set_ids: Mapping[str, int]) -> None:
        self.set_ids = set_ids
        self.out: list[_Pending] = []
        self.labels: dict[str, int] = {}
        self.sets_used: set[str] = set()

    def label(self, name: str) -> None:
        self.labels[name] = len(self.out)

    def emit(
        self, rule: r.Rule, origin: str, policy: str | None, target: str | None = None
    ) -> None:
        self.out.append(_Pending(rule, origin, policy, target))

    def chain(self, chain: Chain, n: int) -> None:
        end = f"chain{n}.end"
        for t, tier in enumerate(chain.tiers):
            tier_end = f"chain{n}.tier{t}.end"
            for policy in tier.policies:
                for rule in policy.rules:
                    self._rule(rule, end, tier_end)
            if tier.default_action is TierDefault.DENY:
                self.emit(_bare(r.ACT_DENY), f"end of tier {tier.name}", None)
            self.label(tier_end)
        for profile in chain.profiles:
            for rule in profile.rules:
                if rule.action not in (Action.LOG, Action.PASS):
                    self._rule(rule, end, end)
        if chain.end is ChainEnd.DENY:
            self.emit(_bare(r.ACT_DENY), "no policy or profile allowed it", None)
        elif chain.end is ChainEnd.ALLOW:
            self.emit(_bare(r.ACT_ALLOW), "no policy", None, end)
        self.label(end)

    def _rule(self, rule: IRRule, end: str, tier_end: str) -> None:
        action = {
            Action.ALLOW: r.ACT_ALLOW,
            Action.DENY: r.ACT_DENY,
            Action.LOG: r.ACT_LOG,
            Action.PASS: r.ACT_PASS,
        }[rule.action]
        target = end if action == r.ACT_ALLOW else tier_end if action == r.ACT_PASS else None
        self.emit(self._encode(rule, action), str(rule.ref), rule.ref.policy, target)

    def _encode(self, rule: IRRule, action: int) -> r.Rule:
        out = _bare(action)
        out.proto = rule.protocol or 0
        out.not_proto = rule.not_protocol or 0
        if rule.ip_version == 6:
            out.flags |= r.R_NEVER
        for value, flag, field in (
            (rule.icmp_type, r.R_ICMP_TYPE, "icmp_type"),
            (rule.icmp_code, r.R_ICMP_CODE, "icmp_code"),
            (rule.not_icmp_type, r.R_NOT_ICMP_TYPE, "not_icmp_type"),
            (rule.not_icmp_code, r.R_NOT_ICMP_CODE, "not_icmp_code"),
        ):
            if value is not None:
                out.flags |= flag
                setattr(out, field, value)
        sets: list[tuple[int, int]] = []
        for ids, role in (
            (rule.src_sets, r.SET_SRC),
            (rule.not_src_sets, r.SET_NOT_SRC),
            (rule.dst_sets, r.SET_DST),
            (rule.not_dst_sets, r.SET_NOT_DST),
        ):
            for set_id in ids:
                numeric = self._set(set_id)
                if numeric is not None:
                    sets.append((role, numeric))
                elif role in (r.SET_SRC, r.SET_DST):
                    out.flags |= r.R_NEVER  # an unknown set has no members
        ports: list[tuple[int, int, int]] = []
        for pm, group in (
            (rule.src_ports, r.PG_SRC),
            (rule.not_src_ports, r.PG_NOT_SRC),
            (rule.dst_ports, r.PG_DST),
            (rule.not_dst_ports, r.PG_NOT_DST),
        ):
            if pm is not None:
                out.port_groups |= group
                self._ports(pm, group, out, sets, ports)
        _check_limit(rule, "IP sets", len(sets), r.RULE_SETS)
        _check_limit(rule, "port ranges", len(ports), r.RULE_PORTS)
        for i, (role, numeric) in enumerate(sets):
            out.set_role[i] = role
            out.set_id[i] = numeric
        for i, (role, first, last) in enumerate(ports):
            out.port_role[i] = role
            out.port_first[i] = first
            out.port_last[i] = last
        return out

    def _ports(
        self,
        pm: PortMatch,
        group: int,
        out: r.Rule,
        sets: list[tuple[int, int]],
        ports: list[tuple[int, int, int]],
    ) -> None:
        bit = group.bit_length() - 1
        for rng in pm.ranges:
            ports.append((bit + 1, rng.first, rng.last))
        for set_id in pm.named_sets:
            numeric = self._set(set_id)
            if numeric is not None:
                sets.append((r.SET_SRC_PORT + bit, numeric))
                out.named_groups |= group

    def _set(self, set_id: str) -> int | None:
        numeric = self.set_ids.get(set_id)
        if numeric is not None:
            self.sets_used.add(set_id)
        return numeric

    def finish(self) -> Program:
        if len(self.out) > r.MAX_RULES:
            # The policies past the limit (or, if only tier and chain ends are, the last one).
            named = [p.policy for p in self.out if p.policy is not None]
            over = sorted({p.policy for p in self.out[r.MAX_RULES :] if p.policy is not None})
            over = over or named[-1:]
            raise CapacityError(
                f"policy {', '.join(over)}: the endpoint's program needs {len(self.out)} "
                f"instructions; the eBPF backend allows {r.MAX_RULES} per program"
            )
        program = []
        for index, pending in enumerate(self.out):
            if pending.target is not None:
                jump = self.labels[pending.target]
                assert jump > index, "policy programs only jump forward"
                pending.rule.jump = jump
            program.append(Instruction(bytes(pending.rule), pending.origin))
        return tuple(program)


def _bare(action: int) -> r.Rule:
    rule = r.Rule()
    rule.action = action
    return rule


def _check_limit(rule: IRRule, what: str, count: int, limit: int) -> None:
    if count > limit:
        raise CapacityError(
            f"policy {rule.ref.policy}: rule {rule.ref} uses {count} {what}; the eBPF "
            f"backend allows {limit} per rule"
        )


def compile_chains(chains: Sequence[Chain], set_ids: Mapping[str, int]) -> tuple[Program, set[str]]:
    """The program evaluating ``chains`` one after the other, and the IR sets it uses."""
    builder = _Builder(set_ids)
    for n, chain in enumerate(chains):
        builder.chain(chain, n)
    return builder.finish(), builder.sets_used


def constant(action: int, origin: str) -> Program:
    """A one-instruction program: an unconditional verdict (endpoint-to-host Drop)."""
    return (Instruction(bytes(_bare(action)), origin),)

"""Calico's policy model: tiers, policies, ordered rules, profiles.

Kubernetes NetworkPolicy is converted into this model (see
:mod:`dataplane.kube`), so there is one policy language for workloads and
host endpoints alike. Field names follow projectcalico.org/v3 in snake case.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs

from dataplane.errors import Problem
from dataplane.model._base import (
    IPNetwork,
    ModelObject,
    ValueObject,
    check_name,
    check_networks,
    check_selector,
    nested,
    nested_one,
    to_networks,
    to_tuple,
)
from dataplane.model.enums import (
    Action,
    PolicyType,
    Protocol,
    TierDefault,
    to_action,
    to_tier_default,
)

DEFAULT_TIER = "default"


@attrs.frozen(order=True)
class PortRange(ValueObject):
    """An inclusive port range; a single port has ``first == last``."""

    first: int
    last: int

    @classmethod
    def single(cls, port: int) -> PortRange:
        return cls(port, port)

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.first <= port <= self.last

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}:{self.last}"

    def _problems(self) -> Iterator[Problem]:
        for name, v in (("first", self.first), ("last", self.last)):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 65535:
                yield Problem(name, f"not a port number: {v!r}")
                return
        if self.first > self.last:
            yield Problem("", f"range {self.first}:{self.last} is empty")


PortSpec = PortRange | str  # a range, or the name of an endpoint's port


def _to_port_spec(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return PortRange(value, value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return PortRange(int(text), int(text))
        first, sep, last = text.partition(":")
        if sep and first.isdigit() and last.isdigit():
            return PortRange(int(first), int(last))
        return text
    return value


def _to_port_specs(values: Any) -> tuple[Any, ...]:
    return tuple(_to_port_spec(v) for v in to_tuple(values))


def _check_ports(field: str, values: tuple[Any, ...]) -> Iterator[Problem]:
    for i, v in enumerate(values):
        if isinstance(v, PortRange):
            yield from nested_one(f"{field}[{i}]", v)
        elif isinstance(v, str):
            if not v or ":" in v or " " in v:
                yield Problem(f"{field}[{i}]", f"not a port, range or port name: {v!r}")
        else:
            yield Problem(f"{field}[{i}]", f"not a port, range or port name: {v!r}")


@attrs.frozen
class EntityMatch(ValueObject):
    """The source or destination side of a rule; every given criterion must match.

    Lists match if any entry matches. ``not_selector`` matches any packet,
    including from outside the cluster, whose peer is not a selected
    endpoint — unlike ``selector: "!has(x)"``, which matches known endpoints only.
    """

    nets: tuple[IPNetwork, ...] = attrs.field(default=(), converter=to_networks)
    not_nets: tuple[IPNetwork, ...] = attrs.field(default=(), converter=to_networks)
    selector: str | None = None
    not_selector: str | None = None
    namespace_selector: str | None = None
    ports: tuple[PortSpec, ...] = attrs.field(default=(), converter=_to_port_specs)
    not_ports: tuple[PortSpec, ...] = attrs.field(default=(), converter=_to_port_specs)

    @property
    def is_empty(self) -> bool:
        return self == EntityMatch()

    @property
    def has_ports(self) -> bool:
        return bool(self.ports or self.not_ports)

    def _problems(self) -> Iterator[Problem]:
        yield from check_networks("nets", self.nets)
        yield from check_networks("not_nets", self.not_nets)
        yield from check_selector("selector", self.selector)
        yield from check_selector("not_selector", self.not_selector)
        yield from check_selector("namespace_selector", self.namespace_selector)
        yield from _check_ports("ports", self.ports)
        yield from _check_ports("not_ports", self.not_ports)


@attrs.frozen
class IcmpMatch(ValueObject):
    """ICMP type, and optionally code (a code needs a type)."""

    type: int
    code: int | None = None

    def _problems(self) -> Iterator[Problem]:
        if (
            isinstance(self.type, bool)
            or not isinstance(self.type, int)
            or not 0 <= self.type <= 254
        ):
            yield Problem("type", f"must be 0-254, not {self.type!r}")
        if self.code is not None and (
            isinstance(self.code, bool)
            or not isinstance(self.code, int)
            or not 0 <= self.code <= 255
        ):
            yield Problem("code", f"must be 0-255, not {self.code!r}")


def _to_protocol(value: Any) -> Any:
    return None if value is None else Protocol.parse(value)


def _check_protocol(field: str, value: Any) -> Iterator[Problem]:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 255:
        yield Problem(field, f"not a protocol name or number 1-255: {value!r}")


@attrs.frozen
class Rule(ValueObject):
    """One ordered rule. Log continues to the next rule; the others decide."""

    action: Action = attrs.field(converter=to_action)
    protocol: Protocol | int | None = attrs.field(default=None, converter=_to_protocol)
    not_protocol: Protocol | int | None = attrs.field(default=None, converter=_to_protocol)
    icmp: IcmpMatch | None = None
    not_icmp: IcmpMatch | None = None
    ip_version: int | None = None
    source: EntityMatch = attrs.field(factory=EntityMatch)
    destination: EntityMatch = attrs.field(factory=EntityMatch)

    def _problems(self) -> Iterator[Problem]:
        if not isinstance(self.action, Action):
            yield Problem("action", f"must be Allow, Deny, Log or Pass, not {self.action!r}")
        yield from _check_protocol("protocol", self.protocol)
        yield from _check_protocol("not_protocol", self.not_protocol)
        if self.ip_version not in (None, 4, 6):
            yield Problem("ip_version", f"must be 4 or 6, not {self.ip_version!r}")
        yield from nested_one("icmp", self.icmp)
        yield from nested_one("not_icmp", self.not_icmp)
        yield from nested_one("source", self.source)
        yield from nested_one("destination", self.destination)
        yield from self._consistency()

    def _consistency(self) -> Iterator[Problem]:
        proto = Protocol.parse(self.protocol) if self.protocol is not None else None
        if (self.icmp or self.not_icmp) and not (isinstance(proto, Protocol) and proto.is_icmp):
            yield Problem("icmp", "an ICMP match needs protocol ICMP or ICMPv6")
        for side in ("source", "destination"):
            match: EntityMatch = getattr(self, side)
            if match.has_ports and not (isinstance(proto, Protocol) and proto.has_ports):
                yield Problem(f"{side}.ports", "ports need protocol TCP, UDP, SCTP or UDPLite")
            if self.ip_version is not None:
                for net in (*match.nets, *match.not_nets):
                    if getattr(net, "version", self.ip_version) != self.ip_version:
                        yield Problem(f"{side}.nets", f"{net} is not IPv{self.ip_version}")
        if proto == Protocol.ICMP and self.ip_version == 6:
            yield Problem("protocol", "ICMP with ip_version 6; use ICMPv6")


_INGRESS = frozenset({PolicyType.INGRESS})
_EGRESS = frozenset({PolicyType.EGRESS})
_BOTH = _INGRESS | _EGRESS


def _effective_types(
    types: frozenset[PolicyType] | None, ingress: bool, egress: bool
) -> frozenset[PolicyType]:
    if types is not None:
        return types
    if egress and not ingress:
        return _EGRESS
    return _BOTH if egress else _INGRESS


def _to_types(values: Any) -> Any:
    if values is None:
        return None
    return frozenset(PolicyType.parse(v) for v in to_tuple(values))


@attrs.frozen
class Tier(ModelObject):
    """An ordered group of policies; Pass jumps from one tier to the next."""

    kind = "Tier"

    name: str
    order: float | None = None
    default_action: TierDefault = attrs.field(default=TierDefault.DENY, converter=to_tier_default)

    def _problems(self) -> Iterator[Problem]:
        yield from check_name("name", self.name)
        if not isinstance(self.default_action, TierDefault):
            yield Problem("default_action", f"must be Deny or Pass, not {self.default_action!r}")


@attrs.frozen
class Policy(ModelObject):
    """A Calico NetworkPolicy (``namespace`` set) or GlobalNetworkPolicy (``None``).

    ``types`` defaults as Calico does: Ingress, plus Egress if there are
    egress rules (and Egress alone when only egress rules are given).
    """

    kind = "Policy"

    name: str
    namespace: str | None = None
    tier: str = DEFAULT_TIER
    order: float | None = None
    selector: str = "all()"
    types: frozenset[PolicyType] | None = attrs.field(default=None, converter=_to_types)
    ingress: tuple[Rule, ...] = attrs.field(default=(), converter=to_tuple)
    egress: tuple[Rule, ...] = attrs.field(default=(), converter=to_tuple)
    namespace_selector: str | None = None
    apply_on_forward: bool = False
    pre_dnat: bool = False
    do_not_track: bool = False

    @property
    def is_global(self) -> bool:
        return self.namespace is None

    @property
    def effective_types(self) -> frozenset[PolicyType]:
        return _effective_types(self.types, bool(self.ingress), bool(self.egress))

    def _problems(self) -> Iterator[Problem]:
        yield from check_name("name", self.name)
        if self.namespace is not None:
            yield from check_name("namespace", self.namespace)
        yield from check_name("tier", self.tier)
        if self.order is not None and (
            isinstance(self.order, bool) or not isinstance(self.order, int | float)
        ):
            yield Problem("order", f"must be a number, not {self.order!r}")
        yield from check_selector("selector", self.selector)
        yield from check_selector("namespace_selector", self.namespace_selector)
        if self.types is not None:
            for t in self.types:
                if not isinstance(t, PolicyType):
                    yield Problem("types", f"must be Ingress or Egress, not {t!r}")
        yield from nested("ingress", self.ingress)
        yield from nested("egress", self.egress)
        yield from self._flag_problems()

    def _flag_problems(self) -> Iterator[Problem]:
        if self.namespace is not None:
            for flag in ("apply_on_forward", "pre_dnat", "do_not_track", "namespace_selector"):
                if getattr(self, flag):
                    yield Problem(flag, "only global policies may set it")
        if self.pre_dnat and self.do_not_track:
            yield Problem("pre_dnat", "pre_dnat and do_not_track cannot both be set")
        if (self.pre_dnat or self.do_not_track) and not self.apply_on_forward:
            field = "pre_dnat" if self.pre_dnat else "do_not_track"
            yield Problem(field, "needs apply_on_forward")
        if self.pre_dnat and (self.egress or PolicyType.EGRESS in self.effective_types):
            yield Problem("egress", "pre_dnat policies have ingress rules only")


@attrs.frozen
class Profile(ModelObject):
    """Rules applied after all tiers pass (Calico's namespace/service-account profiles)."""

    kind = "Profile"

    name: str
    ingress: tuple[Rule, ...] = attrs.field(default=(), converter=to_tuple)
    egress: tuple[Rule, ...] = attrs.field(default=(), converter=to_tuple)

    def _problems(self) -> Iterator[Problem]:
        yield from check_name("name", self.name)
        yield from nested("ingress", self.ingress)
        yield from nested("egress", self.egress)

"""The backend-neutral intermediate representation (IR) that ``calc`` produces.

Everything a backend needs is decided here, once: which frontends exist,
which backends each source class may reach, whether the source is
masqueraded, what happens with no endpoints; which IP sets exist with which
members; and, per local endpoint, the ordered policy program for each hook.
A backend translates these values into kernel objects and must not re-derive
Kubernetes or Calico semantics (see :mod:`dataplane.calc.evaluate` for the
one executable definition of what the IR means for a packet).

All values are frozen attrs classes, so they compare by value: the engine
sends a backend only what changed.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs

from dataplane.model import (
    Action,
    EndpointToHostAction,
    ExternalServiceMode,
    IPAddress,
    IPNetwork,
    ObjectKey,
    PortRange,
    Protocol,
    ProtoPort,
    TierDefault,
)

# ==================================================================== services


class FrontendKind(enum.Enum):
    CLUSTER_IP = "cluster-ip"
    NODE_PORT = "node-port"
    EXTERNAL_IP = "external-ip"
    LOAD_BALANCER = "load-balancer"


class SourceClass(enum.Enum):
    """Who sent a packet, as service routing distinguishes it.

    POD: the source address is inside the cluster's pod CIDRs.
    HOST: the source address is one of this node's own addresses.
    ANY: everything (the last route of every frontend uses it).
    """

    POD = "pod"
    HOST = "host"
    ANY = "any"


class NoEndpoints(enum.Enum):
    """What a route does when it has no backends (kube-proxy: REJECT, or DROP for Local)."""

    REJECT = "reject"
    DROP = "drop"


@attrs.frozen(order=True)
class Backend:
    """One endpoint address:port a frontend may DNAT to."""

    address: IPAddress
    port: int
    node: str | None
    local: bool
    terminating: bool = False


@attrs.frozen
class Route:
    """Where packets of one source class go; a frontend's first matching route decides.

    ``masquerade`` asks the backend to SNAT the packet to the node's address
    on the way to the chosen backend (kube-proxy's KUBE-MARK-MASQ). Hairpin
    (a pod reaching itself through a service) is masqueraded whenever the
    frontend's ``hairpin_masquerade`` is set, whatever the route says.
    """

    sources: SourceClass
    backends: tuple[Backend, ...]
    masquerade: bool
    if_empty: NoEndpoints = NoEndpoints.REJECT


FrontendKey = tuple[IPAddress, Protocol, int]


@attrs.frozen
class Frontend:
    """A (virtual address, protocol, port) that is DNATed to service backends."""

    address: IPAddress
    protocol: Protocol
    port: int
    kind: FrontendKind
    service: str  # "namespace/name:portname" for humans and counters
    routes: tuple[Route, ...]
    affinity_timeout: int | None = None  # ClientIP affinity, seconds
    source_ranges: tuple[IPNetwork, ...] = ()  # empty: any source; else others are dropped
    hairpin_masquerade: bool = True

    @property
    def key(self) -> FrontendKey:
        return (self.address, self.protocol, self.port)

    def route_for(self, source_classes: frozenset[SourceClass]) -> Route:
        for route in self.routes:
            if route.sources in source_classes or route.sources is SourceClass.ANY:
                return route
        raise LookupError(f"frontend {self.service} has no route for {source_classes}")


@attrs.frozen
class HealthCheck:
    """A healthCheckNodePort the node must accept (the agent answers it)."""

    port: int
    service: str
    local_endpoints: int


# ==================================================================== IP sets


@attrs.frozen
class IpSet:
    """Addresses (as networks) or address+protocol+port members, for one match.

    ``nets`` serve selector and CIDR matches; ``ports`` serve named ports
    (endpoint address, protocol, port). The id is a stable hash of what the
    set stands for, so it survives restarts and never needs renaming.
    """

    id: str
    description: str  # the selector or CIDR list it stands for
    nets: frozenset[IPNetwork] = frozenset()
    ports: frozenset[tuple[IPNetwork, Protocol, int]] = frozenset()

    @property
    def has_ports(self) -> bool:
        return bool(self.ports)


# ==================================================================== policy


class Direction(enum.Enum):
    INGRESS = "ingress"  # towards the endpoint
    EGRESS = "egress"  # away from the endpoint


@attrs.frozen
class PortMatch:
    """Port ranges plus named-port IP sets; matches if any of them does."""

    ranges: tuple[PortRange, ...] = ()
    named_sets: tuple[str, ...] = ()  # ids of IpSets with ``ports`` members


@attrs.frozen
class RuleRef:
    """Which policy or profile, direction and rule index an IR rule came from."""

    policy: str  # e.g. "default/allow-web", "gnp:deny-all", "profile:kns.default"
    direction: Direction
    index: int

    def __str__(self) -> str:
        return f"{self.policy} {self.direction.value}[{self.index}]"


@attrs.frozen
class IRRule:
    """One rule with every selector and CIDR resolved into IP-set ids.

    Source and destination checks: the address must be in *every* set of
    ``*_sets`` (criteria are ANDed) and in *none* of ``not_*_sets``.
    """

    action: Action
    ref: RuleRef
    protocol: int | None = None
    not_protocol: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    not_icmp_type: int | None = None
    not_icmp_code: int | None = None
    ip_version: int | None = None
    src_sets: tuple[str, ...] = ()
    not_src_sets: tuple[str, ...] = ()
    dst_sets: tuple[str, ...] = ()
    not_dst_sets: tuple[str, ...] = ()
    src_ports: PortMatch | None = None
    not_src_ports: PortMatch | None = None
    dst_ports: PortMatch | None = None
    not_dst_ports: PortMatch | None = None


@attrs.frozen
class PolicyProgram:
    """The rules of one policy (or profile) in one direction, in order."""

    name: str
    rules: tuple[IRRule, ...]


@attrs.frozen
class TierProgram:
    """The policies of one tier that apply to an endpoint, in Calico's order."""

    name: str
    default_action: TierDefault
    policies: tuple[PolicyProgram, ...]


class ChainEnd(enum.Enum):
    """Verdict when nothing in a chain decided (no tier passed on to profiles, either)."""

    DENY = "deny"
    ALLOW = "allow"
    CONTINUE = "continue"  # no verdict: the next stage decides (preDNAT, untracked)


@attrs.frozen
class Chain:
    """An ordered policy program for one endpoint, one hook and one direction.

    Evaluation: tiers in order; in a tier, policies then rules in order; Log
    continues, Allow/Deny decide, Pass leaves the tier. A tier with no
    deciding rule ends in its ``default_action`` (Deny ⇒ deny "end of tier";
    Pass ⇒ next tier). When every tier passed (or none applied), profiles are
    evaluated; if still nothing decided, ``end`` applies.
    """

    tiers: tuple[TierProgram, ...] = ()
    profiles: tuple[PolicyProgram, ...] = ()
    end: ChainEnd = ChainEnd.DENY

    @property
    def rule_count(self) -> int:
        return sum(len(p.rules) for t in self.tiers for p in t.policies) + sum(
            len(p.rules) for p in self.profiles
        )


ALLOW_ALL = Chain(end=ChainEnd.ALLOW)
NO_VERDICT = Chain(end=ChainEnd.CONTINUE)


@attrs.frozen
class WorkloadProgram:
    """Policy for one local workload endpoint (a pod interface on this node)."""

    key: ObjectKey
    interface: str
    addresses: tuple[IPAddress, ...]
    ingress: Chain
    egress: Chain


@attrs.frozen
class HostProgram:
    """Policy for one host endpoint: each hook a chain of its own.

    ``ingress``/``egress``: traffic to / from host processes (normal policy).
    ``forward_ingress``/``forward_egress``: traffic forwarded through the host
    arriving / leaving via this interface (applyOnForward policies only;
    ``ALLOW_ALL`` when none apply). ``pre_dnat_ingress``: before service NAT.
    ``untracked_*``: doNotTrack policies, before conntrack. Failsafe ports
    (in :class:`IRSettings`) are checked before any of these.
    """

    key: ObjectKey
    interface: str  # a name, or "*" for all host data interfaces
    addresses: tuple[IPAddress, ...]
    ingress: Chain
    egress: Chain
    forward_ingress: Chain = ALLOW_ALL
    forward_egress: Chain = ALLOW_ALL
    pre_dnat_ingress: Chain = NO_VERDICT
    untracked_ingress: Chain = NO_VERDICT
    untracked_egress: Chain = NO_VERDICT


# ==================================================================== the whole


@attrs.frozen
class RemoteNode:
    """Another node: where its pods are, for routing and tunnels."""

    name: str
    addresses: tuple[IPAddress, ...]
    pod_cidrs: tuple[IPNetwork, ...]


@attrs.frozen
class IRSettings:
    """Node-wide facts every backend needs."""

    node: str
    local_addresses: tuple[IPAddress, ...]
    cluster_cidrs: tuple[IPNetwork, ...]
    failsafe_inbound: tuple[ProtoPort, ...]
    failsafe_outbound: tuple[ProtoPort, ...]
    external_service_mode: ExternalServiceMode
    endpoint_to_host_action: EndpointToHostAction
    host_interface_pattern: str
    workload_interface_prefix: str


@attrs.frozen
class DataplaneIR:
    """Everything one node's data plane must implement."""

    settings: IRSettings
    frontends: Mapping[FrontendKey, Frontend] = attrs.field(factory=dict)
    health_checks: Mapping[int, HealthCheck] = attrs.field(factory=dict)
    ip_sets: Mapping[str, IpSet] = attrs.field(factory=dict)
    workloads: Mapping[ObjectKey, WorkloadProgram] = attrs.field(factory=dict)
    hosts: Mapping[ObjectKey, HostProgram] = attrs.field(factory=dict)
    remote_nodes: Mapping[str, RemoteNode] = attrs.field(factory=dict)


@attrs.frozen
class IRDelta:
    """What changed between two IRs; ``ir`` is always the complete new one.

    ``full`` asks for a from-scratch resync: make the kernel equal to ``ir``
    and remove any of the backend's own objects that ``ir`` lacks.
    """

    ir: DataplaneIR
    full: bool = False
    settings_changed: bool = False
    frontends_upserted: tuple[Frontend, ...] = ()
    frontends_removed: tuple[FrontendKey, ...] = ()
    health_checks_changed: bool = False
    ip_sets_upserted: tuple[IpSet, ...] = ()
    ip_sets_removed: tuple[str, ...] = ()
    workloads_upserted: tuple[WorkloadProgram, ...] = ()
    workloads_removed: tuple[ObjectKey, ...] = ()
    hosts_upserted: tuple[HostProgram, ...] = ()
    hosts_removed: tuple[ObjectKey, ...] = ()
    remote_nodes_changed: bool = False

    @property
    def empty(self) -> bool:
        return not (
            self.full
            or self.settings_changed
            or self.frontends_upserted
            or self.frontends_removed
            or self.health_checks_changed
            or self.ip_sets_upserted
            or self.ip_sets_removed
            or self.workloads_upserted
            or self.workloads_removed
            or self.hosts_upserted
            or self.hosts_removed
            or self.remote_nodes_changed
        )

"""Services and their endpoints, with Kubernetes' field meanings.

The model only says what the agent asked for; what it means for packets
(which frontends exist, masquerade, fallbacks) is computed in
:mod:`dataplane.calc.services`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs

from dataplane.errors import Problem
from dataplane.model._base import (
    IPAddress,
    IPNetwork,
    ModelObject,
    ValueObject,
    check_addresses,
    check_name,
    check_networks,
    check_port,
    nested,
    to_addresses,
    to_networks,
    to_tuple,
)
from dataplane.model.enums import (
    SERVICE_PROTOCOLS,
    Protocol,
    ServiceType,
    SessionAffinity,
    TrafficPolicy,
    to_protocol,
    to_service_type,
    to_session_affinity,
    to_traffic_policy,
)

DEFAULT_AFFINITY_TIMEOUT = 10800  # seconds; Kubernetes' default for ClientIP affinity
MAX_AFFINITY_TIMEOUT = 86400


def _check_protocol(field: str, value: Any) -> Iterator[Problem]:
    if value not in SERVICE_PROTOCOLS:
        yield Problem(field, f"must be TCP, UDP or SCTP, not {value!r}")


def _to_target_port(value: Any) -> Any:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


@attrs.frozen
class ServicePort(ValueObject):
    """One port of a service. ``target_port`` may name an endpoint port."""

    port: int
    protocol: Protocol = attrs.field(default=Protocol.TCP, converter=to_protocol)
    name: str = ""
    target_port: int | str | None = attrs.field(default=None, converter=_to_target_port)
    node_port: int | None = None

    @property
    def effective_target(self) -> int | str:
        return self.port if self.target_port is None else self.target_port

    def _problems(self) -> Iterator[Problem]:
        yield from check_port("port", self.port)
        yield from _check_protocol("protocol", self.protocol)
        yield from check_name("name", self.name, allow_empty=True)
        tp = self.target_port
        if isinstance(tp, int):
            yield from check_port("target_port", tp)
        elif isinstance(tp, str) and not tp:
            yield Problem("target_port", "named target port must not be empty")
        elif tp is not None and not isinstance(tp, str):
            yield Problem("target_port", f"must be a port number or a port name, not {tp!r}")
        yield from check_port("node_port", self.node_port, optional=True)


@attrs.frozen
class Service(ModelObject):
    """A Kubernetes Service: its frontends and how traffic may use them."""

    kind = "Service"

    namespace: str
    name: str
    ports: tuple[ServicePort, ...] = attrs.field(converter=to_tuple)
    type: ServiceType = attrs.field(default=ServiceType.CLUSTER_IP, converter=to_service_type)
    cluster_ips: tuple[IPAddress, ...] = attrs.field(default=(), converter=to_addresses)
    external_ips: tuple[IPAddress, ...] = attrs.field(default=(), converter=to_addresses)
    load_balancer_ips: tuple[IPAddress, ...] = attrs.field(default=(), converter=to_addresses)
    load_balancer_source_ranges: tuple[IPNetwork, ...] = attrs.field(
        default=(), converter=to_networks
    )
    external_traffic_policy: TrafficPolicy = attrs.field(
        default=TrafficPolicy.CLUSTER, converter=to_traffic_policy
    )
    internal_traffic_policy: TrafficPolicy = attrs.field(
        default=TrafficPolicy.CLUSTER, converter=to_traffic_policy
    )
    session_affinity: SessionAffinity = attrs.field(
        default=SessionAffinity.NONE, converter=to_session_affinity
    )
    affinity_timeout: int = DEFAULT_AFFINITY_TIMEOUT
    health_check_node_port: int | None = None

    @property
    def externally_reachable(self) -> bool:
        return bool(
            self.external_ips or self.load_balancer_ips or any(p.node_port for p in self.ports)
        )

    def _problems(self) -> Iterator[Problem]:
        yield from check_name("namespace", self.namespace)
        yield from check_name("name", self.name)
        if not isinstance(self.type, ServiceType):
            yield Problem("type", f"must be ClusterIP, NodePort or LoadBalancer, not {self.type!r}")
        yield from check_addresses("cluster_ips", self.cluster_ips)
        yield from check_addresses("external_ips", self.external_ips)
        yield from check_addresses("load_balancer_ips", self.load_balancer_ips)
        yield from check_networks("load_balancer_source_ranges", self.load_balancer_source_ranges)
        if not isinstance(self.external_traffic_policy, TrafficPolicy):
            yield Problem(
                "external_traffic_policy",
                f"must be Cluster or Local, not {self.external_traffic_policy!r}",
            )
        if not isinstance(self.internal_traffic_policy, TrafficPolicy):
            yield Problem(
                "internal_traffic_policy",
                f"must be Cluster or Local, not {self.internal_traffic_policy!r}",
            )
        if not isinstance(self.session_affinity, SessionAffinity):
            yield Problem(
                "session_affinity", f"must be None or ClientIP, not {self.session_affinity!r}"
            )
        if (
            isinstance(self.affinity_timeout, bool)
            or not isinstance(self.affinity_timeout, int)
            or not 1 <= self.affinity_timeout <= MAX_AFFINITY_TIMEOUT
        ):
            yield Problem("affinity_timeout", f"must be 1-{MAX_AFFINITY_TIMEOUT} seconds")
        yield from self._port_problems()
        yield from self._type_problems()

    def _port_problems(self) -> Iterator[Problem]:
        if not self.ports:
            yield Problem("ports", "a service needs at least one port")
        yield from nested("ports", [p for p in self.ports if isinstance(p, ServicePort)])
        seen: dict[tuple[Any, int], int] = {}
        names: dict[str, int] = {}
        for i, p in enumerate(self.ports):
            if not isinstance(p, ServicePort):
                yield Problem(f"ports[{i}]", f"must be a ServicePort, not {p!r}")
                continue
            if (p.protocol, p.port) in seen:
                yield Problem(f"ports[{i}]", f"duplicate {p.protocol.name}/{p.port}")
            seen[(p.protocol, p.port)] = i
            if len(self.ports) > 1 and not p.name:
                yield Problem(f"ports[{i}].name", "required when a service has several ports")
            if p.name and p.name in names:
                yield Problem(f"ports[{i}].name", f"duplicate port name {p.name!r}")
            names[p.name] = i

    def _type_problems(self) -> Iterator[Problem]:
        external = self.type in (ServiceType.NODE_PORT, ServiceType.LOAD_BALANCER)
        for i, p in enumerate(self.ports):
            if isinstance(p, ServicePort) and p.node_port is not None and not external:
                yield Problem(
                    f"ports[{i}].node_port",
                    "only NodePort and LoadBalancer services have node ports",
                )
        if self.load_balancer_ips and self.type is not ServiceType.LOAD_BALANCER:
            yield Problem("load_balancer_ips", "only LoadBalancer services have them")
        if self.load_balancer_source_ranges and self.type is not ServiceType.LOAD_BALANCER:
            yield Problem("load_balancer_source_ranges", "only LoadBalancer services have them")
        if self.external_traffic_policy is TrafficPolicy.LOCAL and not external:
            yield Problem(
                "external_traffic_policy", "Local needs a NodePort or LoadBalancer service"
            )
        if self.health_check_node_port is not None:
            yield from check_port("health_check_node_port", self.health_check_node_port)
            if self.external_traffic_policy is not TrafficPolicy.LOCAL or not external:
                yield Problem(
                    "health_check_node_port",
                    "only with externalTrafficPolicy Local on a NodePort or LoadBalancer service",
                )


@attrs.frozen
class EndpointPort(ValueObject):
    """A port the endpoints listen on; ``name`` matches ``ServicePort.name``."""

    port: int
    protocol: Protocol = attrs.field(default=Protocol.TCP, converter=to_protocol)
    name: str = ""

    def _problems(self) -> Iterator[Problem]:
        yield from check_port("port", self.port)
        yield from _check_protocol("protocol", self.protocol)


@attrs.frozen
class Endpoint(ValueObject):
    """One backend of a service, with EndpointSlice conditions.

    ``serving`` defaults to ``ready``, as the API server does.
    """

    addresses: tuple[IPAddress, ...] = attrs.field(converter=to_addresses)
    node: str | None = None
    ready: bool = True
    serving: bool | None = None
    terminating: bool = False

    @property
    def is_serving(self) -> bool:
        return self.ready if self.serving is None else self.serving

    def _problems(self) -> Iterator[Problem]:
        if not self.addresses:
            yield Problem("addresses", "an endpoint needs an address")
        yield from check_addresses("addresses", self.addresses)
        if self.ready and self.terminating:
            yield Problem("ready", "a terminating endpoint cannot be ready")


@attrs.frozen
class EndpointSet(ModelObject):
    """All endpoints of one service (the union of its EndpointSlices)."""

    kind = "EndpointSet"

    namespace: str
    name: str
    ports: tuple[EndpointPort, ...] = attrs.field(converter=to_tuple)
    endpoints: tuple[Endpoint, ...] = attrs.field(default=(), converter=to_tuple)

    def _problems(self) -> Iterator[Problem]:
        yield from check_name("namespace", self.namespace)
        yield from check_name("name", self.name)
        yield from nested("ports", self.ports)
        yield from nested("endpoints", self.endpoints)

"""Node-level settings: failsafes, service modes, host interface naming.

Defaults are Felix's, so an agent moving from Calico gets the same node
behaviour without configuring anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import attrs

from dataplane.errors import Problem
from dataplane.model._base import (
    IPNetwork,
    ModelObject,
    ValueObject,
    check_networks,
    check_port,
    nested,
    to_network,
    to_networks,
    to_tuple,
)
from dataplane.model.enums import (
    EndpointToHostAction,
    ExternalServiceMode,
    Protocol,
    to_endpoint_to_host_action,
    to_external_service_mode,
    to_protocol,
)

# Felix's BPFDataIfacePattern default: which host interfaces are "data" interfaces.
DEFAULT_HOST_INTERFACE_PATTERN = r"^((en|wl|ww|sl|ib)[Popsx].*|(eth|wlan|wwan|bond).*)"
DEFAULT_WORKLOAD_INTERFACE_PREFIX = "dpw"


def _to_optional_network(value: Any) -> Any:
    return None if value is None else to_network(value)


@attrs.frozen
class ProtoPort(ValueObject):
    """A failsafe entry: protocol and port, optionally limited to a peer CIDR."""

    protocol: Protocol = attrs.field(converter=to_protocol)
    port: int
    net: IPNetwork | None = attrs.field(default=None, converter=_to_optional_network)

    @classmethod
    def parse(cls, text: str) -> ProtoPort:
        """Felix's ``tcp:22`` / ``udp:10.0.0.0/8:53`` notation."""
        parts = text.strip().split(":")
        port: Any = parts[-1]
        port = int(port) if port.isdigit() else port
        net = parts[1] if len(parts) == 3 else None
        protocol: Any = parts[0] if len(parts) in (2, 3) else text
        return cls(protocol, port, net)

    def __str__(self) -> str:
        net = f"{self.net}:" if self.net else ""
        return f"{self.protocol.name.lower()}:{net}{self.port}"

    def _problems(self) -> Iterator[Problem]:
        if self.protocol not in (Protocol.TCP, Protocol.UDP, Protocol.SCTP):
            yield Problem("protocol", f"must be tcp, udp or sctp, not {self.protocol!r}")
        yield from check_port("port", self.port)
        if self.net is not None:
            yield from check_networks("net", (self.net,))


def _proto_ports(text: str) -> tuple[ProtoPort, ...]:
    return tuple(ProtoPort.parse(p) for p in text.split(","))


DEFAULT_FAILSAFE_INBOUND = _proto_ports(
    "tcp:22,udp:68,tcp:179,tcp:2379,tcp:2380,tcp:5473,tcp:6443,tcp:6666,tcp:6667"
)
DEFAULT_FAILSAFE_OUTBOUND = _proto_ports(
    "udp:53,udp:67,tcp:179,tcp:2379,tcp:2380,tcp:5473,tcp:6443,tcp:6666,tcp:6667"
)


def _to_proto_ports(values: Any) -> tuple[Any, ...]:
    if values is None or values == "none":
        return ()
    if isinstance(values, str):
        return tuple(ProtoPort.parse(p) for p in values.split(","))
    return tuple(ProtoPort.parse(v) if isinstance(v, str) else v for v in to_tuple(values))


@attrs.frozen
class NodeSettings(ModelObject):
    """Per-node behaviour that is not a Kubernetes object (Felix configuration)."""

    kind = "NodeSettings"

    name: str = "default"
    failsafe_inbound: tuple[ProtoPort, ...] = attrs.field(
        default=DEFAULT_FAILSAFE_INBOUND, converter=_to_proto_ports
    )
    failsafe_outbound: tuple[ProtoPort, ...] = attrs.field(
        default=DEFAULT_FAILSAFE_OUTBOUND, converter=_to_proto_ports
    )
    external_service_mode: ExternalServiceMode = attrs.field(
        default=ExternalServiceMode.TUNNEL, converter=to_external_service_mode
    )
    endpoint_to_host_action: EndpointToHostAction = attrs.field(
        default=EndpointToHostAction.DROP, converter=to_endpoint_to_host_action
    )
    host_interface_pattern: str = DEFAULT_HOST_INTERFACE_PATTERN
    workload_interface_prefix: str = DEFAULT_WORKLOAD_INTERFACE_PREFIX
    cluster_cidrs: tuple[IPNetwork, ...] = attrs.field(default=(), converter=to_networks)
    masquerade_all: bool = False

    def _problems(self) -> Iterator[Problem]:
        yield from nested("failsafe_inbound", self.failsafe_inbound)
        yield from nested("failsafe_outbound", self.failsafe_outbound)
        if not isinstance(self.external_service_mode, ExternalServiceMode):
            yield Problem(
                "external_service_mode",
                f"must be tunnel or dsr, not {self.external_service_mode!r}",
            )
        if not isinstance(self.endpoint_to_host_action, EndpointToHostAction):
            yield Problem(
                "endpoint_to_host_action",
                f"must be Drop, Return or Accept, not {self.endpoint_to_host_action!r}",
            )
        try:
            re.compile(self.host_interface_pattern)
        except (re.error, TypeError) as exc:
            yield Problem("host_interface_pattern", f"not a regular expression: {exc}")
        if not self.workload_interface_prefix or len(self.workload_interface_prefix) > 8:
            yield Problem("workload_interface_prefix", "must be 1-8 characters")
        yield from check_networks("cluster_cidrs", self.cluster_cidrs)

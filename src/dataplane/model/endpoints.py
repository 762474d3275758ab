"""Workload and host endpoints: the interfaces policy is enforced on."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import attrs

from dataplane.errors import Problem
from dataplane.model._base import (
    IPAddress,
    ModelObject,
    ValueObject,
    check_addresses,
    check_labels,
    check_name,
    check_port,
    nested,
    to_addresses,
    to_labels,
    to_str_tuple,
    to_tuple,
)
from dataplane.model.enums import Protocol, to_protocol

MAX_INTERFACE_NAME = 15  # IFNAMSIZ - 1


@attrs.frozen
class NamedPort(ValueObject):
    """A port an endpoint declares by name, for rules that say ``ports: [http]``."""

    name: str
    port: int
    protocol: Protocol = attrs.field(default=Protocol.TCP, converter=to_protocol)

    def _problems(self) -> Iterator[Problem]:
        yield from check_name("name", self.name)
        yield from check_port("port", self.port)
        if not isinstance(self.protocol, Protocol) or not self.protocol.has_ports:
            yield Problem("protocol", f"must be TCP, UDP or SCTP, not {self.protocol!r}")


def _check_interface(field: str, name: object, *, wildcard: bool) -> Iterator[Problem]:
    if not isinstance(name, str) or not name:
        yield Problem(field, "must be a non-empty interface name")
    elif name == "*" and wildcard:
        return
    elif len(name) > MAX_INTERFACE_NAME or "/" in name or " " in name:
        yield Problem(field, f"not a valid interface name: {name!r}")


@attrs.frozen
class WorkloadEndpoint(ModelObject):
    """A pod's interface on this node (or elsewhere, for selectors)."""

    kind = "WorkloadEndpoint"

    namespace: str
    name: str
    node: str
    interface: str
    addresses: tuple[IPAddress, ...] = attrs.field(converter=to_addresses)
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=to_labels)
    named_ports: tuple[NamedPort, ...] = attrs.field(default=(), converter=to_tuple)
    profiles: tuple[str, ...] = attrs.field(default=(), converter=to_str_tuple)
    service_account: str | None = None

    def _problems(self) -> Iterator[Problem]:
        yield from check_name("namespace", self.namespace)
        yield from check_name("name", self.name)
        yield from check_name("node", self.node)
        yield from _check_interface("interface", self.interface, wildcard=False)
        if not self.addresses:
            yield Problem("addresses", "a workload endpoint needs an address")
        yield from check_addresses("addresses", self.addresses)
        yield from check_labels("labels", self.labels)
        yield from nested("named_ports", self.named_ports)


@attrs.frozen
class HostEndpoint(ModelObject):
    """A node interface (or ``*`` for all of them) protected by policy."""

    kind = "HostEndpoint"

    name: str
    node: str
    interface: str = "*"
    expected_ips: tuple[IPAddress, ...] = attrs.field(default=(), converter=to_addresses)
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=to_labels)
    named_ports: tuple[NamedPort, ...] = attrs.field(default=(), converter=to_tuple)
    profiles: tuple[str, ...] = attrs.field(default=(), converter=to_str_tuple)

    @property
    def all_interfaces(self) -> bool:
        return self.interface == "*"

    def _problems(self) -> Iterator[Problem]:
        yield from check_name("name", self.name)
        yield from check_name("node", self.node)
        yield from _check_interface("interface", self.interface, wildcard=True)
        yield from check_addresses("expected_ips", self.expected_ips)
        yield from check_labels("labels", self.labels)
        yield from nested("named_ports", self.named_ports)

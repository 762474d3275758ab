"""``LabSpec``: the topology a test asks for, validated before anything is built.

A spec says *what* exists (nodes, their pods, external clients) and never
*where* (addresses, namespace and interface names): that is the job of
:mod:`dataplane.lab.plan`, so the same spec can be built many times, under
different prefixes, side by side.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from dataplane.lab import addressing

PROTOCOLS = ("TCP", "UDP", "SCTP")
ROUTER_HOST = "router"
"""Host name reserved for the router namespace."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$")


class SpecError(ValueError):
    """A lab spec is invalid; the message names the object and the field."""


def _dns_label(what: str) -> Any:
    def check(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
        if not isinstance(value, str) or not _DNS_LABEL.match(value):
            raise SpecError(
                f"{what}.{attribute.name}: {value!r} is not a DNS-1123 label "
                "(lowercase letters, digits and '-', at most 63 characters)"
            )

    return check


def _freeze_labels(labels: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(labels))


def _upper(value: str) -> str:
    return value.upper()


def _port_tuple(ports: Iterable[PortSpec]) -> tuple[PortSpec, ...]:
    return tuple(ports)


def _pod_tuple(pods: Iterable[PodSpec]) -> tuple[PodSpec, ...]:
    return tuple(pods)


def _node_tuple(nodes: Iterable[NodeSpec]) -> tuple[NodeSpec, ...]:
    return tuple(nodes)


def _client_tuple(clients: Iterable[ClientSpec]) -> tuple[ClientSpec, ...]:
    return tuple(clients)


@attrs.frozen
class PortSpec:
    """An echo server port: Kubernetes-style name, number and protocol."""

    name: str
    port: int
    protocol: str = attrs.field(default="TCP", converter=_upper)

    def __attrs_post_init__(self) -> None:
        if not _PORT_NAME.match(self.name):
            raise SpecError(f"PortSpec.name: {self.name!r} is not an IANA service name")
        if not 1 <= self.port <= 65535:
            raise SpecError(f"PortSpec {self.name!r}.port: {self.port} is outside 1-65535")
        if self.protocol not in PROTOCOLS:
            raise SpecError(
                f"PortSpec {self.name!r}.protocol: {self.protocol!r} not in {PROTOCOLS}"
            )


ECHO_PORT = 8080
DEFAULT_PORTS = (
    PortSpec("tcp-echo", ECHO_PORT, "TCP"),
    PortSpec("udp-echo", ECHO_PORT, "UDP"),
    PortSpec("sctp-echo", ECHO_PORT, "SCTP"),
)
"""A pod's echo servers unless told otherwise: one port number for all three protocols."""


def _check_ports(owner: str, ports: tuple[PortSpec, ...]) -> None:
    names = [p.name for p in ports]
    keys = [(p.protocol, p.port) for p in ports]
    if len(set(names)) != len(names):
        raise SpecError(f"{owner}.ports: duplicate port names in {names}")
    if len(set(keys)) != len(keys):
        raise SpecError(f"{owner}.ports: duplicate protocol/port pairs in {keys}")


@attrs.frozen
class PodSpec:
    """A pod: one network namespace behind a veth on its node, running echo servers."""

    name: str = attrs.field(validator=_dns_label("PodSpec"))
    namespace: str = attrs.field(default="default", validator=_dns_label("PodSpec"))
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=_freeze_labels, hash=False)
    ports: tuple[PortSpec, ...] = attrs.field(default=DEFAULT_PORTS, converter=_port_tuple)

    def __attrs_post_init__(self) -> None:
        _check_ports(f"PodSpec {self.namespace}/{self.name}", self.ports)


@attrs.frozen
class NodeSpec:
    """A node: its host namespace, its pods, and optional echo servers on the host itself."""

    name: str = attrs.field(validator=_dns_label("NodeSpec"))
    pods: tuple[PodSpec, ...] = attrs.field(default=(), converter=_pod_tuple)
    ports: tuple[PortSpec, ...] = attrs.field(default=(), converter=_port_tuple)

    def __attrs_post_init__(self) -> None:
        _check_ports(f"NodeSpec {self.name}", self.ports)
        if len(self.pods) > addressing.MAX_PODS_PER_NODE:
            raise SpecError(
                f"NodeSpec {self.name}.pods: {len(self.pods)} pods, "
                f"at most {addressing.MAX_PODS_PER_NODE} fit a node's pod CIDR"
            )


@attrs.frozen
class ClientSpec:
    """An external client: on the fabric next to the nodes, or behind the router."""

    name: str = attrs.field(validator=_dns_label("ClientSpec"))
    behind_router: bool = False
    ports: tuple[PortSpec, ...] = attrs.field(default=(), converter=_port_tuple)

    def __attrs_post_init__(self) -> None:
        _check_ports(f"ClientSpec {self.name}", self.ports)


@attrs.frozen
class LabSpec:
    """The whole topology.  A router namespace exists iff some client is behind it."""

    nodes: tuple[NodeSpec, ...] = attrs.field(converter=_node_tuple)
    clients: tuple[ClientSpec, ...] = attrs.field(default=(), converter=_client_tuple)

    def __attrs_post_init__(self) -> None:
        if not self.nodes:
            raise SpecError("LabSpec.nodes: a lab needs at least one node")
        if len(self.nodes) > addressing.MAX_NODES:
            raise SpecError(f"LabSpec.nodes: at most {addressing.MAX_NODES} nodes")
        fabric = [c for c in self.clients if not c.behind_router]
        if len(fabric) > addressing.MAX_FABRIC_CLIENTS:
            raise SpecError(
                f"LabSpec.clients: at most {addressing.MAX_FABRIC_CLIENTS} on the fabric"
            )
        if len(self.clients) - len(fabric) > addressing.MAX_REMOTE_CLIENTS:
            raise SpecError(
                f"LabSpec.clients: at most {addressing.MAX_REMOTE_CLIENTS} behind the router"
            )
        hosts = [n.name for n in self.nodes] + [c.name for c in self.clients]
        if ROUTER_HOST in hosts:
            raise SpecError(f"LabSpec: host name {ROUTER_HOST!r} is reserved for the router")
        if len(set(hosts)) != len(hosts):
            raise SpecError(f"LabSpec: node and client names must be unique, got {hosts}")
        pods = [f"{p.namespace}/{p.name}" for n in self.nodes for p in n.pods]
        if len(set(pods)) != len(pods):
            raise SpecError(f"LabSpec: pod namespace/name pairs must be unique, got {pods}")

    @property
    def has_router(self) -> bool:
        return any(c.behind_router for c in self.clients)

    @classmethod
    def uniform(
        cls,
        nodes: int = 2,
        pods_per_node: int = 2,
        *,
        fabric_clients: int = 1,
        remote_clients: int = 0,
        namespace: str = "default",
        ports: Iterable[PortSpec] = DEFAULT_PORTS,
    ) -> LabSpec:
        """Build the usual test topology: ``node-<i>`` with pods ``pod-<i>-<j>``
        labelled ``app=echo``, clients ``client-<k>`` and ``remote-<k>``."""
        pod_ports = tuple(ports)
        return cls(
            nodes=tuple(
                NodeSpec(
                    name=f"node-{i}",
                    pods=tuple(
                        PodSpec(
                            name=f"pod-{i}-{j}",
                            namespace=namespace,
                            labels={"app": "echo"},
                            ports=pod_ports,
                        )
                        for j in range(pods_per_node)
                    ),
                )
                for i in range(nodes)
            ),
            clients=tuple(ClientSpec(f"client-{k}") for k in range(fabric_clients))
            + tuple(ClientSpec(f"remote-{k}", behind_router=True) for k in range(remote_clients)),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form, for state files and ``dataplane lab up --spec``."""
        return attrs.asdict(self, value_serializer=_serialize)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabSpec:
        """Inverse of :meth:`to_dict`; raises :class:`SpecError` on malformed input."""
        try:
            return cls(
                nodes=tuple(
                    NodeSpec(
                        name=n["name"],
                        pods=tuple(
                            PodSpec(
                                name=p["name"],
                                namespace=p.get("namespace", "default"),
                                labels=p.get("labels", {}),
                                ports=_ports(p.get("ports")),
                            )
                            for p in n.get("pods", ())
                        ),
                        ports=_ports(n.get("ports", ())),
                    )
                    for n in data["nodes"]
                ),
                clients=tuple(
                    ClientSpec(
                        name=c["name"],
                        behind_router=bool(c.get("behind_router", False)),
                        ports=_ports(c.get("ports", ())),
                    )
                    for c in data.get("clients", ())
                ),
            )
        except (KeyError, TypeError) as exc:
            raise SpecError(f"LabSpec: malformed spec data ({exc!r})") from exc


def _ports(data: Iterable[Mapping[str, Any]] | None) -> tuple[PortSpec, ...]:
    if data is None:
        return DEFAULT_PORTS
    return tuple(PortSpec(p["name"], int(p["port"]), p.get("protocol", "TCP")) for p in data)


def _serialize(instance: object, attribute: object, value: Any) -> Any:
    return dict(value) if isinstance(value, MappingProxyType) else value

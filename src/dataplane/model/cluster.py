"""Nodes and namespaces: the cluster around the endpoints."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import attrs

from dataplane.errors import Problem
from dataplane.model._base import (
    IPAddress,
    IPNetwork,
    ModelObject,
    check_addresses,
    check_labels,
    check_name,
    check_networks,
    to_addresses,
    to_labels,
    to_networks,
)


@attrs.frozen
class Node(ModelObject):
    """A node of the cluster: where endpoints live and which addresses are its own."""

    kind = "Node"

    name: str
    addresses: tuple[IPAddress, ...] = attrs.field(default=(), converter=to_addresses)
    pod_cidrs: tuple[IPNetwork, ...] = attrs.field(default=(), converter=to_networks)
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=to_labels)

    def _problems(self) -> Iterator[Problem]:
        yield from check_name("name", self.name)
        yield from check_addresses("addresses", self.addresses)
        yield from check_networks("pod_cidrs", self.pod_cidrs)
        yield from check_labels("labels", self.labels)


@attrs.frozen
class Namespace(ModelObject):
    """A namespace and its labels, which namespace selectors match."""

    kind = "Namespace"

    name: str
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=to_labels)

    def _problems(self) -> Iterator[Problem]:
        yield from check_name("name", self.name)
        yield from check_labels("labels", self.labels)

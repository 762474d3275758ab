"""discovery.k8s.io/v1 EndpointSlices → one :class:`~dataplane.model.EndpointSet` per service.

A service's endpoints arrive in several slices (up to 100 endpoints each, and
one per address family); the model holds them as one set. Each slice is
validated on its own, so errors name the slice and its field; merging then
cannot fail except where the model cannot say what the slices say (below).

Ports merge by name, as kube-proxy keys them. The model gives a service one
port list for all its endpoints, so a slice that gives a known port name a
different number (a rolling update changing a named target port) is skipped
with a reason instead of sending traffic to the wrong port; a port only some
slices list applies to every endpoint of the set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from dataplane.kube._fields import Doc, FieldMap, Skip, Value
from dataplane.kube.services import SERVICE_PROTOCOLS
from dataplane.model import Endpoint, EndpointPort, EndpointSet

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
_ADDRESS_TYPES = {"IPv4": 4, "IPv6": 6, "FQDN": 0}


@attrs.frozen
class Slice:
    """One validated EndpointSlice, waiting to be merged with its service's others."""

    name: str
    endpoints: EndpointSet  # named after the service, holding this slice's part


def read_slice(raw: Mapping[str, Any]) -> Slice | Skip:
    doc = Doc(raw, namespaced=True)
    root = doc.root
    service = doc.labels.get(SERVICE_NAME_LABEL)
    family = _ADDRESS_TYPES[root["addressType"].choice(tuple(_ADDRESS_TYPES)) or "IPv4"]
    if not service:
        doc.check()
        return Skip(f"no {SERVICE_NAME_LABEL} label: not the endpoints of a service")
    if family == 0:
        doc.check()
        return Skip("FQDN endpoints are resolved by DNS, not by the packet path")
    ports = [
        EndpointPort(
            port=p["port"].port() or 0,
            protocol=p["protocol"].choice(SERVICE_PROTOCOLS, "TCP"),
            name=p["name"].text() or "",
        )
        for p in root["ports"].items()
        if p["port"].present  # a nil port means "any port", which a proxy cannot program
    ]
    values = root["endpoints"].items()
    endpoints = [_endpoint(v, family) for v in values]
    fields = FieldMap(
        {
            "ports": "ports",
            "endpoints": "endpoints",
            **{
                f"endpoints[{i}].{c}": f"endpoints[{i}].conditions.{c}"
                for i in range(len(values))
                for c in ("ready", "serving", "terminating")
            },
            **{f"endpoints[{i}].node": f"endpoints[{i}].nodeName" for i in range(len(values))},
        }
    )
    endpoint_set = doc.build(
        fields,
        lambda: EndpointSet(
            namespace=doc.namespace, name=service, ports=ports, endpoints=endpoints
        ),
    )
    return Slice(doc.name, doc.finish(endpoint_set))


def _endpoint(value: Value, family: int) -> Endpoint:
    conditions = value["conditions"]
    terminating = conditions["terminating"].flag(False)
    # The API says a nil ready means true; a terminating endpoint is never
    # ready (the model rejects the pair), so nil means "not terminating".
    ready = conditions["ready"].flag(not terminating)
    serving = conditions["serving"]
    addresses = []
    for item in value["addresses"].items():
        address = item.ip()
        if address is not None and address.version != family:
            item.problem(f"{address} is not an IPv{family} address (addressType)")
        addresses.append(address)
    return Endpoint(
        addresses=[a for a in addresses if a is not None],
        node=value["nodeName"].text(),
        ready=ready,
        serving=serving.flag() if serving.present else None,
        terminating=terminating,
    )


def merge_slices(slices: Iterable[Slice]) -> tuple[list[EndpointSet], list[tuple[Slice, str]]]:
    """One EndpointSet per service, and the slices that could not be merged (with why)."""
    merged: dict[tuple[str, str], EndpointSet] = {}
    rejected: list[tuple[Slice, str]] = []
    for piece in slices:
        part = piece.endpoints
        key = (part.namespace, part.name)
        current = merged.get(key)
        if current is None:
            merged[key] = part
            continue
        ports = {p.name: p for p in current.ports}
        clash = next((p for p in part.ports if ports.get(p.name, p) != p), None)
        if clash is not None:
            rejected.append(
                (
                    piece,
                    f"port {clash.name!r} is {clash.protocol.name}/{clash.port} "
                    f"here but {ports[clash.name].protocol.name}/"
                    f"{ports[clash.name].port} in another slice of the service",
                )
            )
            continue
        seen = {e.addresses for e in current.endpoints}
        merged[key] = attrs.evolve(
            current,
            ports=(*current.ports, *(p for p in part.ports if p.name not in ports)),
            endpoints=(*current.endpoints, *(e for e in part.endpoints if e.addresses not in seen)),
        )
    return list(merged.values()), rejected

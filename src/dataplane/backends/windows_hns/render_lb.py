"""IR frontends → HostComputeLoadBalancer documents (pure).

One load balancer per frontend, as kube-proxy's winkernel proxier builds them
(``pkg/proxy/winkernel/proxier.go``): ClusterIP with its VIP; NodePort with
``FrontendVIPs: []`` (HNS then answers on every host address, so the IR's
one-frontend-per-node-address collapses into one LB per protocol, port and
family); external and load-balancer IPs with ``VipExternalIP``. What calc
decided is translated, never re-derived:

- the backend list is the route external clients take (``SourceClass.ANY``)
  for external frontends, and the pod route for ClusterIP; HNS has one
  endpoint list per LB, so differing per-source routes are a warning;
- ``Route.masquerade == False`` on an external frontend ⇒ the DSR flag
  (source preserved; kube-proxy's ``localTrafficDSR`` for eTP=Local);
- ``affinity_timeout`` ⇒ ``DistributionType`` SourceIP (the timeout is HNS's);
- an IPv6 VIP ⇒ the IPv6 flag; ``SourceVIP`` per family from the caller.

Remote backends (on other nodes) need a remote endpoint to be referenced
(``Flags: RemoteEndpoint``, a conjured MAC and a ``ProviderAddress`` policy),
as kube-proxy creates them; :func:`render_remote_endpoints` plans those.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from dataplane.backends.windows_hns import schema
from dataplane.backends.windows_hns.identity import load_balancer_identity, owned_guid
from dataplane.calc.ir import Backend as IRBackend
from dataplane.calc.ir import (
    DataplaneIR,
    Frontend,
    FrontendKind,
    NoEndpoints,
    Route,
    SourceClass,
)
from dataplane.model import IPAddress, Protocol

Document = dict[str, Any]

_PORT_MAPPING_FLAGS = {
    FrontendKind.CLUSTER_IP: 0,
    FrontendKind.NODE_PORT: schema.PM_FLAG_LOCAL_ROUTED_VIP | schema.PM_FLAG_VIP_EXTERNAL_IP,
    FrontendKind.EXTERNAL_IP: schema.PM_FLAG_VIP_EXTERNAL_IP,
    FrontendKind.LOAD_BALANCER: schema.PM_FLAG_VIP_EXTERNAL_IP,
}


@attrs.frozen
class LoadBalancerSpec:
    """A desired load balancer: its content identity, document and the frontends it serves."""

    identity: str
    document: Document
    frontends: tuple[str, ...]


@attrs.frozen
class RemoteEndpointSpec:
    """A remote endpoint to create so that an LB can reference a backend on another node."""

    guid: str
    document: Document


def describe(frontend: Frontend) -> str:
    proto = Protocol(frontend.protocol).name.lower()
    return f"{frontend.service} ({frontend.kind.value} {frontend.address}:{frontend.port}/{proto})"


def chosen_route(frontend: Frontend) -> Route:
    """The route whose backends the single HNS endpoint list carries."""
    if frontend.kind is FrontendKind.CLUSTER_IP:
        return frontend.route_for(frozenset({SourceClass.POD}))
    return frontend.route_for(frozenset({SourceClass.ANY}))


def frontend_groups(frontends: Iterable[Frontend]) -> list[list[Frontend]]:
    """Frontends that share one LB: NodePorts per (protocol, port, family); others alone."""
    groups: dict[tuple[object, ...], list[Frontend]] = {}
    for f in sorted(frontends, key=lambda f: (f.kind.value, f.address.version, str(f.key))):
        if f.kind is FrontendKind.NODE_PORT:
            key: tuple[object, ...] = ("node-port", int(f.protocol), f.port, f.address.version)
        else:
            key = ("vip", *f.key)
        groups.setdefault(key, []).append(f)
    return list(groups.values())


def conjure_mac(address: IPAddress) -> str:
    """kube-proxy's conjureMac("02-11", ip): the last four address bytes, IPv4 in order."""
    raw = address.packed[-4:] if address.version == 4 else address.packed[-1:-5:-1]
    return "02-11-" + "-".join(f"{b:02x}" for b in raw)


def render_remote_endpoints(
    ir: DataplaneIR, known: Mapping[IPAddress, str], network_id: str, instance: str
) -> dict[IPAddress, RemoteEndpointSpec]:
    """Remote endpoints for every non-local backend no existing endpoint already carries."""
    specs: dict[IPAddress, RemoteEndpointSpec] = {}
    for group in frontend_groups(ir.frontends.values()):
        for backend in chosen_route(group[0]).backends:
            if backend.local or backend.address in known or backend.address in specs:
                continue
            provider = _provider_address(ir, backend)
            doc: Document = {
                "Name": f"{instance}-remote-{backend.address}",
                "HostComputeNetwork": network_id,
                "IpConfigurations": [{"IpAddress": str(backend.address)}],
                "MacAddress": conjure_mac(backend.address),
                "Flags": schema.ENDPOINT_FLAG_REMOTE,
                "SchemaVersion": dict(schema.SCHEMA_VERSION),
            }
            if provider is not None:
                doc["Policies"] = [
                    {"Type": "ProviderAddress", "Settings": {"ProviderAddress": str(provider)}}
                ]
            guid = owned_guid(instance, f"remote/{backend.address}/{provider}")
            specs[backend.address] = RemoteEndpointSpec(str(guid), doc)
    return specs


def render_load_balancers(
    frontends: Iterable[Frontend],
    endpoint_ids: Mapping[IPAddress, str],
    source_vips: Mapping[int, IPAddress],
) -> tuple[list[LoadBalancerSpec], list[str]]:
    """Desired load balancers and a warning for everything HNS cannot express."""
    specs: list[LoadBalancerSpec] = []
    warnings: list[str] = []
    for group in frontend_groups(frontends):
        spec = _render_group(group, endpoint_ids, source_vips, warnings)
        if spec is not None:
            specs.append(spec)
    return specs, warnings


def _render_group(
    group: list[Frontend],
    endpoint_ids: Mapping[IPAddress, str],
    source_vips: Mapping[int, IPAddress],
    warnings: list[str],
) -> LoadBalancerSpec | None:
    f = group[0]
    name = describe(f)
    if int(f.protocol) not in schema.LB_PROTOCOLS:
        warnings.append(f"{name}: HNS load balancers carry only TCP and UDP; not programmed")
        return None
    if any(other.routes != f.routes for other in group[1:]):
        warnings.append(f"{name}: node addresses disagree on routes; HNS uses this one for all")
    route = chosen_route(f)
    if any(r.backends != route.backends for r in f.routes):
        warnings.append(
            f"{name}: per-source routes differ; HNS gives every client the "
            f"{route.sources.value} route's backends"
        )
    if f.source_ranges:
        ranges = ",".join(map(str, f.source_ranges))
        warnings.append(f"{name}: source ranges {ranges} not enforced (no HNS source filter)")
    if f.affinity_timeout is not None:
        warnings.append(
            f"{name}: ClientIP affinity timeout {f.affinity_timeout}s not configurable; "
            "HNS applies its own"
        )
    backends = _same_port_backends(route.backends, name, warnings)
    ids = sorted({endpoint_ids[b.address] for b in backends if b.address in endpoint_ids})
    for b in backends:
        if b.address not in endpoint_ids:
            warnings.append(f"{name}: backend {b.address} has no HCN endpoint yet; left out")
    if not ids:
        if route.if_empty is NoEndpoints.REJECT or backends:
            warnings.append(
                f"{name}: no endpoints; HNS cannot reject, so no load balancer "
                "(connections time out instead of being refused)"
            )
        return None
    flags = schema.LB_FLAG_IPV6 if f.address.version == 6 else 0
    if f.kind is not FrontendKind.CLUSTER_IP and not route.masquerade:
        flags |= schema.LB_FLAG_DSR
    mapping: Document = {
        "Protocol": int(f.protocol),
        "InternalPort": backends[0].port,
        "ExternalPort": f.port,
        "DistributionType": schema.DISTRIBUTION_SOURCE_IP
        if f.affinity_timeout is not None
        else schema.DISTRIBUTION_NONE,
        "Flags": _PORT_MAPPING_FLAGS[f.kind],
    }
    doc: Document = {
        "HostComputeEndpoints": ids,
        "FrontendVIPs": [] if f.kind is FrontendKind.NODE_PORT else [str(f.address)],
        "PortMappings": [mapping],
        "Flags": flags,
        "SchemaVersion": dict(schema.SCHEMA_VERSION),
    }
    source_vip = source_vips.get(f.address.version)
    if source_vip is not None:
        doc["SourceVIP"] = str(source_vip)
    return LoadBalancerSpec(load_balancer_identity(doc), doc, tuple(describe(g) for g in group))


def _same_port_backends(
    backends: tuple[IRBackend, ...], name: str, warnings: list[str]
) -> list[IRBackend]:
    """HNS has one InternalPort per mapping: keep the most common target port's backends."""
    ports = Counter(b.port for b in backends)
    if len(ports) <= 1:
        return list(backends)
    port = max(sorted(ports), key=lambda p: ports[p])
    warnings.append(
        f"{name}: backends use different target ports {sorted(ports)}; "
        f"HNS has one InternalPort, only port {port} backends are used"
    )
    return [b for b in backends if b.port == port]


def _provider_address(ir: DataplaneIR, backend: IRBackend) -> IPAddress | None:
    node = ir.remote_nodes.get(backend.node or "")
    if node is None:
        return None
    same_family = [a for a in node.addresses if a.version == backend.address.version]
    candidates = same_family or list(node.addresses)
    return candidates[0] if candidates else None


def adapt_to_features(
    specs: list[LoadBalancerSpec], features: frozenset[str]
) -> tuple[list[LoadBalancerSpec], list[str]]:
    """Drop what this HNS version cannot do (DSR 10.2, IPv6 11.10, affinity 12.0), with warnings."""
    adapted: list[LoadBalancerSpec] = []
    warnings: list[str] = []
    for spec in specs:
        doc = copy.deepcopy(spec.document)
        name = ", ".join(spec.frontends)
        if doc["Flags"] & schema.LB_FLAG_IPV6 and "IPv6DualStack" not in features:
            warnings.append(f"{name}: this HNS has no IPv6 load balancing; not programmed")
            continue
        if doc["Flags"] & schema.LB_FLAG_DSR and "DSR" not in features:
            warnings.append(f"{name}: this HNS has no DSR; source address not preserved")
            doc["Flags"] &= ~schema.LB_FLAG_DSR
        mapping = doc["PortMappings"][0]
        if mapping["DistributionType"] and "SessionAffinity" not in features:
            warnings.append(f"{name}: this HNS has no session affinity; connections spread")
            mapping["DistributionType"] = schema.DISTRIBUTION_NONE
        adapted.append(attrs.evolve(spec, identity=load_balancer_identity(doc), document=doc))
    return adapted, warnings

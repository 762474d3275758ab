"""What installed HCN documents do to one packet: load balancer match, then ACLs.

Used by the emulator to answer traffic questions from exactly what the
backend installed, in the IR's vocabulary: ``allow``/``deny`` verdicts and
DNAT candidates as ``(address, port)``. The model of HNS it encodes:

- A load balancer matches on protocol + ``ExternalPort`` and a VIP in
  ``FrontendVIPs``; an LB with empty ``FrontendVIPs`` (NodePort) matches any
  host address. A specific VIP wins over an empty list.
- Candidates are the addresses of ``HostComputeEndpoints`` (same family as
  the packet) with ``InternalPort``. Without the DSR flag the LB is an SNAT
  one (``masquerade``); with it the source is kept.
- An SNAT LB rewrites the source to ``SourceVIP`` (``snat``) for packets
  that do not come from a local endpoint (host processes, other nodes,
  external clients) and for hairpin (the sender is a candidate). A local
  pod's own traffic is load-balanced at its switch port with its address
  kept, as kube-proxy's ClusterIP route for pods asks (and as network policy
  on service traffic needs).
- ACLs: per direction, lowest ``Priority`` first, first match decides; at
  equal priority Block is tried before Allow (conservative; the renderer never
  produces such ties). No matching ACL means allow (HNS's default).
- Egress ACLs see the packet after load balancing (as Calico does on Linux),
  so the candidates an egress policy denies are removed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from dataplane.backends.windows_hns import schema
from dataplane.model import IPAddress

Document = Mapping[str, Any]
Candidate = tuple[IPAddress, int]


@attrs.frozen
class AclDecision:
    """The ACL verdict for one direction and the ``Id`` of the ACL that decided it."""

    verdict: str  # "allow" | "deny"
    direction: str  # "In" | "Out"
    rule: str | None = None  # None: no ACL matched, HNS's default allow
    priority: int | None = None


@attrs.frozen
class Trace:
    """The emulator's answer for one packet."""

    load_balancer: str | None = None
    candidates: tuple[Candidate, ...] = ()
    masquerade: bool = False  # the LB is not DSR
    snat: bool = False  # this packet's source becomes SourceVIP
    affinity: bool = False
    acl: AclDecision | None = None

    @property
    def verdict(self) -> str:
        return "deny" if self.acl is not None and self.acl.verdict == "deny" else "allow"


def endpoint_addresses(endpoint: Document) -> tuple[IPAddress, ...]:
    return tuple(
        ipaddress.ip_address(c["IpAddress"]) for c in endpoint.get("IpConfigurations") or []
    )


def match_load_balancer(
    load_balancers: Iterable[Document],
    host_addresses: frozenset[IPAddress],
    dst: IPAddress,
    protocol: int,
    port: int,
) -> tuple[Document, Document] | None:
    """The (load balancer, port mapping) a packet to ``dst:port`` hits, if any."""
    wildcard: tuple[Document, Document] | None = None
    for lb in load_balancers:
        for mapping in lb["PortMappings"]:
            if mapping["Protocol"] != protocol or mapping["ExternalPort"] != port:
                continue
            vips = [ipaddress.ip_address(v) for v in lb.get("FrontendVIPs") or []]
            if dst in vips:
                return lb, mapping
            if not vips and dst in host_addresses:
                wildcard = (lb, mapping)
    return wildcard


def evaluate_acls(
    policies: Sequence[Document],
    direction: str,
    local: IPAddress,
    remote: IPAddress,
    protocol: int,
    local_port: int | None,
    remote_port: int | None,
) -> AclDecision:
    acls = [
        p["Settings"]
        for p in policies
        if p.get("Type") == "ACL" and p["Settings"].get("Direction") == direction
    ]
    acls.sort(key=lambda a: (a.get("Priority", 0), a["Action"] != "Block"))
    for acl in acls:
        if (
            _protocol_matches(acl.get("Protocols"), protocol)
            and _address_matches(acl.get("LocalAddresses"), local)
            and _address_matches(acl.get("RemoteAddresses"), remote)
            and _port_matches(acl.get("LocalPorts"), local_port)
            and _port_matches(acl.get("RemotePorts"), remote_port)
        ):
            verdict = "allow" if acl["Action"] == "Allow" else "deny"
            return AclDecision(verdict, direction, acl.get("Id"), acl.get("Priority", 0))
    return AclDecision("allow", direction)


def trace(
    load_balancers: Iterable[Document],
    endpoints: Mapping[str, Document],
    host_addresses: frozenset[IPAddress],
    packet: tuple[IPAddress, IPAddress, int, int | None, int | None],
    endpoint_id: str | None,
) -> Trace:
    """Trace ``packet`` = (src, dst, protocol, dst port, src port) at ``endpoint_id``'s ACLs."""
    src, dst, protocol, port, src_port = packet
    matched = (
        match_load_balancer(load_balancers, host_addresses, dst, protocol, port)
        if port is not None
        else None
    )
    result = Trace()
    if matched is not None:
        lb, mapping = matched
        candidates = tuple(
            (address, int(mapping["InternalPort"]))
            for ep_id in lb["HostComputeEndpoints"]
            for address in endpoint_addresses(endpoints.get(ep_id.lower(), {}))
            if address.version == dst.version
        )
        masquerade = not lb.get("Flags", 0) & schema.LB_FLAG_DSR
        hairpin = any(address == src for address, _ in candidates)
        result = Trace(
            load_balancer=str(lb["ID"]),
            candidates=candidates,
            masquerade=masquerade,
            snat=masquerade and (hairpin or not _is_local_endpoint(endpoints, src)),
            affinity=mapping.get("DistributionType", 0) != schema.DISTRIBUTION_NONE,
        )
    if endpoint_id is None:
        return result
    endpoint = endpoints[endpoint_id.lower()]
    mine = set(endpoint_addresses(endpoint))
    policies = endpoint.get("Policies") or []
    destinations: list[tuple[IPAddress, int | None]] = (
        list(result.candidates) if matched else [(dst, port)]
    )
    inbound = [(a, p) for a, p in destinations if a in mine]
    if inbound:
        address, local_port = inbound[0]
        acl = evaluate_acls(policies, "In", address, src, protocol, local_port, src_port)
        return attrs.evolve(result, acl=acl)
    if src not in mine or not destinations:
        return result
    decisions = [
        ((a, p), evaluate_acls(policies, "Out", src, a, protocol, src_port, p))
        for a, p in destinations
    ]
    allowed = [d for d in decisions if d[1].verdict == "allow"]
    acl = (allowed or decisions)[0][1]
    if matched:
        kept = tuple((a, p) for (a, p), _ in allowed if p is not None)
        return attrs.evolve(result, acl=acl, candidates=kept)
    return attrs.evolve(result, acl=acl)


def _is_local_endpoint(endpoints: Mapping[str, Document], address: IPAddress) -> bool:
    """Whether ``address`` is a pod attached to this host (not a remote endpoint)."""
    return any(
        address in endpoint_addresses(ep)
        for ep in endpoints.values()
        if not ep.get("Flags", 0) & schema.ENDPOINT_FLAG_REMOTE
    )


def _protocol_matches(value: str | None, protocol: int) -> bool:
    return value is None or int(value) in (schema.ACL_ANY_PROTOCOL, protocol)


def _address_matches(value: str | None, address: IPAddress) -> bool:
    if not value:
        return True
    return any(address in ipaddress.ip_network(e, strict=False) for e in value.split(","))


def _port_matches(value: str | None, port: int | None) -> bool:
    if not value:
        return True
    if port is None:
        return False
    for entry in value.split(","):
        low, _, high = entry.partition("-")
        if int(low) <= port <= int(high or low):
            return True
    return False

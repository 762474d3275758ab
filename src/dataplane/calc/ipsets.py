"""IP sets: every selector and CIDR list that rules use, with their members.

Calico semantics for which endpoints a rule's peer selects:

* ``namespace_selector`` picks namespaces by their labels (``global()`` there
  picks non-namespaced endpoints, i.e. host endpoints), then ``selector``
  picks endpoints inside them;
* without it, a namespaced policy's selector sees only its own namespace and
  a global policy's selector sees every endpoint.

Membership is kept incrementally: a changed endpoint is re-tested against
the selectors in use (not every selector against every endpoint), which is
what keeps a label change cheap at thousands of policies.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Mapping

import attrs

from dataplane.calc.ir import IpSet
from dataplane.model import (
    HostEndpoint,
    IPAddress,
    IPNetwork,
    Namespace,
    ObjectKey,
    Protocol,
    WorkloadEndpoint,
)
from dataplane.selector import parse

NAMESPACE_LABEL = "projectcalico.org/namespace"
NAMESPACE_NAME_LABEL = "projectcalico.org/name"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@attrs.frozen
class PeerMatch:
    """Which endpoints a rule's peer selects (selectors are canonical texts)."""

    selector: str | None
    namespace_selector: str | None
    scope: str | None  # the namespace of a namespaced policy; None for global

    @property
    def set_id(self) -> str:
        return "s" + _digest(repr(self))

    def describe(self) -> str:
        parts = []
        if self.namespace_selector is not None:
            parts.append(f"namespaces({self.namespace_selector})")
        elif self.scope is not None:
            parts.append(f"namespace {self.scope}")
        parts.append(self.selector or "all()")
        return " / ".join(parts)


@attrs.frozen
class NamedPortMatch:
    """Addresses and port numbers of ``port_name`` on the endpoints ``peer`` selects."""

    peer: PeerMatch | None
    port_name: str
    protocol: Protocol

    @property
    def set_id(self) -> str:
        return "p" + _digest(repr(self))


@attrs.frozen
class EndpointFacts:
    """What set membership needs to know of one endpoint."""

    key: ObjectKey
    namespace: str | None
    labels: Mapping[str, str]
    addresses: tuple[IPAddress, ...]
    named_ports: Mapping[tuple[str, Protocol], int]

    @classmethod
    def of(cls, ep: WorkloadEndpoint | HostEndpoint) -> EndpointFacts:
        ports = {(p.name, p.protocol): p.port for p in ep.named_ports}
        if isinstance(ep, WorkloadEndpoint):
            labels = {**ep.labels, NAMESPACE_LABEL: ep.namespace}
            return cls(ep.key, ep.namespace, labels, ep.addresses, ports)
        return cls(ep.key, None, dict(ep.labels), ep.expected_ips, ports)


def nets_set(nets: Iterable[IPNetwork]) -> IpSet:
    members = frozenset(nets)
    text = ",".join(sorted(str(n) for n in members))
    return IpSet("n" + _digest(text), text, nets=members)


def namespace_labels(ns: Namespace) -> dict[str, str]:
    return {**ns.labels, NAMESPACE_NAME_LABEL: ns.name, "kubernetes.io/metadata.name": ns.name}


class IpSetIndex:
    """Selector-based IP sets in use, kept current as endpoints change."""

    def __init__(self) -> None:
        self._endpoints: dict[ObjectKey, EndpointFacts] = {}
        self._by_namespace: dict[str | None, set[ObjectKey]] = defaultdict(set)
        self._ns_labels: dict[str, dict[str, str]] = {}
        self._peers: dict[PeerMatch, set[ObjectKey]] = {}
        self._named: dict[NamedPortMatch, set[ObjectKey]] = {}
        self._dirty: set[str] = set()
        self._ids: dict[str, PeerMatch | NamedPortMatch] = {}

    # ------------------------------------------------------------- inputs
    def set_namespace(self, ns: Namespace | None, name: str) -> None:
        if ns is None:
            self._ns_labels.pop(name, None)
        else:
            self._ns_labels[name] = namespace_labels(ns)
        for peer in self._peers:
            if peer.namespace_selector is not None:
                self._refresh_peer(peer)
        for named in self._named:
            if named.peer is not None and named.peer.namespace_selector is not None:
                self._refresh_named(named)

    def set_endpoint(self, key: ObjectKey, ep: WorkloadEndpoint | HostEndpoint | None) -> None:
        old = self._endpoints.pop(key, None)
        if old is not None:
            self._by_namespace[old.namespace].discard(key)
        facts = EndpointFacts.of(ep) if ep is not None else None
        if facts is not None:
            self._endpoints[key] = facts
            self._by_namespace[facts.namespace].add(key)
        moved = (
            old is None
            or facts is None
            or old.addresses != facts.addresses
            or (old.named_ports != facts.named_ports)
        )
        for peer, members in self._peers.items():
            self._update_member(peer.set_id, members, key, self._peer_has(peer, key), moved)
        for named, members in self._named.items():
            self._update_member(named.set_id, members, key, self._named_has(named, key), moved)

    def use(self, peers: Iterable[PeerMatch], named: Iterable[NamedPortMatch]) -> None:
        """Make sure these sets exist (computing their members if new)."""
        for peer in peers:
            if peer not in self._peers:
                self._peers[peer] = set()
                self._ids[peer.set_id] = peer
                self._refresh_peer(peer)
        for match in named:
            if match not in self._named:
                self._named[match] = set()
                self._ids[match.set_id] = match
                self._refresh_named(match)

    def retain(self, peers: set[PeerMatch], named: set[NamedPortMatch]) -> None:
        """Forget sets no rule uses any more."""
        for peer in [p for p in self._peers if p not in peers]:
            del self._peers[peer]
            self._ids.pop(peer.set_id, None)
            self._dirty.add(peer.set_id)
        for match in [m for m in self._named if m not in named]:
            del self._named[match]
            self._ids.pop(match.set_id, None)
            self._dirty.add(match.set_id)

    # ------------------------------------------------------------- outputs
    def take_dirty(self) -> set[str]:
        dirty, self._dirty = self._dirty, set()
        return dirty

    def sets(self) -> dict[str, IpSet]:
        out = {p.set_id: self._peer_set(p) for p in self._peers}
        out.update({m.set_id: self._named_set(m) for m in self._named})
        return out

    def get(self, set_id: str) -> IpSet | None:
        peer = self._ids.get(set_id)
        if isinstance(peer, PeerMatch) and peer in self._peers:
            return self._peer_set(peer)
        if isinstance(peer, NamedPortMatch) and peer in self._named:
            return self._named_set(peer)
        return None

    def peer_members(self, peer: PeerMatch) -> set[ObjectKey]:
        return self._peers.get(peer, set())

    # ------------------------------------------------------------- internals
    def _peer_set(self, peer: PeerMatch) -> IpSet:
        nets = frozenset(
            _host_net(a) for k in self._peers[peer] for a in self._endpoints[k].addresses
        )
        return IpSet(peer.set_id, peer.describe(), nets=nets)

    def _named_set(self, match: NamedPortMatch) -> IpSet:
        ports = frozenset(
            (
                _host_net(a),
                match.protocol,
                self._endpoints[k].named_ports[(match.port_name, match.protocol)],
            )
            for k in self._named[match]
            for a in self._endpoints[k].addresses
        )
        desc = f"{match.peer.describe() if match.peer else 'all()'} port {match.port_name}"
        return IpSet(match.set_id, desc, ports=ports)

    def _update_member(
        self, set_id: str, members: set[ObjectKey], key: ObjectKey, now: bool, moved: bool
    ) -> None:
        was = key in members
        if now and not was:
            members.add(key)
            self._dirty.add(set_id)
        elif was and not now:
            members.discard(key)
            self._dirty.add(set_id)
        elif now and moved:
            self._dirty.add(set_id)

    def _candidates(self, peer: PeerMatch | None) -> Iterable[ObjectKey]:
        if peer is not None and peer.namespace_selector is None and peer.scope is not None:
            return self._by_namespace.get(peer.scope, set())
        return self._endpoints.keys()

    def _refresh_peer(self, peer: PeerMatch) -> None:
        new = {k for k in self._candidates(peer) if self._peer_has(peer, k)}
        if new != self._peers[peer]:
            self._peers[peer] = new
            self._dirty.add(peer.set_id)

    def _refresh_named(self, match: NamedPortMatch) -> None:
        new = {k for k in self._candidates(match.peer) if self._named_has(match, k)}
        if new != self._named[match]:
            self._named[match] = new
            self._dirty.add(match.set_id)

    def _peer_has(self, peer: PeerMatch, key: ObjectKey) -> bool:
        ep = self._endpoints.get(key)
        if ep is None:
            return False
        if peer.namespace_selector is not None:
            ns_labels = (
                {}
                if ep.namespace is None
                else self._ns_labels.get(
                    ep.namespace,
                    {NAMESPACE_NAME_LABEL: ep.namespace, NAMESPACE_LABEL: ep.namespace},
                )
            )
            if ep.namespace is not None:
                ns_labels = {**ns_labels, NAMESPACE_LABEL: ep.namespace}
            if not parse(peer.namespace_selector).matches(ns_labels):
                return False
        elif peer.scope is not None and ep.namespace != peer.scope:
            return False
        return peer.selector is None or parse(peer.selector).matches(ep.labels)

    def _named_has(self, match: NamedPortMatch, key: ObjectKey) -> bool:
        ep = self._endpoints.get(key)
        if ep is None or (match.port_name, match.protocol) not in ep.named_ports:
            return False
        return match.peer is None or self._peer_has(match.peer, key)


@functools.lru_cache(maxsize=65536)
def _host_net(addr: IPAddress) -> IPNetwork:
    return ipaddress.ip_network(addr)

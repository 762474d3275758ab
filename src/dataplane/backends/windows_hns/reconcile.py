"""Make HNS hold exactly the desired objects, with as few calls as possible.

State is read from HNS (never assumed): the first apply, every full apply
and the apply after any failure re-list endpoints and load balancers, as
the lost-event and stale-cache bugs of kube-proxy's winkernel taught
(kubernetes #110849, #135802, #139519). Between those, a cache of what was
listed or written makes incremental applies cost only the changes.

Load balancers: the GUID says "ours, for this frontend" (see
:mod:`.identity`), the read-back content says whether it is still right.
HNS load balancers are immutable unless the host supports in-place modify,
so a changed endpoint set is delete-then-create under the same GUID (delete
first: HNS refuses a second LB on the same VIP and port). Owned LBs no
frontend wants any more are orphans and are deleted.

Endpoint ACLs: only ACLs whose ``Id`` carries our instance are touched;
changes are Add of the new ACLs, then Remove of the stale ones, so the
endpoint is never without policy in between. Remote endpoints we create for
backends on other nodes are owned by GUID and deleted once no LB uses them
(after the LBs, since HNS refuses to delete a referenced endpoint).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import attrs

from dataplane.backends.windows_hns.client import Document, HcnClient
from dataplane.backends.windows_hns.hresult import HcnError
from dataplane.backends.windows_hns.identity import (
    is_owned,
    is_owned_acl,
    load_balancer_frontend,
    load_balancer_identity,
    owned_guid,
)
from dataplane.backends.windows_hns.render_lb import LoadBalancerSpec, RemoteEndpointSpec
from dataplane.backends.windows_hns.trace import endpoint_addresses
from dataplane.backends.windows_hns.transport import Kind
from dataplane.errors import BackendUnavailableError
from dataplane.model import IPAddress


@attrs.frozen
class Desired:
    """Everything one apply wants installed."""

    remote_endpoints: Mapping[IPAddress, RemoteEndpointSpec]
    load_balancers: tuple[LoadBalancerSpec, ...]
    acls: Mapping[uuid.UUID, tuple[Document, ...]]  # endpoint GUID → our ACL policies


class Reconciler:
    """Owns the cache of installed objects and the diff-and-apply of one network."""

    def __init__(
        self, client: HcnClient, instance: str, network_id: uuid.UUID, lb_modify: bool
    ) -> None:
        self.client = client
        self.instance = instance
        self.network_id = network_id
        self.lb_modify = lb_modify
        self._endpoints: dict[uuid.UUID, Document] | None = None
        self._lbs: dict[uuid.UUID, Document] | None = None

    # ------------------------------------------------------------ observed state

    def invalidate(self) -> None:
        """Forget the cache: the next call re-lists HNS."""
        self._endpoints = None
        self._lbs = None

    def endpoints(self, refresh: bool = False) -> dict[uuid.UUID, Document]:
        if refresh or self._endpoints is None:
            listed = self.client.list("Endpoint", {"VirtualNetwork": str(self.network_id)})
            self._endpoints = {uuid.UUID(d["ID"]): d for d in listed}
        return self._endpoints

    def load_balancers(self, refresh: bool = False) -> dict[uuid.UUID, Document]:
        if refresh or self._lbs is None:
            listed = self.client.list("LoadBalancer")
            self._lbs = {uuid.UUID(d["ID"]): d for d in listed if is_owned(self.instance, d["ID"])}
        return self._lbs

    def endpoint_ids_by_address(self, *, include_owned: bool) -> dict[IPAddress, str]:
        """Address → endpoint GUID for the network's endpoints (ours only if asked)."""
        return {
            address: str(guid)
            for guid, doc in sorted(self.endpoints().items())
            if include_owned or not is_owned(self.instance, guid)
            for address in endpoint_addresses(doc)
        }

    # ------------------------------------------------------------ apply

    def apply(self, desired: Desired) -> None:
        """Converge; on any failure the cache is dropped so the next apply re-lists."""
        try:
            self._create_remote_endpoints(desired.remote_endpoints)
            self._sync_load_balancers(desired.load_balancers)
            self._sync_acls(desired.acls)
            keep = {uuid.UUID(s.guid) for s in desired.remote_endpoints.values()}
            self._delete_remote_endpoints(keep)
        except BaseException:
            self.invalidate()
            raise

    def cleanup(self) -> None:
        """Remove every owned object: LBs, then our ACLs, then remote endpoints."""
        self.invalidate()
        try:
            self._sync_load_balancers(())
            self._sync_acls({})
            self._delete_remote_endpoints(set())
        finally:
            self.invalidate()

    def _create_remote_endpoints(self, specs: Mapping[IPAddress, RemoteEndpointSpec]) -> None:
        endpoints = self.endpoints()
        for spec in specs.values():
            guid = uuid.UUID(spec.guid)
            if guid not in endpoints:
                endpoints[guid] = self._create("Endpoint", guid, spec.document, self.network_id)

    def _delete_remote_endpoints(self, keep: set[uuid.UUID]) -> None:
        endpoints = self.endpoints()
        for guid in sorted(endpoints):
            if is_owned(self.instance, guid) and guid not in keep:
                self._delete("Endpoint", guid)
                del endpoints[guid]

    def _sync_load_balancers(self, specs: tuple[LoadBalancerSpec, ...]) -> None:
        installed = self.load_balancers()
        wanted = {owned_guid(self.instance, load_balancer_frontend(s.document)): s for s in specs}
        for guid in sorted(set(installed) - set(wanted)):
            self._delete("LoadBalancer", guid)
            del installed[guid]
        for guid, spec in sorted(wanted.items()):
            current = installed.get(guid)
            if current is not None and load_balancer_identity(current) == spec.identity:
                continue
            document = {**spec.document, "ID": str(guid)}
            if current is not None and self.lb_modify:
                self.client.modify("LoadBalancer", guid, document)
                installed[guid] = document
                continue
            if current is not None:
                self._delete("LoadBalancer", guid)
                del installed[guid]
            installed[guid] = self._create("LoadBalancer", guid, document)

    def _sync_acls(self, acls: Mapping[uuid.UUID, tuple[Document, ...]]) -> None:
        for guid, doc in sorted(self.endpoints().items()):
            if is_owned(self.instance, guid):
                continue
            policies: list[Document] = list(doc.get("Policies") or [])
            current = [p for p in policies if is_owned_acl(self.instance, p)]
            wanted = list(acls.get(guid, ()))
            add = [p for p in wanted if p not in current]
            remove = [p for p in current if p not in wanted]
            if add:
                self.client.modify("Endpoint", guid, _policy_request("Add", add))
                policies.extend(add)
            if remove:
                self.client.modify("Endpoint", guid, _policy_request("Remove", remove))
                policies = [p for p in policies if p not in remove]
            doc["Policies"] = policies

    # ------------------------------------------------------------ idempotent primitives

    def _create(
        self, kind: Kind, guid: uuid.UUID, document: Document, network: uuid.UUID | None = None
    ) -> Document:
        """Create under our GUID; "already exists" with the same content is success.

        That is the answer to a create whose reply was lost (kubernetes #139519).
        """
        try:
            created = self.client.create(kind, guid, document, network)
        except HcnError as exc:
            if not exc.already_exists:
                raise
            existing = self.client.get(kind, guid)
            if kind == "LoadBalancer" and load_balancer_identity(
                existing
            ) != load_balancer_identity(document):
                raise
            return existing
        if uuid.UUID(created["ID"]) != guid:
            self.client.delete(kind, uuid.UUID(created["ID"]))
            raise BackendUnavailableError(
                f"HNS ignored the GUID {guid} given for a new {kind}; ownership cannot be "
                "recorded on this host"
            )
        return created

    def _delete(self, kind: Kind, guid: uuid.UUID) -> None:
        """Delete; "not found" is success (someone else removed it first)."""
        try:
            self.client.delete(kind, guid)
        except HcnError as exc:
            if not exc.not_found:
                raise


def _policy_request(request_type: str, policies: list[Document]) -> Document:
    return {
        "ResourceType": "Policy",
        "RequestType": request_type,
        "Settings": {"Policies": policies},
    }


def network_guid(client: HcnClient, name_or_id: str) -> uuid.UUID:
    """The network named (or with the GUID) ``name_or_id``; BackendUnavailableError if absent."""
    try:
        filter_ = {"ID": str(uuid.UUID(name_or_id))}
    except ValueError:
        filter_ = {"Name": name_or_id}
    found = client.list("Network", filter_)
    if not found:
        raise BackendUnavailableError(f"HNS network {name_or_id!r} not found")
    return uuid.UUID(found[0]["ID"])

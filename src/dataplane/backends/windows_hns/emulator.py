"""An in-memory HNS: the HCN object model behind :class:`~.transport.HcnTransport`.

It exists so that everything above the transport (client, reconciler,
backend) and the behaviour suite run on Linux against something that refuses
what HNS refuses:

- every document is validated against :mod:`.schema` (required fields,
  types, enum values, flag bits), with HNS's HRESULTs;
- objects have GUIDs (a zero GUID lets the emulator choose one), handles
  must be opened and stay valid until closed;
- duplicates fail (``ERROR_ALREADY_EXISTS`` for a taken GUID,
  ``HCN_E_PORT_ALREADY_EXISTS`` for a second load balancer on the same
  VIP/protocol/port, ``HCN_E_POLICY_ALREADY_EXISTS`` for an identical policy),
  missing objects fail with the kind's not-found code, and an endpoint or
  network still referenced cannot be deleted (``HCN_E_ENTITY_HAS_REFERENCES``);
- load balancers are immutable unless constructed with ``lb_modify=True``
  (HNS's ``ModifyLoadbalancer`` feature).

:meth:`HcnEmulator.trace` answers traffic questions from the installed
documents (see :mod:`.trace` for the model of HNS it encodes).
"""

from __future__ import annotations

import copy
import ipaddress
import itertools
import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from dataplane.backends.windows_hns import hresult as hr
from dataplane.backends.windows_hns import schema
from dataplane.backends.windows_hns.trace import Trace, endpoint_addresses, trace
from dataplane.backends.windows_hns.transport import KINDS, Handle, Kind
from dataplane.model import IPAddress

Document = dict[str, Any]

_NOT_FOUND: dict[Kind, int] = {
    "Network": hr.HCN_E_NETWORK_NOT_FOUND,
    "Endpoint": hr.HCN_E_ENDPOINT_NOT_FOUND,
    "LoadBalancer": hr.ERROR_NOT_FOUND,
}
_VALIDATORS: dict[Kind, Callable[[Any], list[schema.Violation]]] = {
    "Network": schema.validate_network,
    "Endpoint": schema.validate_endpoint,
    "LoadBalancer": schema.validate_load_balancer,
}
_ZERO = uuid.UUID(int=0)


def _fail(code: int, verb: str, kind: Kind, message: str) -> hr.HcnError:
    plural = "s" if verb == "Enumerate" else ""
    suffix = "Properties" if verb == "Query" else ""
    operation = f"Hcn{verb}{kind}{plural}{suffix}"
    return hr.error_for(code, operation, hr.error_record(code, message))


class HcnEmulator:
    """computenetwork.dll in memory, plus helpers a test harness needs."""

    def __init__(
        self,
        *,
        host_addresses: Iterable[str | IPAddress] = (),
        version: tuple[int, int] = (15, 0),
        lb_modify: bool = False,
        network_name: str = "dataplane",
    ) -> None:
        self.host_addresses = frozenset(ipaddress.ip_address(a) for a in host_addresses)
        self.version = version
        self.lb_modify = lb_modify
        self._objects: dict[Kind, dict[uuid.UUID, Document]] = {k: {} for k in KINDS}
        self._handles: dict[Handle, tuple[Kind, uuid.UUID]] = {}
        self._next_handle = itertools.count(0x1000)
        self.network_id = self.add_network(network_name)

    # ------------------------------------------------------------ harness helpers

    def add_network(self, name: str, network_type: str = "L2Bridge") -> str:
        doc = {"Name": name, "Type": network_type, "SchemaVersion": dict(schema.SCHEMA_VERSION)}
        handle = self.create("Network", _ZERO, json.dumps(doc))
        guid = self._handles[handle][1]
        self.close("Network", handle)
        return str(guid)

    def add_endpoint(self, ip: str | IPAddress, name: str, network_id: str | None = None) -> str:
        """Create a local endpoint as a CNI plugin would for a pod; returns its GUID."""
        address = ipaddress.ip_address(ip)
        network = uuid.UUID(network_id or self.network_id)
        doc = {
            "Name": name,
            "HostComputeNetwork": str(network),
            "IpConfigurations": [
                {"IpAddress": str(address), "PrefixLength": 32 if address.version == 4 else 128}
            ],
            "SchemaVersion": dict(schema.SCHEMA_VERSION),
        }
        net = self.open("Network", network)
        try:
            handle = self.create("Endpoint", _ZERO, json.dumps(doc), net)
        finally:
            self.close("Network", net)
        guid = self._handles[handle][1]
        self.close("Endpoint", handle)
        return str(guid)

    def documents(self, kind: Kind) -> list[Document]:
        """Copies of every installed object of ``kind`` (for assertions)."""
        return [copy.deepcopy(d) for d in self._objects[kind].values()]

    def trace(
        self,
        src: str | IPAddress,
        dst: str | IPAddress,
        protocol: int,
        port: int | None,
        endpoint_id: str | None = None,
        src_port: int | None = None,
    ) -> Trace:
        """Which LB a packet hits, its DNAT candidates, and ``endpoint_id``'s ACL verdict."""
        endpoints = {str(k): v for k, v in self._objects["Endpoint"].items()}
        packet = (ipaddress.ip_address(src), ipaddress.ip_address(dst), protocol, port, src_port)
        return trace(
            self._objects["LoadBalancer"].values(),
            endpoints,
            self.host_addresses,
            packet,
            endpoint_id,
        )

    # ------------------------------------------------------------ HcnTransport

    def enumerate(self, kind: Kind, query: str) -> str:
        parsed = self._parse("Enumerate", kind, query, schema.validate_query)
        try:
            wanted = json.loads(parsed.get("Filter") or "{}")
        except ValueError as exc:
            raise _fail(hr.HCN_E_INVALID_JSON, "Enumerate", kind, f"Filter: {exc}") from exc
        return json.dumps([str(g) for g, d in self._objects[kind].items() if _matches(d, wanted)])

    def create(
        self, kind: Kind, guid: uuid.UUID, settings: str, network: Handle | None = None
    ) -> Handle:
        doc = self._parse("Create", kind, settings, _VALIDATORS[kind])
        if guid == _ZERO:
            guid = uuid.UUID(doc["ID"]) if "ID" in doc else uuid.uuid4()
        elif "ID" in doc and uuid.UUID(doc["ID"]) != guid:
            raise _fail(hr.E_INVALIDARG, "Create", kind, "ID differs from the Id argument")
        if guid in self._objects[kind]:
            raise _fail(hr.ERROR_ALREADY_EXISTS, "Create", kind, f"{guid} already exists")
        if kind == "Endpoint":
            self._check_new_endpoint(doc, network)
        if kind == "LoadBalancer":
            self._check_load_balancer(doc, guid, "Create")
        doc["ID"] = str(guid)
        self._objects[kind][guid] = doc
        return self._new_handle(kind, guid)

    def open(self, kind: Kind, guid: uuid.UUID) -> Handle:
        if guid not in self._objects[kind]:
            raise _fail(_NOT_FOUND[kind], "Open", kind, f"{guid} not found")
        return self._new_handle(kind, guid)

    def modify(self, kind: Kind, handle: Handle, settings: str) -> None:
        guid = self._resolve("Modify", kind, handle)
        if kind == "LoadBalancer" and self.lb_modify:
            doc = self._parse("Modify", kind, settings, schema.validate_load_balancer)
            self._check_load_balancer(doc, guid, "Modify")
            doc["ID"] = str(guid)
            self._objects[kind][guid] = doc
        elif kind == "Endpoint":
            request = self._parse("Modify", kind, settings, schema.validate_endpoint_modify)
            self._modify_endpoint_policies(guid, request)
        else:
            raise _fail(hr.HCN_E_REQUEST_UNSUPPORTED, "Modify", kind, "in-place modify unsupported")

    def query_properties(self, kind: Kind, handle: Handle, query: str) -> str:
        guid = self._resolve("Query", kind, handle)
        self._parse("Query", kind, query, schema.validate_query)
        return json.dumps(self._objects[kind][guid])

    def delete(self, kind: Kind, guid: uuid.UUID) -> None:
        if guid not in self._objects[kind]:
            raise _fail(_NOT_FOUND[kind], "Delete", kind, f"{guid} not found")
        users = self._referrers(kind, guid)
        if users:
            raise _fail(hr.HCN_E_ENTITY_HAS_REFERENCES, "Delete", kind, f"used by {users[0]}")
        del self._objects[kind][guid]

    def close(self, kind: Kind, handle: Handle) -> None:
        if self._handles.get(handle, (None,))[0] != kind:
            raise _fail(hr.E_HANDLE, "Close", kind, f"invalid handle {handle:#x}")
        del self._handles[handle]

    def hns_version(self) -> tuple[int, int]:
        return self.version

    @property
    def open_handles(self) -> int:
        """Handles not yet closed: a leak check for tests."""
        return len(self._handles)

    # ------------------------------------------------------------ internals

    def _new_handle(self, kind: Kind, guid: uuid.UUID) -> Handle:
        handle = next(self._next_handle)
        self._handles[handle] = (kind, guid)
        return handle

    def _resolve(self, verb: str, kind: Kind, handle: Handle) -> uuid.UUID:
        held = self._handles.get(handle)
        if held is None or held[0] != kind:
            raise _fail(hr.E_HANDLE, verb, kind, f"invalid handle {handle:#x}")
        if held[1] not in self._objects[kind]:
            raise _fail(_NOT_FOUND[kind], verb, kind, f"{held[1]} was deleted")
        return held[1]

    def _parse(
        self, verb: str, kind: Kind, text: str, validate: Callable[[Any], list[schema.Violation]]
    ) -> Document:
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise _fail(hr.HCN_E_INVALID_JSON, verb, kind, str(exc)) from exc
        problems = validate(doc)
        if problems:
            raise _fail(problems[0].hresult, verb, kind, "; ".join(map(str, problems)))
        return dict(doc)

    def _check_new_endpoint(self, doc: Document, network: Handle | None) -> None:
        if network is None:
            raise _fail(hr.E_HANDLE, "Create", "Endpoint", "an open network handle is required")
        network_guid = self._resolve("Create", "Network", network)
        if uuid.UUID(doc["HostComputeNetwork"]) != network_guid:
            raise _fail(hr.E_INVALIDARG, "Create", "Endpoint", "HostComputeNetwork mismatch")
        taken = {
            a
            for d in self._objects["Endpoint"].values()
            if uuid.UUID(d["HostComputeNetwork"]) == network_guid
            for a in endpoint_addresses(d)
        }
        clash = taken.intersection(endpoint_addresses(doc))
        if clash:
            raise _fail(hr.ERROR_ALREADY_EXISTS, "Create", "Endpoint", f"{min(clash)} in use")

    def _check_load_balancer(self, doc: Document, guid: uuid.UUID, verb: str) -> None:
        for ep in doc["HostComputeEndpoints"]:
            if uuid.UUID(ep) not in self._objects["Endpoint"]:
                raise _fail(hr.HCN_E_ENDPOINT_NOT_FOUND, verb, "LoadBalancer", f"endpoint {ep}")
        mine = _frontends(doc)
        for other_guid, other in self._objects["LoadBalancer"].items():
            if other_guid != guid and mine & _frontends(other):
                raise _fail(
                    hr.HCN_E_PORT_ALREADY_EXISTS, verb, "LoadBalancer", f"taken by {other_guid}"
                )

    def _modify_endpoint_policies(self, guid: uuid.UUID, request: Document) -> None:
        if request["ResourceType"] != "Policy":
            raise _fail(hr.HCN_E_REQUEST_UNSUPPORTED, "Modify", "Endpoint", "only Policy")
        endpoint = self._objects["Endpoint"][guid]
        current: list[Document] = list(endpoint.get("Policies") or [])
        given: list[Document] = request["Settings"]["Policies"]
        kind = request["RequestType"]
        if kind == "Add":
            for policy in given:
                if policy in current:
                    raise _fail(hr.HCN_E_POLICY_ALREADY_EXISTS, "Modify", "Endpoint", "duplicate")
                current.append(policy)
        elif kind == "Remove":
            for policy in given:
                if policy not in current:
                    raise _fail(hr.HCN_E_POLICY_NOT_FOUND, "Modify", "Endpoint", "no such policy")
                current.remove(policy)
        elif kind == "Update":
            types = {p["Type"] for p in given}
            current = [p for p in current if p["Type"] not in types] + given
        endpoint["Policies"] = current

    def _referrers(self, kind: Kind, guid: uuid.UUID) -> list[str]:
        if kind == "Endpoint":
            return [
                f"load balancer {g}"
                for g, lb in self._objects["LoadBalancer"].items()
                if any(uuid.UUID(e) == guid for e in lb["HostComputeEndpoints"])
            ]
        if kind == "Network":
            return [
                f"endpoint {g}"
                for g, ep in self._objects["Endpoint"].items()
                if uuid.UUID(ep["HostComputeNetwork"]) == guid
            ]
        return []


def _frontends(lb: Document) -> set[tuple[str, int, int]]:
    """(VIP or "*" for all host addresses, protocol, external port) an LB claims."""
    vips = lb.get("FrontendVIPs") or ["*"]
    return {
        (str(vip), m["Protocol"], m["ExternalPort"]) for vip in vips for m in lb["PortMappings"]
    }


def _matches(doc: Document, wanted: dict[str, Any]) -> bool:
    """HostComputeQuery filter: ID compares as a GUID, VirtualNetwork as the endpoint's network."""
    for key, value in wanted.items():
        if key == "ID":
            if uuid.UUID(str(doc.get("ID"))) != uuid.UUID(str(value)):
                return False
        elif key == "VirtualNetwork":
            if uuid.UUID(str(doc.get("HostComputeNetwork"))) != uuid.UUID(str(value)):
                return False
        elif doc.get(key) != value:
            return False
    return True

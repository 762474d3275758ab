"""The HCN emulator refuses what HNS refuses, with HNS's HRESULTs, and traces packets.

Error codes: Microsoft HCN reference "HCN Error Code" and hcsshim
``hcn/hcnerrors.go`` (ERROR_NOT_FOUND for a missing load balancer); "0xb7
already exists" and 0x803b0013 for a second LB on a taken VIP/port are the
codes reported in kubernetes #139519 and kubernetes/community #8883.
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import hns_builders as b
import pytest

from dataplane.backends.windows_hns import hresult as hr
from dataplane.backends.windows_hns.client import HcnClient
from dataplane.backends.windows_hns.hresult import HcnError

ZERO = uuid.UUID(int=0)


@pytest.fixture
def emu() -> Any:
    return b.emulator()


def lb_doc(ep: str, vip: str = "10.96.0.10", port: int = 80, **extra: Any) -> dict[str, Any]:
    return {
        "HostComputeEndpoints": [ep],
        "FrontendVIPs": [vip],
        "PortMappings": [{"Protocol": 6, "InternalPort": 8080, "ExternalPort": port}],
        "SchemaVersion": {"Major": 2, "Minor": 0},
        **extra,
    }


def create_lb(emu: Any, doc: dict[str, Any], guid: uuid.UUID = ZERO) -> str:
    return str(HcnClient(emu).create("LoadBalancer", guid, doc)["ID"])


def code_of(call: Any) -> int:
    with pytest.raises(HcnError) as info:
        call()
    return info.value.hresult


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda d: d.pop("SchemaVersion"), hr.HCN_E_INVALID_JSON),
        (lambda d: d.update(Frontendvips=[]), hr.HCN_E_INVALID_JSON),
        (lambda d: d["PortMappings"][0].update(Protocol=132), hr.HCN_E_INVALID_JSON),
        (lambda d: d["PortMappings"][0].update(InternalPort=0), hr.HCN_E_INVALID_INTERNAL_PORT),
        (lambda d: d["PortMappings"][0].update(DistributionType=3), hr.HCN_E_INVALID_JSON),
        (lambda d: d["PortMappings"][0].update(Flags=32), hr.HCN_E_INVALID_JSON),
        (lambda d: d.update(Flags=4), hr.HCN_E_INVALID_JSON),
        (lambda d: d.update(Flags=2), hr.E_INVALIDARG),  # IPv6 flag on an IPv4 VIP
        (lambda d: d.update(HostComputeEndpoints=[]), hr.HCN_E_INVALID_JSON),
        (lambda d: d.update(FrontendVIPs=["not-an-ip"]), hr.HCN_E_INVALID_JSON),
    ],
)
def test_load_balancer_schema(emu: Any, mutate: Any, code: int) -> None:
    ep = emu.add_endpoint("10.244.0.5", "pod")
    doc = lb_doc(ep)
    mutate(doc)
    assert code_of(lambda: create_lb(emu, doc)) == code
    assert emu.documents("LoadBalancer") == []


def test_object_model_errors(emu: Any) -> None:
    ep = emu.add_endpoint("10.244.0.5", "pod")
    guid = uuid.uuid4()
    assert create_lb(emu, lb_doc(ep), guid) == str(guid)
    assert code_of(lambda: create_lb(emu, lb_doc(ep, port=81), guid)) == hr.ERROR_ALREADY_EXISTS
    assert code_of(lambda: create_lb(emu, lb_doc(ep))) == hr.HCN_E_PORT_ALREADY_EXISTS
    missing = str(uuid.uuid4())
    assert code_of(lambda: create_lb(emu, lb_doc(missing, port=82))) == hr.HCN_E_ENDPOINT_NOT_FOUND
    assert code_of(lambda: emu.open("LoadBalancer", uuid.uuid4())) == hr.ERROR_NOT_FOUND
    assert code_of(lambda: emu.delete("Endpoint", uuid.uuid4())) == hr.HCN_E_ENDPOINT_NOT_FOUND
    assert code_of(lambda: emu.delete("Endpoint", uuid.UUID(ep))) == hr.HCN_E_ENTITY_HAS_REFERENCES
    assert code_of(lambda: emu.add_endpoint("10.244.0.5", "again")) == hr.ERROR_ALREADY_EXISTS
    handle = emu.open("LoadBalancer", guid)
    emu.close("LoadBalancer", handle)
    assert code_of(lambda: emu.query_properties("LoadBalancer", handle, "{}")) == hr.E_HANDLE
    lb = json.dumps(lb_doc(ep))
    handle = emu.open("LoadBalancer", guid)
    assert code_of(lambda: emu.modify("LoadBalancer", handle, lb)) == hr.HCN_E_REQUEST_UNSUPPORTED
    emu.close("LoadBalancer", handle)
    assert emu.open_handles == 0
    assert HcnError(hr.ERROR_NOT_FOUND, "x").not_found
    assert isinstance(hr.error_for(hr.HCN_E_MANAGER_STOPPED, "x"), hr.HcnTransientError)


def acl(**settings: Any) -> dict[str, Any]:
    base = {"Action": "Allow", "Direction": "In", "Protocols": "6", "Priority": 1000}
    return {"Type": "ACL", "Settings": {**base, **settings}}


def modify(emu: Any, ep: str, request_type: str, *policies: Any) -> None:
    request = {
        "ResourceType": "Policy",
        "RequestType": request_type,
        "Settings": {"Policies": list(policies)},
    }
    HcnClient(emu).modify("Endpoint", uuid.UUID(ep), request)


@pytest.mark.parametrize(
    ("policy", "code"),
    [
        (acl(Action="Pass"), hr.HCN_E_INVALID_POLICY),
        (acl(Direction="Both"), hr.HCN_E_INVALID_POLICY),
        (acl(Protocols="132"), hr.HCN_E_INVALID_POLICY),
        (acl(Protocols="256", LocalPorts="80"), hr.HCN_E_INVALID_POLICY),
        (acl(LocalPorts="90-80"), hr.HCN_E_INVALID_POLICY),
        (
            acl(RemoteAddresses=",".join(f"10.0.{i // 256}.{i % 256}" for i in range(4001))),
            hr.HCN_E_INVALID_POLICY,
        ),
        (acl(Priority=70000), hr.HCN_E_INVALID_POLICY),
        ({"Type": "Firewall", "Settings": {}}, hr.HCN_E_INVALID_POLICY_TYPE),
    ],
)
def test_acl_schema(emu: Any, policy: Any, code: int) -> None:
    ep = emu.add_endpoint("10.244.0.5", "pod")
    assert code_of(lambda: modify(emu, ep, "Add", policy)) == code


def test_policy_add_remove_update(emu: Any) -> None:
    ep = emu.add_endpoint("10.244.0.5", "pod")
    a, c = acl(Id="a"), acl(Id="c", Action="Block")
    modify(emu, ep, "Add", a)
    assert (
        code_of(lambda: modify(emu, ep, "Add", copy.deepcopy(a))) == hr.HCN_E_POLICY_ALREADY_EXISTS
    )
    assert code_of(lambda: modify(emu, ep, "Remove", c)) == hr.HCN_E_POLICY_NOT_FOUND
    modify(emu, ep, "Update", c)
    assert emu.documents("Endpoint")[0]["Policies"] == [c]
    modify(emu, ep, "Remove", c)
    assert emu.documents("Endpoint")[0]["Policies"] == []


def test_trace_lb_and_acls(emu: Any) -> None:
    server = emu.add_endpoint("10.244.0.5", "server")
    client = emu.add_endpoint("10.244.0.6", "client")
    create_lb(emu, lb_doc(server))
    modify(
        emu,
        server,
        "Add",
        acl(Id="allow-web", LocalPorts="8080", RemoteAddresses="10.244.0.6/32"),
        acl(Id="deny-rest", Action="Block", Protocols="256", Priority=1001),
    )
    modify(
        emu,
        client,
        "Add",
        acl(Id="no-egress", Action="Block", Direction="Out", Protocols="256", Priority=1000),
    )
    t = emu.trace("10.244.0.6", "10.96.0.10", 6, 80, endpoint_id=server)
    assert t.candidates == ((b.addr("10.244.0.5"), 8080),)
    assert t.masquerade is True and t.affinity is False
    assert (t.verdict, t.acl.rule, t.acl.direction) == ("allow", "allow-web", "In")
    t = emu.trace("10.244.0.7", "10.96.0.10", 6, 80, endpoint_id=server)
    assert (t.verdict, t.acl.rule) == ("deny", "deny-rest")
    t = emu.trace("10.244.0.6", "10.96.0.10", 6, 80, endpoint_id=client)
    assert (t.verdict, t.acl.rule, t.candidates) == ("deny", "no-egress", ())
    assert emu.trace("10.244.0.6", "10.96.0.11", 6, 80).load_balancer is None


def test_trace_node_port_matches_host_addresses(emu: Any) -> None:
    ep = emu.add_endpoint("10.244.0.5", "pod")
    doc = lb_doc(ep, port=30080, Flags=1)
    doc["FrontendVIPs"] = []
    create_lb(emu, doc)
    t = emu.trace("203.0.113.9", b.NODE_IP, 6, 30080)
    assert t.candidates == ((b.addr("10.244.0.5"), 8080),) and t.masquerade is False
    assert emu.trace("203.0.113.9", "192.168.0.99", 6, 30080).load_balancer is None

"""The HCN v2 schema subset this backend writes, as constants and validators.

Field names, enums and flags follow hcsshim ``hcn/hcnloadbalancer.go``,
``hcn/hcnendpoint.go``, ``hcn/hcnpolicy.go`` and the Microsoft HCN JSON
reference (summarised in ``kube-proxy-and-hns.md`` §3.2). The renderers use
the constants; the emulator runs the validators on every document it is
given, so a misspelt field or an out-of-range flag fails in a Linux unit test
with the HRESULT real HNS would return, not on the first Windows node.

Validators are strict about unknown keys (HNS tolerates some; we never send
them, so an unknown key is a renderer bug worth failing on).
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs

from dataplane.backends.windows_hns import hresult as hr

SCHEMA_VERSION: dict[str, int] = {"Major": 2, "Minor": 0}

# HostComputeLoadBalancer.Flags (LoadBalancerFlags)
LB_FLAG_DSR = 1
LB_FLAG_IPV6 = 2
# LoadBalancerPortMapping.Flags (LoadBalancerPortMappingFlags; VipExternalIP from kube-proxy hns.go)
PM_FLAG_ILB = 1
PM_FLAG_LOCAL_ROUTED_VIP = 2
PM_FLAG_USE_MUX = 4
PM_FLAG_PRESERVE_DIP = 8
PM_FLAG_VIP_EXTERNAL_IP = 16
# LoadBalancerPortMapping.DistributionType (LoadBalancerDistribution)
DISTRIBUTION_NONE = 0
DISTRIBUTION_SOURCE_IP_PROTOCOL = 1
DISTRIBUTION_SOURCE_IP = 2
# HostComputeEndpoint.Flags
ENDPOINT_FLAG_REMOTE = 1

LB_PROTOCOLS = frozenset({6, 17})  # HNS load balancers: TCP and UDP only
ACL_ANY_PROTOCOL = 256  # "HNS thinks 256 as ANY protocol" (Azure NPM, Calico)
ACL_PROTOCOLS = frozenset({1, 2, 6, 17, 58})  # hcsshim AclPolicySetting comment
ACL_PORT_PROTOCOLS = frozenset({6, 17})
ACL_ACTIONS = frozenset({"Allow", "Block"})  # "Pass" exists only for TierAcl
ACL_DIRECTIONS = frozenset({"In", "Out"})
ACL_RULE_TYPES = frozenset({"Host", "Switch"})
ACL_MAX_ENTRIES = 4000  # per address/port list: Microsoft's guidance, Calico ipPortsPerRule
ENDPOINT_POLICY_TYPES = frozenset(
    {
        "PortMapping",
        "ACL",
        "QOS",
        "L2Driver",
        "OutBoundNAT",
        "SDNRoute",
        "L4Proxy",
        "L4WFPPROXY",
        "PortName",
        "EncapOverhead",
        "Iov",
        "ProviderAddress",
        "InterfaceConstraint",
        "TierAcl",
    }
)
MODIFY_RESOURCE_TYPES = frozenset({"Policy", "Port"})
MODIFY_REQUEST_TYPES = frozenset({"Add", "Remove", "Update", "Refresh"})


@attrs.frozen
class Violation:
    """One schema problem and the HRESULT HNS answers it with."""

    hresult: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


Check = Callable[[str, Any], Iterator[Violation]]


def _fields(
    path: str, doc: Any, required: Mapping[str, Check], optional: Mapping[str, Check]
) -> Iterator[Violation]:
    if not isinstance(doc, dict):
        yield Violation(hr.HCN_E_INVALID_JSON, path, f"must be an object, not {doc!r}")
        return
    for key in sorted(set(doc) - set(required) - set(optional)):
        yield Violation(hr.HCN_E_INVALID_JSON, f"{path}.{key}", "unknown field")
    for key, check in required.items():
        if key not in doc:
            yield Violation(hr.HCN_E_INVALID_JSON, f"{path}.{key}", "required")
        else:
            yield from check(f"{path}.{key}", doc[key])
    for key, check in optional.items():
        if key in doc:
            yield from check(f"{path}.{key}", doc[key])


def _int(low: int, high: int, code: int = hr.HCN_E_INVALID_JSON) -> Check:
    def check(path: str, value: Any) -> Iterator[Violation]:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            yield Violation(code, path, f"must be an integer {low}-{high}, not {value!r}")

    return check


def _enum(values: frozenset[Any], code: int = hr.HCN_E_INVALID_JSON) -> Check:
    def check(path: str, value: Any) -> Iterator[Violation]:
        if isinstance(value, bool) or value not in values:
            yield Violation(code, path, f"{value!r} is not one of {sorted(values)}")

    return check


def _flags(allowed: int) -> Check:
    def check(path: str, value: Any) -> Iterator[Violation]:
        yield from _int(0, 0xFFFFFFFF)(path, value)
        if isinstance(value, int) and value & ~allowed:
            unknown = value & ~allowed
            yield Violation(hr.HCN_E_INVALID_JSON, path, f"unknown flag bits 0x{unknown:x}")

    return check


def _string(path: str, value: Any) -> Iterator[Violation]:
    if not isinstance(value, str):
        yield Violation(hr.HCN_E_INVALID_JSON, path, f"must be a string, not {value!r}")


def _guid(path: str, value: Any) -> Iterator[Violation]:
    try:
        uuid.UUID(value)
    except (TypeError, ValueError, AttributeError):
        yield Violation(hr.HCN_E_INVALID_JSON, path, f"not a GUID: {value!r}")


def _ip(path: str, value: Any) -> Iterator[Violation]:
    try:
        ipaddress.ip_address(value)
    except (TypeError, ValueError):
        yield Violation(hr.HCN_E_INVALID_JSON, path, f"not an IP address: {value!r}")


def _list_of(item: Check, *, non_empty: bool = False, code: int = hr.HCN_E_INVALID_JSON) -> Check:
    def check(path: str, value: Any) -> Iterator[Violation]:
        if not isinstance(value, list):
            yield Violation(hr.HCN_E_INVALID_JSON, path, f"must be a list, not {value!r}")
            return
        if non_empty and not value:
            yield Violation(code, path, "must not be empty")
        for i, v in enumerate(value):
            yield from item(f"{path}[{i}]", v)

    return check


def _schema_version(path: str, value: Any) -> Iterator[Violation]:
    yield from _fields(path, value, {"Major": _int(2, 2), "Minor": _int(0, 0xFFFF)}, {})


# ------------------------------------------------------------------ load balancer


def _port_mapping(path: str, value: Any) -> Iterator[Violation]:
    yield from _fields(
        path,
        value,
        {
            "Protocol": _enum(LB_PROTOCOLS),
            "InternalPort": _int(1, 65535, hr.HCN_E_INVALID_INTERNAL_PORT),
            "ExternalPort": _int(1, 65535),
        },
        {
            "DistributionType": _enum(
                frozenset(
                    {DISTRIBUTION_NONE, DISTRIBUTION_SOURCE_IP_PROTOCOL, DISTRIBUTION_SOURCE_IP}
                )
            ),
            "Flags": _flags(
                PM_FLAG_ILB
                | PM_FLAG_LOCAL_ROUTED_VIP
                | PM_FLAG_USE_MUX
                | PM_FLAG_PRESERVE_DIP
                | PM_FLAG_VIP_EXTERNAL_IP
            ),
        },
    )


def validate_load_balancer(doc: Any) -> list[Violation]:
    """A HostComputeLoadBalancer as HcnCreate/ModifyLoadBalancer accept it.

    HNS refuses a load balancer without endpoints (kubernetes PR #106936), and
    the IPv6 flag must agree with the address family of the VIPs.
    """
    problems = list(
        _fields(
            "LoadBalancer",
            doc,
            {
                "SchemaVersion": _schema_version,
                "HostComputeEndpoints": _list_of(_guid, non_empty=True),
                "PortMappings": _list_of(_port_mapping, non_empty=True),
            },
            {
                "ID": _guid,
                "FrontendVIPs": _list_of(_ip),
                "SourceVIP": _ip,
                "Flags": _flags(LB_FLAG_DSR | LB_FLAG_IPV6),
            },
        )
    )
    if problems:
        return problems
    ipv6 = bool(doc.get("Flags", 0) & LB_FLAG_IPV6)
    for i, vip in enumerate([*doc.get("FrontendVIPs", []), *filter(None, [doc.get("SourceVIP")])]):
        if (ipaddress.ip_address(vip).version == 6) != ipv6:
            problems.append(
                Violation(hr.E_INVALIDARG, f"LoadBalancer.VIP[{i}]", "family disagrees with Flags")
            )
    return problems


# ------------------------------------------------------------------ endpoint


def _comma_list(valid: Callable[[str], bool], what: str) -> Check:
    """HNS's list-in-a-string: comma-separated entries, at most 4,000 of them."""

    def check(path: str, value: Any) -> Iterator[Violation]:
        yield from _string(path, value)
        if not isinstance(value, str):
            return
        entries = value.split(",")
        if len(entries) > ACL_MAX_ENTRIES:
            message = f"{len(entries)} > {ACL_MAX_ENTRIES} entries"
            yield Violation(hr.HCN_E_INVALID_POLICY, path, message)
        for entry in entries:
            if not valid(entry):
                yield Violation(hr.HCN_E_INVALID_POLICY, path, f"not {what}: {entry!r}")

    return check


def _is_network(entry: str) -> bool:
    try:
        ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
    return True


def _is_port_range(entry: str) -> bool:
    bounds = entry.split("-")
    return (
        len(bounds) <= 2
        and all(b.isdigit() and 0 <= int(b) <= 65535 for b in bounds)
        and int(bounds[0]) <= int(bounds[-1])
    )


_address_list = _comma_list(_is_network, "an address or CIDR")
_port_list = _comma_list(_is_port_range, "a port or range a-b")


def _protocols(path: str, value: Any) -> Iterator[Violation]:
    allowed = ACL_PROTOCOLS | {ACL_ANY_PROTOCOL}
    if not isinstance(value, str) or not value.isdigit() or int(value) not in allowed:
        yield Violation(hr.HCN_E_INVALID_POLICY, path, f"{value!r} is not one of {sorted(allowed)}")


def _acl_settings(path: str, value: Any) -> Iterator[Violation]:
    code = hr.HCN_E_INVALID_POLICY
    yield from _fields(
        path,
        value,
        {"Action": _enum(ACL_ACTIONS, code), "Direction": _enum(ACL_DIRECTIONS, code)},
        {
            "Id": _string,  # accepted by HNS though absent from hcsshim's struct (Azure NPM)
            "Protocols": _protocols,
            "LocalAddresses": _address_list,
            "RemoteAddresses": _address_list,
            "LocalPorts": _port_list,
            "RemotePorts": _port_list,
            "RuleType": _enum(ACL_RULE_TYPES, code),
            "Priority": _int(0, 65535, code),
        },
    )
    if isinstance(value, dict) and ("LocalPorts" in value or "RemotePorts" in value):
        proto = value.get("Protocols")
        if not (isinstance(proto, str) and proto.isdigit() and int(proto) in ACL_PORT_PROTOCOLS):
            yield Violation(code, path, "ports need Protocols 6 or 17")


def _provider_address_settings(path: str, value: Any) -> Iterator[Violation]:
    yield from _fields(path, value, {"ProviderAddress": _ip}, {})


_POLICY_SETTINGS: Mapping[str, Check] = {
    "ACL": _acl_settings,
    "ProviderAddress": _provider_address_settings,
}


def _endpoint_policy(path: str, value: Any) -> Iterator[Violation]:
    """Type must be a known policy type; ACL and ProviderAddress settings are checked in full."""
    yield from _fields(
        path,
        value,
        {"Type": _enum(ENDPOINT_POLICY_TYPES, hr.HCN_E_INVALID_POLICY_TYPE), "Settings": _any},
        {},
    )
    if isinstance(value, dict) and value.get("Type") in _POLICY_SETTINGS:
        yield from _POLICY_SETTINGS[value["Type"]](f"{path}.Settings", value.get("Settings"))


def _any(path: str, value: Any) -> Iterator[Violation]:
    return iter(())


def _ip_configuration(path: str, value: Any) -> Iterator[Violation]:
    yield from _fields(path, value, {"IpAddress": _ip}, {"PrefixLength": _int(0, 128)})


def validate_endpoint(doc: Any) -> list[Violation]:
    """A HostComputeEndpoint as HcnCreateEndpoint accepts it."""
    return list(
        _fields(
            "Endpoint",
            doc,
            {"SchemaVersion": _schema_version, "HostComputeNetwork": _guid},
            {
                "ID": _guid,
                "Name": _string,
                "HostComputeNamespace": _guid,
                "IpConfigurations": _list_of(_ip_configuration),
                "MacAddress": _string,
                "Flags": _flags(ENDPOINT_FLAG_REMOTE),
                "Policies": _list_of(_endpoint_policy),
                "Dns": _any,
                "Routes": _any,
                "Health": _any,
            },
        )
    )


def validate_endpoint_modify(doc: Any) -> list[Violation]:
    """A ModifyEndpointSettingRequest carrying a PolicyEndpointRequest."""
    return list(
        _fields(
            "ModifyEndpointSettingRequest",
            doc,
            {
                "ResourceType": _enum(MODIFY_RESOURCE_TYPES),
                "RequestType": _enum(MODIFY_REQUEST_TYPES),
                "Settings": lambda path, value: _fields(
                    path, value, {"Policies": _list_of(_endpoint_policy)}, {}
                ),
            },
            {},
        )
    )


def validate_network(doc: Any) -> list[Violation]:
    """The part of a HostComputeNetwork the emulator needs (tests create networks)."""
    return list(
        _fields(
            "Network",
            doc,
            {"SchemaVersion": _schema_version, "Name": _string, "Type": _string},
            {"ID": _guid, "Flags": _int(0, 0xFFFFFFFF), "Ipams": _any, "Policies": _any},
        )
    )


def validate_query(doc: Any) -> list[Violation]:
    """A HostComputeQuery; ``Filter`` is a JSON *string*."""
    return list(
        _fields(
            "Query",
            doc,
            {"SchemaVersion": _schema_version},
            {"Flags": _enum(frozenset({0, 1})), "Filter": _string},
        )
    )


def query(filter_json: str = "") -> dict[str, Any]:
    """hcsshim's defaultQuery, optionally with a filter (already JSON-encoded)."""
    doc: dict[str, Any] = {"SchemaVersion": dict(SCHEMA_VERSION), "Flags": 0}
    if filter_json:
        doc["Filter"] = filter_json
    return doc

"""projectcalico.org/v3 policy objects → the model, whose fields are Calico's in snake case.

NetworkPolicy, GlobalNetworkPolicy, Tier, Profile and HostEndpoint map field
for field; the model validates values and cross-field rules (preDNAT needs
applyOnForward, ICMP matches need an ICMP protocol), and its problems come
back under the manifest's camelCase paths.

Unlike the Kubernetes kinds, unknown fields are errors here. A misspelt
``notNets`` or a ``serviceAccounts`` match the model cannot express would
otherwise be dropped silently, and a dropped match *widens* a rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dataplane.kube._fields import Doc, Value, spec_fields
from dataplane.model import (
    DEFAULT_TIER,
    EntityMatch,
    HostEndpoint,
    IcmpMatch,
    NamedPort,
    Policy,
    Profile,
    Rule,
    Tier,
)

_RULE_KEYS = (
    "action",
    "protocol",
    "notProtocol",
    "icmp",
    "notICMP",
    "ipVersion",
    "source",
    "destination",
    "metadata",
)
_ENTITY_KEYS = (
    "nets",
    "notNets",
    "selector",
    "notSelector",
    "namespaceSelector",
    "ports",
    "notPorts",
)
_POLICY_KEYS = ("tier", "order", "selector", "types", "ingress", "egress", "performanceHints")
_GLOBAL_POLICY_KEYS = (
    *_POLICY_KEYS,
    "namespaceSelector",
    "applyOnForward",
    "preDNAT",
    "doNotTrack",
)

_POLICY_FIELDS = spec_fields(
    (
        "tier",
        "order",
        "selector",
        "types",
        "ingress",
        "egress",
        "namespace_selector",
        "apply_on_forward",
        "pre_dnat",
        "do_not_track",
    )
)
_PROFILE_FIELDS = spec_fields(("ingress", "egress"))
_TIER_FIELDS = spec_fields(("order", "default_action"))
_HOST_ENDPOINT_FIELDS = spec_fields(
    ("node", "profiles"),
    interface="spec.interfaceName",
    expected_ips="spec.expectedIPs",
    named_ports="spec.ports",
)


def convert_policy(raw: Mapping[str, Any]) -> Sequence[Policy]:
    return (_policy(Doc(raw, namespaced=True), _POLICY_KEYS),)


def convert_global_policy(raw: Mapping[str, Any]) -> Sequence[Policy]:
    return (_policy(Doc(raw, namespaced=False), _GLOBAL_POLICY_KEYS),)


def _policy(doc: Doc, keys: Sequence[str]) -> Policy:
    """Both policy kinds: a namespaced one simply has no global-only fields to read."""
    spec = doc.root["spec"]
    spec.only_keys(keys)
    policy = doc.build(
        _POLICY_FIELDS,
        lambda: Policy(
            name=doc.name,  # in a non-default tier Calico spells it "<tier>.<name>"; kept as given
            namespace=doc.namespace or None,
            tier=spec["tier"].text() or DEFAULT_TIER,
            order=spec["order"].number(),
            selector=spec["selector"].text() or "all()",
            types=spec["types"].str_list() or None,  # empty means "default", as in Calico
            ingress=_rules(spec["ingress"]),
            egress=_rules(spec["egress"]),
            namespace_selector=spec["namespaceSelector"].text(),
            apply_on_forward=spec["applyOnForward"].flag(),
            pre_dnat=spec["preDNAT"].flag(),
            do_not_track=spec["doNotTrack"].flag(),
        ),
    )
    return doc.finish(policy)


def convert_profile(raw: Mapping[str, Any]) -> Sequence[Profile]:
    doc = Doc(raw, namespaced=False)
    spec = doc.root["spec"]
    spec.only_keys(("ingress", "egress"))  # labelsToApply would change what selectors match
    profile = doc.build(
        _PROFILE_FIELDS,
        lambda: Profile(
            name=doc.name, ingress=_rules(spec["ingress"]), egress=_rules(spec["egress"])
        ),
    )
    return (doc.finish(profile),)


def convert_tier(raw: Mapping[str, Any]) -> Sequence[Tier]:
    doc = Doc(raw, namespaced=False)
    spec = doc.root["spec"]
    spec.only_keys(("order", "defaultAction"))
    tier = doc.build(
        _TIER_FIELDS,
        lambda: Tier(
            name=doc.name,
            order=spec["order"].number(),
            default_action=spec["defaultAction"].text() or "Deny",
        ),
    )
    return (doc.finish(tier),)


def convert_host_endpoint(raw: Mapping[str, Any]) -> Sequence[HostEndpoint]:
    doc = Doc(raw, namespaced=False)
    spec = doc.root["spec"]
    spec.only_keys(("node", "interfaceName", "expectedIPs", "profiles", "ports"))
    interface = spec["interfaceName"]
    if not interface.present:  # Calico can find it by expectedIPs; the model needs a name
        interface.problem('required ("*" for all interfaces)')
    endpoint = doc.build(
        _HOST_ENDPOINT_FIELDS,
        lambda: HostEndpoint(
            name=doc.name,
            node=spec["node"].required_text(),
            interface=interface.text() or "*",
            expected_ips=spec["expectedIPs"].ips(),
            labels=doc.labels,
            named_ports=[
                NamedPort(
                    name=p["name"].required_text(),
                    port=p["port"].port(required=True) or 0,
                    protocol=p["protocol"].text() or "TCP",
                )
                for p in spec["ports"].items()
            ],
            profiles=spec["profiles"].str_list(),
        ),
    )
    return (doc.finish(endpoint),)


def _rules(values: Value) -> list[Rule]:
    return [_rule(v) for v in values.items()]


def _rule(value: Value) -> Rule:
    value.only_keys(_RULE_KEYS)  # "metadata" holds annotations, which change nothing
    return Rule(
        action=value["action"].required_text(),
        protocol=value["protocol"].raw,  # name or number; the model parses and checks it
        not_protocol=value["notProtocol"].raw,
        icmp=_icmp(value["icmp"]),
        not_icmp=_icmp(value["notICMP"]),
        ip_version=value["ipVersion"].integer(),
        source=_entity(value["source"]),
        destination=_entity(value["destination"]),
    )


def _icmp(value: Value) -> IcmpMatch | None:
    if not value.present:
        return None
    value.only_keys(("type", "code"))
    if not value["type"].present:
        value["type"].problem("required")
    return IcmpMatch(type=value["type"].integer() or 0, code=value["code"].integer())


def _entity(value: Value) -> EntityMatch:
    value.only_keys(_ENTITY_KEYS)  # serviceAccounts and services are not in the model
    return EntityMatch(
        nets=value["nets"].cidrs(),
        not_nets=value["notNets"].cidrs(),
        selector=value["selector"].text(),
        not_selector=value["notSelector"].text(),
        namespace_selector=value["namespaceSelector"].text(),
        ports=[p.raw for p in value["ports"].items()],  # 80, "80:90" or a name; the model checks
        not_ports=[p.raw for p in value["notPorts"].items()],
    )

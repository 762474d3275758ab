"""Bad input is rejected on construction, naming the object and the field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dataplane.errors import ValidationError
from dataplane.model import (
    DesiredState,
    Endpoint,
    EndpointPort,
    EndpointSet,
    EntityMatch,
    HostEndpoint,
    IcmpMatch,
    NamedPort,
    Namespace,
    Node,
    NodeSettings,
    Policy,
    Profile,
    Rule,
    Service,
    ServicePort,
    Tier,
    WorkloadEndpoint,
)

P80 = [ServicePort(80)]


def svc(**kw: Any) -> Service:
    return Service("default", "web", kw.pop("ports", P80), **kw)


def wep(**kw: Any) -> WorkloadEndpoint:
    base: dict[str, Any] = dict(
        namespace="default", name="p", node="n1", interface="dpw1", addresses=["10.0.0.1"]
    )
    base.update(kw)
    return WorkloadEndpoint(**base)


CASES: list[tuple[str, Callable[[], object], str, str]] = [
    (
        "bad cluster ip",
        lambda: svc(cluster_ips=["10.0.0.300"]),
        "Service default/web",
        "cluster_ips[0]",
    ),
    ("port 0", lambda: svc(ports=[ServicePort(0)]), "Service default/web", "ports[0].port"),
    ("port too big", lambda: svc(ports=[ServicePort(70000)]), "Service", "ports[0].port"),
    (
        "unknown protocol",
        lambda: svc(ports=[ServicePort(80, "FOO")]),
        "Service",
        "ports[0].protocol",
    ),
    ("icmp service", lambda: svc(ports=[ServicePort(80, "ICMP")]), "Service", "ports[0].protocol"),
    (
        "duplicate ports",
        lambda: svc(ports=[ServicePort(80, name="a"), ServicePort(80, name="b")]),
        "Service",
        "ports[1]",
    ),
    (
        "unnamed multi port",
        lambda: svc(ports=[ServicePort(80), ServicePort(81, name="b")]),
        "Service",
        "ports[0].name",
    ),
    (
        "nodePort on ClusterIP",
        lambda: svc(ports=[ServicePort(80, node_port=30000)]),
        "Service",
        "ports[0].node_port",
    ),
    (
        "lb ips on NodePort",
        lambda: svc(type="NodePort", load_balancer_ips=["1.2.3.4"]),
        "Service",
        "load_balancer_ips",
    ),
    (
        "bad source range",
        lambda: svc(type="LoadBalancer", load_balancer_source_ranges=["x/33"]),
        "Service",
        "load_balancer_source_ranges[0]",
    ),
    ("bad service type", lambda: svc(type="Bogus"), "Service", "type"),
    (
        "etp local on ClusterIP",
        lambda: svc(external_traffic_policy="Local"),
        "Service",
        "external_traffic_policy",
    ),
    ("affinity timeout", lambda: svc(affinity_timeout=0), "Service", "affinity_timeout"),
    (
        "hc port without Local",
        lambda: svc(type="NodePort", health_check_node_port=32000),
        "Service",
        "health_check_node_port",
    ),
    ("no ports", lambda: svc(ports=[]), "Service", "ports"),
    ("empty name", lambda: Service("default", "", P80), "Service default/", "name"),
    (
        "endpoint address",
        lambda: EndpointSet("d", "s", [EndpointPort(80)], [Endpoint(["nope"])]),
        "EndpointSet d/s",
        "endpoints[0].addresses[0]",
    ),
    (
        "ready and terminating",
        lambda: EndpointSet(
            "d", "s", [EndpointPort(80)], [Endpoint(["10.0.0.1"], terminating=True)]
        ),
        "EndpointSet",
        "endpoints[0].ready",
    ),
    (
        "endpoint port",
        lambda: EndpointSet("d", "s", [EndpointPort(-1)]),
        "EndpointSet",
        "ports[0].port",
    ),
    ("node address", lambda: Node("n1", ["300.1.1.1"]), "Node n1", "addresses[0]"),
    ("node pod cidr", lambda: Node("n1", pod_cidrs=["10.0.0.0/40"]), "Node n1", "pod_cidrs[0]"),
    ("namespace label value", lambda: Namespace("ns", {"a": 1}), "Namespace ns", "labels['a']"),
    (
        "workload without address",
        lambda: wep(addresses=[]),
        "WorkloadEndpoint default/p",
        "addresses",
    ),
    ("interface too long", lambda: wep(interface="x" * 16), "WorkloadEndpoint", "interface"),
    (
        "named port protocol",
        lambda: wep(named_ports=[NamedPort("http", 80, "ICMP")]),
        "WorkloadEndpoint",
        "named_ports[0].protocol",
    ),
    (
        "host endpoint ip",
        lambda: HostEndpoint("h", "n1", "eth0", expected_ips=["x"]),
        "HostEndpoint h",
        "expected_ips[0]",
    ),
    (
        "policy selector",
        lambda: Policy("p", "default", selector="app ==="),
        "Policy default/p",
        "selector",
    ),
    ("rule action", lambda: Policy("p", ingress=[Rule("Maybe")]), "Policy p", "ingress[0].action"),
    (
        "ports without protocol",
        lambda: Policy("p", ingress=[Rule("Allow", destination=EntityMatch(ports=[80]))]),
        "Policy p",
        "ingress[0].destination.ports",
    ),
    (
        "icmp without icmp protocol",
        lambda: Policy("p", ingress=[Rule("Allow", "TCP", icmp=IcmpMatch(8))]),
        "Policy p",
        "ingress[0].icmp",
    ),
    (
        "icmp type range",
        lambda: Policy("p", ingress=[Rule("Allow", "ICMP", icmp=IcmpMatch(300))]),
        "Policy p",
        "ingress[0].icmp.type",
    ),
    (
        "empty port range",
        lambda: Policy(
            "p", ingress=[Rule("Allow", "TCP", destination=EntityMatch(ports=["90:80"]))]
        ),
        "Policy p",
        "ingress[0].destination.ports[0]",
    ),
    (
        "bad net",
        lambda: Policy("p", egress=[Rule("Allow", destination=EntityMatch(nets=["10.0.0.0/99"]))]),
        "Policy p",
        "egress[0].destination.nets[0]",
    ),
    (
        "ip version mismatch",
        lambda: Policy(
            "p", ingress=[Rule("Allow", ip_version=6, source=EntityMatch(nets=["10.0.0.0/8"]))]
        ),
        "Policy p",
        "ingress[0].source.nets",
    ),
    ("preDNAT without applyOnForward", lambda: Policy("p", pre_dnat=True), "Policy p", "pre_dnat"),
    (
        "preDNAT and doNotTrack",
        lambda: Policy("p", pre_dnat=True, do_not_track=True, apply_on_forward=True),
        "Policy p",
        "pre_dnat",
    ),
    (
        "preDNAT egress",
        lambda: Policy("p", pre_dnat=True, apply_on_forward=True, egress=[Rule("Allow")]),
        "Policy p",
        "egress",
    ),
    (
        "namespaced doNotTrack",
        lambda: Policy("p", "default", do_not_track=True, apply_on_forward=True),
        "Policy default/p",
        "apply_on_forward",
    ),
    (
        "bad not_selector",
        lambda: Profile("pr", ingress=[Rule("Allow", source=EntityMatch(not_selector="has("))]),
        "Profile pr",
        "ingress[0].source.not_selector",
    ),
    ("tier default", lambda: Tier("t", default_action="Allow"), "Tier t", "default_action"),
    (
        "failsafe protocol",
        lambda: NodeSettings(failsafe_inbound="icmp:22"),
        "NodeSettings default",
        "failsafe_inbound[0].protocol",
    ),
    (
        "interface pattern",
        lambda: NodeSettings(host_interface_pattern="("),
        "NodeSettings default",
        "host_interface_pattern",
    ),
    ("missing tier", lambda: DesiredState([Policy("p", tier="nope")]), "Policy p", "tier"),
    (
        "same key twice",
        lambda: DesiredState([Namespace("a"), Namespace("a", {"x": "y"})]),
        "Namespace a",
        "name",
    ),
]


@pytest.mark.parametrize(
    ("make", "obj", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rejected_with_object_and_field(make: Callable[[], object], obj: str, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        make()
    err = info.value
    assert err.obj.startswith(obj), err
    assert any(p.field == field for p in err.problems), [p.field for p in err.problems]


def test_every_problem_reported_in_one_pass() -> None:
    with pytest.raises(ValidationError) as info:
        Service("default", "web", [ServicePort(0, "FOO")], cluster_ips=["bad"], type="Bogus")
    fields = {p.field for p in info.value.problems}
    assert {"type", "cluster_ips[0]", "ports[0].port", "ports[0].protocol"} <= fields


def test_valid_objects_round_trip_through_desired_state() -> None:
    objs = [
        svc(cluster_ips=["10.96.0.1", "fd00::1"]),
        wep(),
        Namespace("default"),
        Tier("security", order=10),
        Policy("security.p", tier="security"),
    ]
    state = DesiredState(objs)
    assert len(state) == len(objs) and state.get(objs[0].key) == objs[0]

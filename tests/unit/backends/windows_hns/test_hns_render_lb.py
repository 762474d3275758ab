"""Golden tests: IR frontends → HostComputeLoadBalancer documents, field by field.

Where the schema facts come from (summarised in
/work/shared/reference/kube-proxy-and-hns.md §3.2-3.3):
- field names and types: hcsshim ``hcn/hcnloadbalancer.go`` (HostComputeLoadBalancer,
  LoadBalancerPortMapping) and the Microsoft HCN JSON reference;
- ``LoadBalancerFlags`` DSR=1, IPv6=2; port-mapping flags ILB=1, LocalRoutedVIP=2,
  UseMux=4, PreserveDIP=8 (hcsshim) and VipExternalIP=16 (kube-proxy winkernel hns.go);
- ``LoadBalancerDistribution`` SourceIP=2 for ClientIP affinity (winkernel);
- NodePort LBs with ``FrontendVIPs: []``, flags per service type, no LB without
  endpoints (winkernel proxier.go; HNS refuses empty endpoint lists, PR #106936).
Every rendered document is also run through the emulator's schema validator.
"""

from __future__ import annotations

import uuid

import hns_builders as b

from dataplane.backends.windows_hns import schema
from dataplane.backends.windows_hns.render_lb import (
    adapt_to_features,
    conjure_mac,
    render_load_balancers,
    render_remote_endpoints,
)
from dataplane.calc.ir import FrontendKind, NoEndpoints, RemoteNode, SourceClass
from dataplane.model import Protocol

EP1 = "11111111-1111-4111-8111-111111111111"
EP2 = "22222222-2222-4222-8222-222222222222"
IDS = {b.addr("10.244.0.5"): EP1, b.addr("10.244.1.7"): EP2, b.addr("fd00::5"): EP1}
VIPS = {4: b.addr(b.NODE_IP), 6: b.addr("fd00::a")}


def render(*frontends):  # type: ignore[no-untyped-def]
    specs, warnings = render_load_balancers(frontends, IDS, VIPS)
    for spec in specs:
        assert schema.validate_load_balancer(spec.document) == []
    return specs, warnings


def test_cluster_ip() -> None:
    f = b.frontend(
        "10.96.0.10", 80, b.route(b.backend("10.244.0.5"), b.backend("10.244.1.7", local=False))
    )
    (spec,), warnings = render(f)
    assert warnings == []
    assert spec.document == {
        "HostComputeEndpoints": sorted([EP1, EP2]),
        "FrontendVIPs": ["10.96.0.10"],
        "PortMappings": [
            {
                "Protocol": 6,
                "InternalPort": 8080,
                "ExternalPort": 80,
                "DistributionType": 0,
                "Flags": 0,
            }
        ],
        "Flags": 0,
        "SourceVIP": b.NODE_IP,
        "SchemaVersion": {"Major": 2, "Minor": 0},
    }
    assert spec.frontends == ("default/web:http (cluster-ip 10.96.0.10:80/tcp)",)


def test_cluster_ip_uses_the_pod_route() -> None:
    f = b.frontend(
        "10.96.0.10",
        80,
        b.route(b.backend("10.244.0.5"), sources=SourceClass.POD),
        b.route(b.backend("10.244.0.5"), b.backend("10.244.1.7", local=False)),
    )
    (spec,), warnings = render(f)
    assert spec.document["HostComputeEndpoints"] == [EP1]
    assert warnings == [
        "default/web:http (cluster-ip 10.96.0.10:80/tcp): per-source routes differ; "
        "HNS gives every client the pod route's backends"
    ]


def test_node_port_frontends_collapse_into_one_lb_with_empty_vips() -> None:
    routes = (b.route(b.backend("10.244.0.5"), masquerade=True),)
    nodeports = [
        b.frontend(a, 30080, *routes, kind=FrontendKind.NODE_PORT)
        for a in ("192.168.0.10", "10.0.0.10", "172.16.0.10")
    ]
    (spec,), warnings = render(*nodeports)
    assert warnings == []
    assert spec.document["FrontendVIPs"] == []
    mapping = spec.document["PortMappings"][0]
    assert mapping["ExternalPort"] == 30080
    assert mapping["InternalPort"] == 8080
    assert mapping["Flags"] == schema.PM_FLAG_LOCAL_ROUTED_VIP | schema.PM_FLAG_VIP_EXTERNAL_IP
    assert spec.document["Flags"] == 0  # masquerade: not DSR
    assert len(spec.frontends) == 3


def test_node_port_per_family_and_protocol_are_separate_lbs() -> None:
    r = b.route(b.backend("10.244.0.5"), masquerade=True)
    specs, _ = render(
        b.frontend("192.168.0.10", 30080, r, kind=FrontendKind.NODE_PORT),
        b.frontend("192.168.0.10", 30080, r, kind=FrontendKind.NODE_PORT, protocol=Protocol.UDP),
    )
    assert sorted(s.document["PortMappings"][0]["Protocol"] for s in specs) == [6, 17]


def test_external_ip() -> None:
    f = b.frontend(
        "203.0.113.7",
        443,
        b.route(b.backend("10.244.0.5", 8443), masquerade=True),
        kind=FrontendKind.EXTERNAL_IP,
    )
    (spec,), warnings = render(f)
    assert warnings == []
    assert spec.document["FrontendVIPs"] == ["203.0.113.7"]
    assert spec.document["PortMappings"][0] == {
        "Protocol": 6,
        "InternalPort": 8443,
        "ExternalPort": 443,
        "DistributionType": 0,
        "Flags": schema.PM_FLAG_VIP_EXTERNAL_IP,
    }
    assert spec.document["Flags"] == 0


def test_load_balancer_ip_with_source_ranges_warns() -> None:
    f = b.frontend(
        "198.51.100.4",
        80,
        b.route(b.backend("10.244.0.5"), masquerade=True),
        kind=FrontendKind.LOAD_BALANCER,
        source_ranges=(b.net("203.0.113.0/24"),),
    )
    (spec,), warnings = render(f)
    assert spec.document["PortMappings"][0]["Flags"] == schema.PM_FLAG_VIP_EXTERNAL_IP
    assert warnings == [
        "default/web:http (load-balancer 198.51.100.4:80/tcp): source ranges 203.0.113.0/24 "
        "not enforced (no HNS source filter)"
    ]


def test_client_ip_affinity_is_source_ip_distribution() -> None:
    f = b.frontend("10.96.0.10", 80, b.route(b.backend("10.244.0.5")), affinity_timeout=10800)
    (spec,), warnings = render(f)
    assert spec.document["PortMappings"][0]["DistributionType"] == schema.DISTRIBUTION_SOURCE_IP
    assert len(warnings) == 1 and "affinity timeout 10800s not configurable" in warnings[0]


def test_external_traffic_policy_local_is_dsr() -> None:
    """eTP=Local: calc gives external clients local backends without masquerade ⇒ DSR."""
    f = b.frontend(
        "192.168.0.10",
        30080,
        b.route(
            b.backend("10.244.0.5"),
            b.backend("10.244.1.7", local=False),
            masquerade=True,
            sources=SourceClass.POD,
        ),
        b.route(b.backend("10.244.0.5"), masquerade=False, if_empty=NoEndpoints.DROP),
        kind=FrontendKind.NODE_PORT,
    )
    (spec,), warnings = render(f)
    assert spec.document["Flags"] == schema.LB_FLAG_DSR
    assert spec.document["HostComputeEndpoints"] == [EP1]
    assert len(warnings) == 1 and "per-source routes differ" in warnings[0]


def test_no_endpoints_means_no_lb_and_a_warning() -> None:
    specs, warnings = render(b.frontend("10.96.0.10", 80, b.route()))
    assert specs == []
    assert warnings == [
        "default/web:http (cluster-ip 10.96.0.10:80/tcp): no endpoints; HNS cannot reject, "
        "so no load balancer (connections time out instead of being refused)"
    ]


def test_no_endpoints_with_drop_is_exact_and_silent() -> None:
    specs, warnings = render(b.frontend("10.96.0.10", 80, b.route(if_empty=NoEndpoints.DROP)))
    assert specs == [] and warnings == []


def test_backend_without_hcn_endpoint_is_left_out_with_warning() -> None:
    f = b.frontend("10.96.0.10", 80, b.route(b.backend("10.244.0.5"), b.backend("10.244.0.99")))
    (spec,), warnings = render(f)
    assert spec.document["HostComputeEndpoints"] == [EP1]
    assert warnings == [
        "default/web:http (cluster-ip 10.96.0.10:80/tcp): backend 10.244.0.99 has no HCN "
        "endpoint yet; left out"
    ]


def test_ipv6_flag_and_source_vip() -> None:
    f = b.frontend("fd00:96::10", 80, b.route(b.backend("fd00::5")))
    (spec,), _ = render(f)
    assert spec.document["Flags"] == schema.LB_FLAG_IPV6
    assert spec.document["FrontendVIPs"] == ["fd00:96::10"]
    assert spec.document["SourceVIP"] == "fd00::a"


def test_sctp_is_not_programmed() -> None:
    f = b.frontend("10.96.0.10", 80, b.route(b.backend("10.244.0.5")), protocol=Protocol.SCTP)
    specs, warnings = render(f)
    assert specs == [] and "only TCP and UDP" in warnings[0]


def test_mixed_target_ports_keep_the_most_common() -> None:
    f = b.frontend(
        "10.96.0.10",
        80,
        b.route(
            b.backend("10.244.0.5", 8080),
            b.backend("10.244.1.7", 9090, local=False),
            b.backend("10.244.0.99", 8080),
        ),
    )
    (spec,), warnings = render(f)
    assert spec.document["PortMappings"][0]["InternalPort"] == 8080
    assert any("different target ports [8080, 9090]" in w for w in warnings)


def test_features_missing_on_old_hns_are_dropped_with_warnings() -> None:
    f = b.frontend(
        "203.0.113.7",
        80,
        b.route(b.backend("10.244.0.5")),
        kind=FrontendKind.EXTERNAL_IP,
        affinity_timeout=60,
    )
    specs, _ = render(f, b.frontend("fd00:96::10", 80, b.route(b.backend("fd00::5"))))
    adapted, warnings = adapt_to_features(specs, frozenset({"ACL"}))
    (spec,) = adapted
    assert spec.document["Flags"] == 0
    assert spec.document["PortMappings"][0]["DistributionType"] == 0
    assert len(warnings) == 3


def test_remote_endpoints_for_backends_on_other_nodes() -> None:
    ir_ = b.dataplane_ir(
        [b.frontend("10.96.0.10", 80, b.route(b.backend("10.244.1.7", local=False)))],
        remote_nodes=[RemoteNode("node-b", (b.addr("192.168.0.11"),), (b.net("10.244.1.0/24"),))],
    )
    network = str(uuid.uuid4())
    specs = render_remote_endpoints(ir_, {}, network, b.INSTANCE)
    spec = specs[b.addr("10.244.1.7")]
    assert spec.document == {
        "Name": f"{b.INSTANCE}-remote-10.244.1.7",
        "HostComputeNetwork": network,
        "IpConfigurations": [{"IpAddress": "10.244.1.7"}],
        "MacAddress": "02-11-0a-f4-01-07",
        "Flags": schema.ENDPOINT_FLAG_REMOTE,
        "Policies": [{"Type": "ProviderAddress", "Settings": {"ProviderAddress": "192.168.0.11"}}],
        "SchemaVersion": {"Major": 2, "Minor": 0},
    }
    assert schema.validate_endpoint(spec.document) == []
    assert render_remote_endpoints(ir_, {b.addr("10.244.1.7"): EP2}, network, b.INSTANCE) == {}


def test_conjure_mac_matches_kube_proxy() -> None:
    assert conjure_mac(b.addr("10.244.1.7")) == "02-11-0a-f4-01-07"
    assert conjure_mac(b.addr("fd00::1:2:3:4")) == "02-11-04-00-03-00"

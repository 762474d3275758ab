"""projectcalico.org/v3 kinds and DataplaneConfiguration: field-for-field mapping."""

from __future__ import annotations

import ipaddress

from dataplane import kube
from dataplane.model import (
    Action,
    EntityMatch,
    HostEndpoint,
    IcmpMatch,
    NamedPort,
    NodeSettings,
    Policy,
    PolicyType,
    PortRange,
    Protocol,
    ProtoPort,
    Rule,
    Tier,
    TierDefault,
)
from dataplane.model.enums import EndpointToHostAction, ExternalServiceMode
from dataplane.model.settings import DEFAULT_FAILSAFE_OUTBOUND


def convert(text: str, node_name: str | None = None) -> kube.ConversionResult:
    return kube.convert(kube.load_manifests(text), node_name=node_name)


def test_namespaced_policy_with_every_rule_field() -> None:
    (p,) = convert("""
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: security.web, namespace: shop}
spec:
  tier: security
  order: 10.5
  selector: app == 'web'
  types: [Ingress, Egress]
  ingress:
  - action: Allow
    protocol: TCP
    metadata: {annotations: {why: web}}
    source:
      nets: [10.0.0.0/8]
      notNets: [10.1.0.0/16]
      selector: role == 'fe'
      notSelector: has(banned)
      namespaceSelector: team == 'x'
      notPorts: [1234]
    destination: {ports: [80, "8000:8080", http]}
  - action: Deny
    protocol: ICMP
    icmp: {type: 8, code: 0}
    ipVersion: 4
  - {action: Log, protocol: 132}
  egress:
  - {action: Pass, notProtocol: UDP, notICMP: {type: 3}, protocol: ICMPv6}
""").objects
    assert p == Policy(
        name="security.web",
        namespace="shop",
        tier="security",
        order=10.5,
        selector="app == 'web'",
        types=frozenset({PolicyType.INGRESS, PolicyType.EGRESS}),
        ingress=(
            Rule(
                Action.ALLOW,
                protocol=Protocol.TCP,
                source=EntityMatch(
                    nets=("10.0.0.0/8",),
                    not_nets=("10.1.0.0/16",),
                    selector="role == 'fe'",
                    not_selector="has(banned)",
                    namespace_selector="team == 'x'",
                    not_ports=(1234,),
                ),
                destination=EntityMatch(ports=(80, PortRange(8000, 8080), "http")),
            ),
            Rule(Action.DENY, protocol=Protocol.ICMP, icmp=IcmpMatch(8, 0), ip_version=4),
            Rule(Action.LOG, protocol=Protocol.SCTP),
        ),
        egress=(
            Rule(
                Action.PASS,
                protocol=Protocol.ICMPV6,
                not_protocol=Protocol.UDP,
                not_icmp=IcmpMatch(3),
            ),
        ),
    )


def test_global_policy_flags_and_calico_defaults() -> None:
    pre_dnat, plain = convert("""
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: nodeports}
spec:
  selector: has(host)
  namespaceSelector: all()
  applyOnForward: true
  preDNAT: true
  ingress: [{action: Deny, protocol: TCP, destination: {ports: ["30000:32767"]}}]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: untracked}
spec: {applyOnForward: true, doNotTrack: true, egress: [{action: Allow}]}
""").objects
    assert isinstance(pre_dnat, Policy) and isinstance(plain, Policy)
    assert pre_dnat.is_global and pre_dnat.pre_dnat and pre_dnat.apply_on_forward
    assert pre_dnat.namespace_selector == "all()" and pre_dnat.order is None
    assert plain.do_not_track and plain.selector == "all()" and plain.types is None
    assert plain.effective_types == frozenset({PolicyType.EGRESS})  # Calico's default


def test_tier_profile_and_host_endpoint() -> None:
    tier, profile, hep = convert("""
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100, defaultAction: Pass}
---
apiVersion: projectcalico.org/v3
kind: Profile
metadata: {name: projectcalico-default-allow}
spec: {ingress: [{action: Allow}], egress: [{action: Allow}]}
---
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: node-a-eth0, labels: {host: "true"}}
spec:
  node: node-a
  interfaceName: eth0
  expectedIPs: [192.168.0.2]
  profiles: [projectcalico-default-allow]
  ports: [{name: ssh, port: 22, protocol: TCP}, {name: dns, port: 53, protocol: UDP}]
""").objects
    assert tier == Tier("security", order=100, default_action=TierDefault.PASS)
    assert profile.name == "projectcalico-default-allow"
    assert hep == HostEndpoint(
        name="node-a-eth0",
        node="node-a",
        interface="eth0",
        expected_ips=(ipaddress.ip_address("192.168.0.2"),),
        labels={"host": "true"},
        named_ports=(NamedPort("ssh", 22), NamedPort("dns", 53, Protocol.UDP)),
        profiles=("projectcalico-default-allow",),
    )


def test_host_endpoint_for_all_interfaces() -> None:
    (hep,) = convert("""
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: node-a-all}
spec: {node: node-a, interfaceName: "*"}
""").objects
    assert isinstance(hep, HostEndpoint) and hep.all_interfaces


CONFIG = """
apiVersion: dataplane.io/v1alpha1
kind: DataplaneConfiguration
metadata: {name: default}
spec:
  failsafeInboundHostPorts: [{protocol: tcp, port: 22}, {protocol: UDP, port: 68, net: 10.0.0.0/8}]
  failsafeOutboundHostPorts: none
  externalServiceMode: dsr
  defaultEndpointToHostAction: Accept
  hostInterfacePattern: ^eth
  workloadInterfacePrefix: cali
  clusterCIDRs: [10.0.0.0/16]
  masqueradeAll: true
---
apiVersion: dataplane.io/v1alpha1
kind: DataplaneConfiguration
metadata: {name: node.node-a}
spec: {externalServiceMode: tunnel, failsafeOutboundHostPorts: [{protocol: UDP, port: 53}]}
---
apiVersion: dataplane.io/v1alpha1
kind: DataplaneConfiguration
metadata: {name: node.node-b}
spec: {masqueradeAll: false}
"""


def test_configuration_merges_default_and_this_nodes_document() -> None:
    result = convert(CONFIG, node_name="node-a")
    assert result.objects == (
        NodeSettings(
            failsafe_inbound=(
                ProtoPort(Protocol.TCP, 22),
                ProtoPort(Protocol.UDP, 68, "10.0.0.0/8"),
            ),
            failsafe_outbound=(ProtoPort(Protocol.UDP, 53),),
            external_service_mode=ExternalServiceMode.TUNNEL,
            endpoint_to_host_action=EndpointToHostAction.ACCEPT,
            host_interface_pattern="^eth",
            workload_interface_prefix="cali",
            cluster_cidrs=("10.0.0.0/16",),
            masquerade_all=True,
        ),
    )
    assert [(s.name, s.reason) for s in result.skipped] == [("node.node-b", "for another node")]


def test_configuration_without_node_name_uses_the_default_only() -> None:
    result = convert(CONFIG)
    (settings,) = result.objects
    assert isinstance(settings, NodeSettings)
    assert settings.failsafe_outbound == ()  # "none"
    assert settings.external_service_mode is ExternalServiceMode.DSR
    assert {s.name for s in result.skipped} == {"node.node-a", "node.node-b"}


def test_node_configuration_alone_keeps_model_defaults() -> None:
    result = convert(CONFIG.split("---")[1], node_name="node-a")
    (settings,) = result.objects
    assert isinstance(settings, NodeSettings)
    assert settings.failsafe_outbound == (ProtoPort(Protocol.UDP, 53),)
    assert NodeSettings().failsafe_outbound == DEFAULT_FAILSAFE_OUTBOUND
    assert settings.failsafe_inbound == NodeSettings().failsafe_inbound


def test_configuration_with_another_name_is_skipped() -> None:
    result = convert(CONFIG.split("---")[2].replace("node.node-b", "staging"), node_name="x")
    assert result.objects == ()
    assert result.skipped[0].name == "staging"

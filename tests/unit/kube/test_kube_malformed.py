"""Malformed objects are rejected naming the object and the manifest field path.

Each case is a manifest and the path (as written in the manifest, camelCase)
one of the error's problems must name; problems the converter finds and
problems the model finds while constructing come back the same way.
"""

from __future__ import annotations

import pytest

from dataplane import kube
from dataplane.errors import ManifestError


def svc(spec: str, meta: str = "{name: web, namespace: shop}") -> str:
    return f"apiVersion: v1\nkind: Service\nmetadata: {meta}\nspec: {spec}\n"


def eps(endpoints: str, ports: str = "[{port: 80}]", address_type: str = "IPv4") -> str:
    return (
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
        "metadata: {name: web-a, namespace: shop, labels: {kubernetes.io/service-name: web}}\n"
        f"addressType: {address_type}\nports: {ports}\nendpoints: {endpoints}\n"
    )


def pod(
    status: str = "{phase: Running, podIP: 10.0.0.1}",
    spec: str = "{nodeName: n}",
    meta: str = "{name: p, namespace: shop}",
) -> str:
    return f"apiVersion: v1\nkind: Pod\nmetadata: {meta}\nspec: {spec}\nstatus: {status}\n"


def knp(spec: str) -> str:
    return (
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
        f"metadata: {{name: np, namespace: shop}}\nspec: {spec}\n"
    )


def rule_in(rule: str) -> str:
    return knp(f"{{podSelector: {{}}, ingress: [{rule}]}}")


def peer(p: str) -> str:
    return rule_in(f"{{from: [{p}]}}")


def gnp(spec: str, kind: str = "GlobalNetworkPolicy") -> str:
    return f"apiVersion: projectcalico.org/v3\nkind: {kind}\nmetadata: {{name: g}}\nspec: {spec}\n"


def calico_rule(rule: str) -> str:
    return gnp(f"{{ingress: [{rule}]}}")


def config(spec: str) -> str:
    return (
        "apiVersion: dataplane.io/v1alpha1\nkind: DataplaneConfiguration\n"
        f"metadata: {{name: default}}\nspec: {spec}\n"
    )


CASES = [
    # --- Service
    ("bad-cluster-ip", svc("{clusterIP: 10.96.0.300, ports: [{port: 80}]}"), "spec.clusterIP"),
    (
        "bad-cluster-ips-item",
        svc("{clusterIPs: [10.96.0.1, nope], ports: [{port: 80}]}"),
        "spec.clusterIPs[1]",
    ),
    ("port-out-of-range", svc("{ports: [{port: 70000}]}"), "spec.ports[0].port"),
    ("port-missing", svc("{ports: [{name: a, targetPort: 80}]}"), "spec.ports[0].port"),
    ("port-not-a-number", svc("{ports: [{port: '80'}]}"), "spec.ports[0].port"),
    ("service-protocol", svc("{ports: [{port: 80, protocol: ICMP}]}"), "spec.ports[0].protocol"),
    (
        "node-port-on-cluster-ip",
        svc("{ports: [{port: 80, nodePort: 30080}]}"),
        "spec.ports[0].nodePort",
    ),
    (
        "duplicate-ports",
        svc("{ports: [{name: a, port: 80}, {name: b, port: 80}]}"),
        "spec.ports[1]",
    ),
    (
        "duplicate-port-names",
        svc("{ports: [{name: a, port: 80}, {name: a, port: 81}]}"),
        "spec.ports[1].name",
    ),
    ("unnamed-ports", svc("{ports: [{port: 80}, {port: 81}]}"), "spec.ports[0].name"),
    (
        "target-port-out-of-range",
        svc("{ports: [{port: 80, targetPort: 0}]}"),
        "spec.ports[0].targetPort",
    ),
    ("ports-not-a-list", svc("{ports: '80'}"), "spec.ports"),
    ("service-type", svc("{type: Internal, ports: [{port: 80}]}"), "spec.type"),
    (
        "local-policy-on-cluster-ip",
        svc("{externalTrafficPolicy: Local, ports: [{port: 80}]}"),
        "spec.externalTrafficPolicy",
    ),
    (
        "health-check-port-without-local",
        svc("{type: NodePort, healthCheckNodePort: 31000, ports: [{port: 80}]}"),
        "spec.healthCheckNodePort",
    ),
    ("bad-external-ip", svc("{externalIPs: [1.2.3], ports: [{port: 80}]}"), "spec.externalIPs[0]"),
    (
        "bad-source-range",
        svc("{type: LoadBalancer, loadBalancerSourceRanges: [10.0.0.0/33], ports: [{port: 80}]}"),
        "spec.loadBalancerSourceRanges[0]",
    ),
    (
        "affinity-timeout",
        svc(
            "{sessionAffinity: ClientIP, sessionAffinityConfig: "
            "{clientIP: {timeoutSeconds: 100000}}, ports: [{port: 80}]}"
        ),
        "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
    ),
    ("missing-name", svc("{ports: [{port: 80}]}", meta="{namespace: shop}"), "metadata.name"),
    (
        "label-not-a-string",
        svc("{ports: [{port: 80}]}", meta="{name: w, labels: {v: 1}}"),
        "metadata.labels",
    ),
    ("spec-not-an-object", svc("[1, 2]"), "spec"),
    # --- EndpointSlice
    ("bad-endpoint-address", eps("[{addresses: [10.0.0.999]}]"), "endpoints[0].addresses[0]"),
    ("wrong-family", eps("[{addresses: ['fd00::1']}]"), "endpoints[0].addresses[0]"),
    ("no-endpoint-address", eps("[{addresses: []}]"), "endpoints[0].addresses"),
    (
        "ready-and-terminating",
        eps("[{addresses: [10.0.0.1], conditions: {ready: true, terminating: true}}]"),
        "endpoints[0].conditions.ready",
    ),
    (
        "condition-not-a-bool",
        eps("[{addresses: [10.0.0.1], conditions: {ready: 'yes'}}]"),
        "endpoints[0].conditions.ready",
    ),
    ("slice-port", eps("[]", ports="[{port: 0}]"), "ports[0].port"),
    ("slice-address-type", eps("[]", address_type="IPv5"), "addressType"),
    # --- Pod, Node
    ("bad-pod-ip", pod("{podIPs: [{ip: 10.0.0.1.1}]}"), "status.podIPs[0].ip"),
    (
        "named-container-port",
        pod(
            spec="{nodeName: n, containers: [{name: c, ports: "
            "[{name: http, containerPort: 99999}]}]}"
        ),
        "spec.containers[0].ports[0].containerPort",
    ),
    (
        "interface-annotation",
        pod(meta="{name: p, annotations: {dataplane.io/interface: much-too-long-name0}}"),
        "metadata.annotations['dataplane.io/interface']",
    ),
    (
        "node-pod-cidr",
        "apiVersion: v1\nkind: Node\nmetadata: {name: n}\n"
        "spec: {podCIDRs: [10.0.0.0/8, 10.1.0.0/99]}\n",
        "spec.podCIDRs[1]",
    ),
    (
        "node-address",
        "apiVersion: v1\nkind: Node\nmetadata: {name: n}\n"
        "status: {addresses: [{type: InternalIP, address: x}]}\n",
        "status.addresses[0].address",
    ),
    # --- NetworkPolicy
    (
        "unknown-operator",
        knp("{podSelector: {matchExpressions: [{key: a, operator: Equals, values: [b]}]}}"),
        "spec.podSelector.matchExpressions[0].operator",
    ),
    (
        "in-without-values",
        peer("{podSelector: {matchExpressions: [{key: a, operator: In}]}}"),
        "spec.ingress[0].from[0].podSelector.matchExpressions[0].values",
    ),
    (
        "exists-with-values",
        knp("{podSelector: {matchExpressions: [{key: a, operator: Exists, values: [b]}]}}"),
        "spec.podSelector.matchExpressions[0].values",
    ),
    (
        "selector-label-key",
        knp("{podSelector: {matchLabels: {'bad key': x}}}"),
        "spec.podSelector.matchLabels",
    ),
    (
        "ip-block-cidr",
        peer("{ipBlock: {cidr: 10.0.0.0/40}}"),
        "spec.ingress[0].from[0].ipBlock.cidr",
    ),
    (
        "ip-block-missing-cidr",
        peer("{ipBlock: {except: [10.0.0.0/24]}}"),
        "spec.ingress[0].from[0].ipBlock.cidr",
    ),
    (
        "ip-block-except-outside",
        peer("{ipBlock: {cidr: 10.0.0.0/16, except: [10.1.0.0/24]}}"),
        "spec.ingress[0].from[0].ipBlock.except[0]",
    ),
    (
        "ip-block-with-selector",
        peer("{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}"),
        "spec.ingress[0].from[0]",
    ),
    ("empty-peer", knp("{podSelector: {}, egress: [{to: [{}]}]}"), "spec.egress[0].to[0]"),
    (
        "netpol-protocol",
        rule_in("{ports: [{protocol: ICMP, port: 80}]}"),
        "spec.ingress[0].ports[0].protocol",
    ),
    (
        "end-port-below-port",
        rule_in("{ports: [{port: 90, endPort: 80}]}"),
        "spec.ingress[0].ports[0].endPort",
    ),
    (
        "end-port-on-named-port",
        rule_in("{ports: [{port: http, endPort: 90}]}"),
        "spec.ingress[0].ports[0].endPort",
    ),
    ("netpol-port-zero", rule_in("{ports: [{port: 0}]}"), "spec.ingress[0].ports[0].port"),
    (
        "netpol-bad-port-name",
        rule_in("{ports: [{port: Web_Port}]}"),
        "spec.ingress[0].ports[0].port",
    ),
    ("policy-type", knp("{podSelector: {}, policyTypes: [Forward]}"), "spec.policyTypes[0]"),
    ("rules-not-a-list", knp("{podSelector: {}, ingress: {from: []}}"), "spec.ingress"),
    # --- Calico
    (
        "pre-dnat-without-apply-on-forward",
        gnp("{preDNAT: true, ingress: [{action: Allow}]}"),
        "spec.preDNAT",
    ),
    (
        "pre-dnat-with-egress",
        gnp("{preDNAT: true, applyOnForward: true, egress: [{action: Allow}]}"),
        "spec.egress",
    ),
    (
        "icmp-type",
        calico_rule("{action: Allow, protocol: ICMP, icmp: {type: 300}}"),
        "spec.ingress[0].icmp.type",
    ),
    (
        "icmp-without-icmp-protocol",
        calico_rule("{action: Allow, protocol: TCP, notICMP: {type: 8}}"),
        "spec.ingress[0].icmp",
    ),
    (
        "icmp-without-type",
        calico_rule("{action: Allow, protocol: ICMP, icmp: {code: 1}}"),
        "spec.ingress[0].icmp.type",
    ),
    ("calico-protocol", calico_rule("{action: Allow, protocol: TCPX}"), "spec.ingress[0].protocol"),
    ("calico-action", gnp("{egress: [{action: Accept}]}"), "spec.egress[0].action"),
    ("calico-missing-action", calico_rule("{protocol: TCP}"), "spec.ingress[0].action"),
    ("calico-selector-syntax", gnp("{selector: \"app == 'web' &&\"}"), "spec.selector"),
    (
        "calico-not-nets",
        calico_rule("{action: Deny, source: {notNets: [300.0.0.0/8]}}"),
        "spec.ingress[0].source.notNets[0]",
    ),
    (
        "calico-ports-without-protocol",
        calico_rule("{action: Allow, destination: {ports: [80]}}"),
        "spec.ingress[0].destination.ports",
    ),
    (
        "calico-bad-port-range",
        calico_rule("{action: Allow, protocol: TCP, destination: {ports: ['90:80']}}"),
        "spec.ingress[0].destination.ports[0]",
    ),
    (
        "calico-ip-version",
        calico_rule("{action: Allow, ipVersion: 5}"),
        "spec.ingress[0].ipVersion",
    ),
    (
        "calico-service-accounts",
        calico_rule("{action: Allow, source: {serviceAccounts: {names: [a]}}}"),
        "spec.ingress[0].source.serviceAccounts",
    ),
    ("calico-typo", gnp("{namespaceSelecter: all()}"), "spec.namespaceSelecter"),
    (
        "namespaced-calico-policy-pre-dnat",
        gnp("{preDNAT: true}", kind="NetworkPolicy"),
        "spec.preDNAT",
    ),
    (
        "tier-default-action",
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: t}\n"
        "spec: {defaultAction: Allow}\n",
        "spec.defaultAction",
    ),
    (
        "tier-order",
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: t}\nspec: {order: first}\n",
        "spec.order",
    ),
    (
        "host-endpoint-interface",
        "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\n"
        "metadata: {name: h}\nspec: {node: n, expectedIPs: [10.0.0.1]}\n",
        "spec.interfaceName",
    ),
    (
        "host-endpoint-expected-ip",
        "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\n"
        "metadata: {name: h}\nspec: {node: n, interfaceName: eth0, "
        "expectedIPs: [10.0.0]}\n",
        "spec.expectedIPs[0]",
    ),
    (
        "host-endpoint-port-protocol",
        "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\n"
        "metadata: {name: h}\nspec: {node: n, interfaceName: eth0, "
        "ports: [{name: x, port: 1, protocol: ICMP}]}\n",
        "spec.ports[0].protocol",
    ),
    (
        "host-endpoint-node",
        "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\n"
        "metadata: {name: h}\nspec: {interfaceName: eth0}\n",
        "spec.node",
    ),
    (
        "profile-labels-to-apply",
        "apiVersion: projectcalico.org/v3\nkind: Profile\n"
        "metadata: {name: p}\nspec: {labelsToApply: {a: b}}\n",
        "spec.labelsToApply",
    ),
    # --- DataplaneConfiguration
    (
        "failsafe-protocol",
        config("{failsafeInboundHostPorts: [{protocol: icmp, port: 1}]}"),
        "spec.failsafeInboundHostPorts[0].protocol",
    ),
    (
        "failsafe-port",
        config("{failsafeOutboundHostPorts: [{protocol: udp, port: 65536}]}"),
        "spec.failsafeOutboundHostPorts[0].port",
    ),
    (
        "failsafe-net",
        config("{failsafeInboundHostPorts: [{port: 22, net: 10.0.0.0/64}]}"),
        "spec.failsafeInboundHostPorts[0].net",
    ),
    (
        "failsafe-string",
        config("{failsafeInboundHostPorts: 'tcp:22'}"),
        "spec.failsafeInboundHostPorts",
    ),
    ("service-mode", config("{externalServiceMode: maglev}"), "spec.externalServiceMode"),
    (
        "endpoint-to-host",
        config("{defaultEndpointToHostAction: Reject}"),
        "spec.defaultEndpointToHostAction",
    ),
    ("interface-pattern", config("{hostInterfacePattern: '(eth'}"), "spec.hostInterfacePattern"),
    (
        "workload-prefix",
        config("{workloadInterfacePrefix: averylongprefix}"),
        "spec.workloadInterfacePrefix",
    ),
    ("config-typo", config("{masqueradeAl: true}"), "spec.masqueradeAl"),
    ("cluster-cidr", config("{clusterCIDRs: [10.0.0.0/8, x]}"), "spec.clusterCIDRs[1]"),
    # --- any object
    ("missing-kind", "apiVersion: v1\nmetadata: {name: x}\n", "kind"),
    ("missing-api-version", "kind: Service\nmetadata: {name: x}\n", "apiVersion"),
]


@pytest.mark.parametrize(("manifest", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_object_names_object_and_field(manifest: str, field: str) -> None:
    with pytest.raises(ManifestError) as info:
        kube.convert(kube.load_manifests(manifest), node_name="n")
    error = info.value
    fields = [p.field for p in error.problems]
    assert any(field == f or f.startswith(field) for f in fields), (fields, str(error))
    kind = manifest.split("kind: ")[1].split("\n")[0] if "kind: " in manifest else "object"
    assert error.obj.startswith(kind), error.obj


def test_case_count() -> None:
    assert len(CASES) >= 30


def test_every_problem_of_a_document_in_one_error() -> None:
    manifest = svc(
        "{type: ClusterIP, clusterIP: bad, externalTrafficPolicy: Local, "
        "ports: [{name: a, port: 0}, {name: a, port: 81, nodePort: 30001}]}",
        meta="{name: web, namespace: shop, labels: {v: 1}}",
    )
    with pytest.raises(ManifestError) as info:
        kube.convert(kube.load_manifests(manifest))
    assert info.value.obj == "Service shop/web"
    assert {p.field for p in info.value.problems} == {
        "metadata.labels['v']",
        "spec.clusterIP",
        "spec.ports[0].port",
        "spec.ports[1].name",
        "spec.ports[1].nodePort",
        "spec.externalTrafficPolicy",
    }
    assert "Service shop/web: " in str(info.value)


def test_a_malformed_pod_is_an_error_even_if_it_would_be_skipped() -> None:
    with pytest.raises(ManifestError, match=r"status\.podIP"):
        kube.convert(kube.load_manifests(pod("{phase: Succeeded, podIP: nope}")))

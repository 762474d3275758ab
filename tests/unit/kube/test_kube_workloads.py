"""Pods, namespaces and nodes: endpoints, the labels selectors see, profiles."""

from __future__ import annotations

import ipaddress

from dataplane import kube
from dataplane.model import (
    Action,
    NamedPort,
    Namespace,
    Node,
    Profile,
    Protocol,
    Rule,
    WorkloadEndpoint,
)
from dataplane.model.naming import workload_interface_name

ip = ipaddress.ip_address


def convert(text: str, node_name: str | None = None) -> kube.ConversionResult:
    return kube.convert(kube.load_manifests(text), node_name=node_name)


POD = """
apiVersion: v1
kind: Pod
metadata:
  name: web-0
  namespace: shop
  labels: {app: web}
spec:
  nodeName: node-b
  serviceAccountName: web-sa
  containers:
  - name: app
    ports:
    - {name: http, containerPort: 8080}
    - {containerPort: 9000}
  - name: sidecar
    ports: [{name: dns, containerPort: 53, protocol: UDP}]
status:
  phase: Running
  podIP: 10.0.1.5
  podIPs: [{ip: 10.0.1.5}, {ip: "fd00::1:5"}]
"""


def test_pod_becomes_workload_endpoint_with_calico_labels_and_profiles() -> None:
    # Another node's pod still converts: selectors resolve to it.
    (wep,) = convert(POD, node_name="node-a").objects
    assert wep == WorkloadEndpoint(
        namespace="shop",
        name="web-0",
        node="node-b",
        interface=workload_interface_name("shop", "web-0"),
        addresses=(ip("10.0.1.5"), ip("fd00::1:5")),
        labels={
            "app": "web",
            "projectcalico.org/namespace": "shop",
            "projectcalico.org/orchestrator": "k8s",
            "projectcalico.org/serviceaccount": "web-sa",
        },
        named_ports=(NamedPort("http", 8080), NamedPort("dns", 53, Protocol.UDP)),
        profiles=("kns.shop", "ksa.shop.web-sa"),
        service_account="web-sa",
    )
    assert wep.interface.startswith("dpw") and len(wep.interface) == 14


def test_interface_annotation_and_single_pod_ip() -> None:
    text = POD.replace(
        "labels: {app: web}",
        "labels: {app: web}\n  annotations: {dataplane.io/interface: cali1234}",
    ).replace('  podIPs: [{ip: 10.0.1.5}, {ip: "fd00::1:5"}]\n', "")
    (wep,) = convert(text).objects
    assert isinstance(wep, WorkloadEndpoint)
    assert wep.interface == "cali1234"
    assert wep.addresses == (ip("10.0.1.5"),)


def test_pods_that_carry_no_traffic_are_skipped_with_reasons() -> None:
    pending = POD.replace("web-0", "pending").split("status:")[0] + "status: {phase: Pending}\n"
    unscheduled = pending.replace("pending", "unscheduled").replace("  nodeName: node-b\n", "")
    finished = POD.replace("web-0", "done").replace("phase: Running", "phase: Succeeded")
    failed = POD.replace("web-0", "failed").replace("phase: Running", "phase: Failed")
    host = POD.replace("web-0", "host").replace("spec:\n", "spec:\n  hostNetwork: true\n")
    result = convert("---\n".join([pending, unscheduled, finished, failed, host]))
    assert result.objects == ()
    reasons = {s.name: s.reason for s in result.skipped}
    assert set(reasons) == {
        "shop/pending",
        "shop/unscheduled",
        "shop/done",
        "shop/failed",
        "shop/host",
    }
    assert "IP" in reasons["shop/pending"]
    assert "scheduled" in reasons["shop/unscheduled"]
    assert "Succeeded" in reasons["shop/done"] and "Failed" in reasons["shop/failed"]
    assert "host" in reasons["shop/host"]


def test_namespace_gives_labels_and_an_allow_all_profile() -> None:
    namespace, profile = convert("""
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: a}}
""").objects
    assert namespace == Namespace(
        name="shop",
        labels={
            "team": "a",
            "kubernetes.io/metadata.name": "shop",
            "projectcalico.org/name": "shop",
        },
    )
    assert profile == Profile(
        name="kns.shop", ingress=(Rule(Action.ALLOW),), egress=(Rule(Action.ALLOW),)
    )


def test_node_addresses_cidrs_and_labels() -> None:
    (node,) = convert("""
apiVersion: v1
kind: Node
metadata: {name: node-a, labels: {zone: z1}}
spec: {podCIDR: 10.0.1.0/24, podCIDRs: [10.0.1.0/24, "fd00:1::/64"]}
status:
  addresses:
  - {type: Hostname, address: node-a}
  - {type: InternalIP, address: 192.168.0.2}
  - {type: ExternalIP, address: 203.0.113.7}
""").objects
    assert node == Node(
        name="node-a",
        addresses=(ip("192.168.0.2"), ip("203.0.113.7")),
        pod_cidrs=(ipaddress.ip_network("10.0.1.0/24"), ipaddress.ip_network("fd00:1::/64")),
        labels={"zone": "z1"},
    )


def test_node_with_only_the_old_pod_cidr_field() -> None:
    (node,) = convert("""
apiVersion: v1
kind: Node
metadata: {name: node-a}
spec: {podCIDR: 10.0.1.0/24}
""").objects
    assert isinstance(node, Node)
    assert node.pod_cidrs == (ipaddress.ip_network("10.0.1.0/24"),)

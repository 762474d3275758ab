"""Pure parts of the lab: naming, address plan, spec validation, plan, describe()."""

from __future__ import annotations

import hashlib
from ipaddress import IPv4Address, IPv4Network

import pytest

from dataplane.lab import addressing, naming
from dataplane.lab.describe import INTERFACE_ANNOTATION, describe
from dataplane.lab.plan import ClientInfo, NodeInfo, PodInfo, make_plan
from dataplane.lab.spec import (
    DEFAULT_PORTS,
    ClientSpec,
    LabSpec,
    NodeSpec,
    PodSpec,
    PortSpec,
    SpecError,
)
from dataplane.model.naming import workload_interface_name


def test_workload_interface_name_is_dpw_plus_sha1_and_fits_ifnamsiz() -> None:
    name = workload_interface_name("default", "web-0")
    assert name == "dpw" + hashlib.sha1(b"default/web-0").hexdigest()[:11]
    assert len(name) <= 15
    assert workload_interface_name("a", "b-c") != workload_interface_name("a-b", "c")


def test_prefixes_are_unique_and_recognised() -> None:
    prefixes = {naming.new_prefix() for _ in range(200)}
    assert len(prefixes) > 190
    assert all(naming.is_prefix(p) and len(p) == 8 for p in prefixes)
    assert naming.prefix_of_netns("dpl0a1b2-node-node-0") == "dpl0a1b2"
    assert naming.prefix_of_netns("dplxyz-node") is None
    assert naming.prefix_of_netns("other") is None


def test_address_plan_ranges_are_disjoint_and_avoid_service_vips() -> None:
    nodes = [addressing.node_ip(i) for i in range(addressing.MAX_NODES)]
    clients = [addressing.fabric_client_ip(k) for k in range(addressing.MAX_FABRIC_CLIENTS)]
    everything = [*nodes, *clients, addressing.ROUTER_FABRIC_IP]
    assert len(set(everything)) == len(everything)
    assert all(IPv4Address(a) in addressing.FABRIC_CIDR for a in everything)
    cidrs = [IPv4Network(addressing.pod_cidr(i)) for i in range(addressing.MAX_NODES)]
    assert all(c.prefixlen == 24 and c.subnet_of(addressing.POD_SUPERNET) for c in cidrs)
    assert len(set(cidrs)) == len(cidrs)
    pods = [addressing.pod_ip(3, j) for j in range(addressing.MAX_PODS_PER_NODE)]
    assert len(set(pods)) == len(pods)
    assert all(IPv4Address(p) in cidrs[3] for p in pods)
    assert addressing.ROUTER_REMOTE_IP not in [
        addressing.remote_client_ip(k) for k in range(addressing.MAX_REMOTE_CLIENTS)
    ]
    for network in (addressing.FABRIC_CIDR, addressing.POD_SUPERNET, addressing.REMOTE_CIDR):
        assert not network.overlaps(addressing.SERVICE_CIDR)
    with pytest.raises(ValueError):
        addressing.pod_ip(0, addressing.MAX_PODS_PER_NODE)


def test_is_lab_address() -> None:
    assert addressing.is_lab_address("10.100.2.7")
    assert addressing.is_lab_address("10.96.0.10")
    assert not addressing.is_lab_address("8.8.8.8")
    assert not addressing.is_lab_address("10.0.2.15")


@pytest.mark.parametrize(
    "build, fragment",
    [
        (lambda: LabSpec(nodes=()), "at least one node"),
        (lambda: LabSpec(nodes=(NodeSpec("a"), NodeSpec("a"))), "unique"),
        (lambda: LabSpec(nodes=(NodeSpec("a"),), clients=(ClientSpec("a"),)), "unique"),
        (lambda: LabSpec(nodes=(NodeSpec("router"),)), "reserved"),
        (lambda: NodeSpec("Bad_Name"), "NodeSpec.name"),
        (lambda: PodSpec("p", namespace="Kube_System"), "PodSpec.namespace"),
        (lambda: PortSpec("http", 0), "outside 1-65535"),
        (lambda: PortSpec("http", 80, "icmp"), "protocol"),
        (lambda: PortSpec("a-very-long-port-name", 80), "IANA"),
        (lambda: PodSpec("p", ports=(PortSpec("a", 80), PortSpec("b", 80))), "duplicate"),
        (lambda: PodSpec("p", ports=(PortSpec("a", 80), PortSpec("a", 81))), "duplicate"),
        (
            lambda: LabSpec(
                nodes=(NodeSpec("a", pods=(PodSpec("p"),)), NodeSpec("b", pods=(PodSpec("p"),)))
            ),
            "pod namespace/name",
        ),
        (lambda: NodeSpec("a", pods=tuple(PodSpec(f"p{i}") for i in range(254))), "at most"),
    ],
)
def test_spec_validation_names_object_and_field(build: object, fragment: str) -> None:
    with pytest.raises(SpecError, match=fragment):
        build()  # type: ignore[operator]


def test_spec_round_trips_through_dict() -> None:
    spec = LabSpec(
        nodes=(
            NodeSpec(
                "n1",
                pods=(PodSpec("web", "prod", {"app": "web"}, (PortSpec("http", 80),)),),
                ports=(PortSpec("ssh", 22),),
            ),
        ),
        clients=(ClientSpec("c"), ClientSpec("far", behind_router=True)),
    )
    assert LabSpec.from_dict(spec.to_dict()) == spec
    assert PortSpec("dns", 53, "udp").protocol == "UDP"
    with pytest.raises(SpecError, match="malformed"):
        LabSpec.from_dict({"nodes": [{}]})


def test_uniform_spec() -> None:
    spec = LabSpec.uniform(3, 10, fabric_clients=2, remote_clients=1)
    assert [n.name for n in spec.nodes] == ["node-0", "node-1", "node-2"]
    assert sum(len(n.pods) for n in spec.nodes) == 30
    assert spec.nodes[1].pods[4].name == "pod-1-4"
    assert spec.nodes[0].pods[0].ports == DEFAULT_PORTS
    assert spec.has_router
    assert not LabSpec.uniform(1, 1).has_router


def test_plan_assigns_names_and_addresses() -> None:
    plan = make_plan(LabSpec.uniform(2, 2, fabric_clients=1, remote_clients=1), "dpl12345")
    node1 = plan.host("node-1")
    assert isinstance(node1, NodeInfo)
    assert (node1.netns, node1.ip, node1.pod_cidr, node1.uplink) == (
        "dpl12345-node-node-1",
        "10.99.0.12",
        "10.100.1.0/24",
        "eth0",
    )
    pod = plan.host("default/pod-1-0")
    assert isinstance(pod, PodInfo)
    assert pod.ip == "10.100.1.2"
    assert pod.interface == workload_interface_name("default", "pod-1-0")
    assert node1.pod_interfaces == (pod.interface, plan.host("pod-1-1").interface)  # type: ignore[union-attr]
    remote = plan.host("remote-0")
    assert isinstance(remote, ClientInfo)
    assert (remote.ip, remote.gateway, remote.behind_router) == ("10.98.0.10", "10.98.0.1", True)
    assert plan.host("client-0").ip == "10.99.0.101"
    assert plan.router is not None and plan.host("router") is plan.router
    namespaces = plan.namespaces()
    assert namespaces[0] == "dpl12345-fabric"
    assert len(namespaces) == len(set(namespaces)) == 1 + 2 + 4 + 1 + 2
    assert all(naming.prefix_of_netns(n) == "dpl12345" for n in namespaces)
    with pytest.raises(KeyError, match="no single lab host"):
        plan.host("nope")


def test_plan_without_remote_clients_has_no_router() -> None:
    assert make_plan(LabSpec.uniform(1, 1), "dpl12345").router is None


def test_describe_renders_kubernetes_objects() -> None:
    spec = LabSpec(
        nodes=(
            NodeSpec("a", pods=(PodSpec("web", "prod", {"app": "web"}, (PortSpec("http", 80),)),)),
            NodeSpec("b", pods=(PodSpec("db", "data"),)),
        )
    )
    objects = describe(make_plan(spec, "dpl12345"))
    kinds = [o["kind"] for o in objects]
    assert kinds == ["Node", "Node", "Namespace", "Namespace", "Pod", "Pod"]
    node_b = objects[1]
    assert node_b["spec"]["podCIDR"] == "10.100.1.0/24"
    assert {"type": "InternalIP", "address": "10.99.0.12"} in node_b["status"]["addresses"]
    namespace = objects[2]
    assert namespace["metadata"] == {
        "name": "data",
        "labels": {"kubernetes.io/metadata.name": "data"},
    }
    web = objects[4]
    assert web["metadata"]["labels"] == {"app": "web"}
    assert web["metadata"]["annotations"][INTERFACE_ANNOTATION] == workload_interface_name(
        "prod", "web"
    )
    assert web["spec"]["nodeName"] == "a"
    assert web["spec"]["containers"][0]["ports"] == [
        {"name": "http", "containerPort": 80, "protocol": "TCP"}
    ]
    assert web["status"]["podIP"] == "10.100.0.2"
    assert web["status"]["hostIP"] == "10.99.0.11"

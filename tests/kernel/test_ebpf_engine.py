"""The eBPF backend driven through the engine: model objects → calc → maps → packets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dataplane.backends.ebpf import EbpfBackend
from dataplane.lab import Lab, LabSpec
from dataplane.lab.netns import unavailable_reason
from dataplane.model import (
    Endpoint,
    EndpointPort,
    EndpointSet,
    Node,
    NodeSettings,
    Profile,
    Rule,
    Service,
    ServicePort,
    WorkloadEndpoint,
)

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason())),
    pytest.mark.skipif(
        EbpfBackend.unavailable_reason() is not None,
        reason=str(EbpfBackend.unavailable_reason()),
    ),
]


@pytest.fixture(scope="module")
def lab_spec() -> LabSpec:
    return LabSpec.uniform(2, 2, fabric_clients=1)


def desired_state(lab: Lab) -> list[Any]:
    # Pods carry an allow-all profile, as Kubernetes namespaces do: with policy
    # enforced, an endpoint without profile or policy would deny everything.
    state: list[Any] = [
        NodeSettings(cluster_cidrs=("10.100.0.0/16",)),
        Profile("allow-all", ingress=[Rule("Allow")], egress=[Rule("Allow")]),
    ]
    for node in lab.plan.nodes:
        state.append(Node(node.name, addresses=(node.ip,), pod_cidrs=(node.pod_cidr,)))
        for pod in node.pods:
            state.append(
                WorkloadEndpoint(
                    pod.namespace,
                    pod.name,
                    node.name,
                    pod.interface,
                    (pod.ip,),
                    profiles=["allow-all"],
                )
            )
    web = ServicePort(80, "TCP", "http", 8080, node_port=30080)
    state.append(Service("default", "web", (web,), type="NodePort", cluster_ips=("10.96.0.10",)))
    state.append(
        EndpointSet(
            "default",
            "web",
            (EndpointPort(8080, "TCP", "http"),),
            (Endpoint((lab.pods["default/pod-0-1"].ip,), "node-0"),),
        )
    )
    return state


@pytest.fixture(scope="module")
def dataplanes(lab: Lab) -> Iterator[list[Any]]:
    made: list[Any] = []
    try:
        for node in lab.plan.nodes:
            dp = lab.dataplane(node.name, backend="ebpf", instance=f"{lab.prefix}-e{node.index}")
            made.append(dp)
            dp.start()
            dp.apply(desired_state(lab))
        yield made
    finally:
        for dp in made:
            dp.cleanup()


def test_cluster_ip_across_nodes(dataplanes: list[Any], lab: Lab) -> None:
    result = lab.probe("default/pod-1-1", "10.96.0.10", 80)
    assert result.connected and result.server_host == "default/pod-0-1"
    assert result.seen_source == lab.pods["default/pod-1-1"].ip
    assert result.reply_source == "10.96.0.10"


def test_node_port_keeps_the_client_address(dataplanes: list[Any], lab: Lab) -> None:
    node = lab.nodes["node-1"].ip  # the backend lives on node-0: tunnelled there and back
    result = lab.probe("client-0", node, 30080)
    assert result.connected and result.server_host == "default/pod-0-1"
    assert result.seen_source == lab.clients["client-0"].ip
    assert result.reply_source == node


def test_status_reports_the_backend(dataplanes: list[Any]) -> None:
    status = dataplanes[0].status()
    assert status.backend == "ebpf" and status.last_error is None
    assert status.capabilities.source_ip_preservation and status.capabilities.dsr

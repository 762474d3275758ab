"""The lab as Kubernetes objects, so tests feed the agent what a cluster would.

Nodes carry their InternalIP and podCIDR, Namespaces the
``kubernetes.io/metadata.name`` label that namespace selectors match, and Pods
their node, labels, IP, named container ports and the
``dataplane.io/interface`` annotation naming the host-side veth.
"""

from __future__ import annotations

from typing import Any

from dataplane.lab.plan import LabPlan, NodeInfo, PodInfo

INTERFACE_ANNOTATION = "dataplane.io/interface"


def _node(node: NodeInfo) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": node.name, "labels": {"kubernetes.io/hostname": node.name}},
        "spec": {"podCIDR": node.pod_cidr, "podCIDRs": [node.pod_cidr]},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": node.ip},
                {"type": "Hostname", "address": node.name},
            ]
        },
    }


def _namespace(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
    }


def _pod(pod: PodInfo, node: NodeInfo) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod.name,
            "namespace": pod.namespace,
            "labels": dict(pod.labels),
            "annotations": {INTERFACE_ANNOTATION: pod.interface},
        },
        "spec": {
            "nodeName": pod.node,
            "containers": [
                {
                    "name": "echo",
                    "image": "dataplane.lab/echo",
                    "ports": [
                        {"name": p.name, "containerPort": p.port, "protocol": p.protocol}
                        for p in pod.ports
                    ],
                }
            ],
        },
        "status": {
            "phase": "Running",
            "hostIP": node.ip,
            "podIP": pod.ip,
            "podIPs": [{"ip": pod.ip}],
        },
    }


def describe(plan: LabPlan) -> list[dict[str, Any]]:
    """Nodes, then Namespaces (sorted), then Pods in node order."""
    namespaces = sorted({pod.namespace for node in plan.nodes for pod in node.pods})
    return [
        *(_node(node) for node in plan.nodes),
        *(_namespace(name) for name in namespaces),
        *(_pod(pod, node) for node in plan.nodes for pod in node.pods),
    ]

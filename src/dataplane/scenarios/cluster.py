"""The standard cluster every scenario runs on, so kernel runs share one lab.

Two nodes with pods in three namespaces, a client on the node subnet and one
behind a router. The base objects describe that cluster to a data plane
(nodes, namespaces with Calico-style allow-all profiles, workload endpoints);
scenarios add services and policy on top.
"""

from __future__ import annotations

from dataplane.lab.plan import LabPlan, make_plan
from dataplane.lab.spec import ClientSpec, LabSpec, NodeSpec, PodSpec, PortSpec
from dataplane.model import (
    NamedPort,
    Namespace,
    Node,
    Profile,
    Rule,
    StateObject,
    WorkloadEndpoint,
)

ECHO_PORT = 8080
# Echo servers on the nodes themselves: SSH's port (a failsafe) and an ordinary one.
NODE_PORTS = (PortSpec("ssh", 22), PortSpec("http", ECHO_PORT))

STANDARD_SPEC = LabSpec(
    nodes=(
        NodeSpec(
            "n1",
            ports=NODE_PORTS,
            pods=(
                PodSpec("web-1", "default", {"app": "web"}),
                PodSpec("cli-1", "default", {"app": "cli"}),
                PodSpec("db-1", "prod", {"app": "db", "tier": "backend"}),
            ),
        ),
        NodeSpec(
            "n2",
            ports=NODE_PORTS,
            pods=(
                PodSpec("web-2", "default", {"app": "web"}),
                PodSpec("cli-2", "prod", {"app": "cli", "env": "prod"}),
                PodSpec("web-3", "dev", {"app": "web", "env": "dev"}),
            ),
        ),
    ),
    clients=(ClientSpec("ext"), ClientSpec("far", behind_router=True)),
)

NAMESPACE_LABELS = {
    "default": {"team": "core"},
    "prod": {"team": "core", "env": "prod"},
    "dev": {"env": "dev"},
}

ALLOW_ALL_RULES = (Rule("Allow"),)


def reference_plan(spec: LabSpec = STANDARD_SPEC) -> LabPlan:
    """Addresses and names as a lab would build them (pure; no namespaces made)."""
    return make_plan(spec, "ref")


def cluster_facts(plan: LabPlan) -> dict[str, str]:
    """Host key → address: ``n1``, ``ext``, ``default/web-1``, … for scenario objects."""
    return {h.key: h.ip for h in plan.hosts()}


def base_objects(plan: LabPlan) -> list[StateObject]:
    """The cluster as desired-state objects, identical on every node."""
    objs: list[StateObject] = []
    for node in plan.nodes:
        objs.append(Node(node.name, [node.ip], [node.pod_cidr]))
        for pod in node.pods:
            objs.append(
                WorkloadEndpoint(
                    namespace=pod.namespace,
                    name=pod.name,
                    node=node.name,
                    interface=pod.interface,
                    addresses=[pod.ip],
                    labels=dict(pod.labels),
                    named_ports=[NamedPort(p.name, p.port, p.protocol) for p in pod.ports],
                    profiles=[f"kns.{pod.namespace}"],
                )
            )
    namespaces = {p.namespace for n in plan.nodes for p in n.pods}
    for ns in sorted(namespaces):
        objs.append(Namespace(ns, NAMESPACE_LABELS.get(ns, {})))
        objs.append(Profile(f"kns.{ns}", ingress=ALLOW_ALL_RULES, egress=ALLOW_ALL_RULES))
    return objs


__all__ = [
    "ECHO_PORT",
    "NODE_PORTS",
    "STANDARD_SPEC",
    "base_objects",
    "cluster_facts",
    "reference_plan",
]

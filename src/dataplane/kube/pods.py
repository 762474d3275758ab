"""v1 Pod → :class:`~dataplane.model.WorkloadEndpoint`, with Calico's implicit labels.

Every running pod with an address becomes an endpoint, whatever its node:
pods elsewhere are what rule selectors resolve to, and the calc decides
which endpoints are local. Pods that cannot carry traffic (not scheduled, no
address yet, finished, or on the host's network) are skipped with a reason.

Labels gain Calico's ``projectcalico.org/namespace``, ``/orchestrator`` and
``/serviceaccount`` labels, because converted NetworkPolicy selectors test
them; profiles are Calico's ``kns.<namespace>`` and ``ksa.<ns>.<sa>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dataplane.kube._fields import Doc, FieldMap, Skip
from dataplane.kube.cluster import namespace_profile
from dataplane.kube.services import SERVICE_PROTOCOLS
from dataplane.model import NamedPort, WorkloadEndpoint
from dataplane.model.naming import workload_interface_name
from dataplane.selector import NAMESPACE_LABEL

INTERFACE_ANNOTATION = "dataplane.io/interface"
ORCHESTRATOR_LABEL = "projectcalico.org/orchestrator"
ORCHESTRATOR = "k8s"
SERVICE_ACCOUNT_LABEL = "projectcalico.org/serviceaccount"
_FINISHED = ("Succeeded", "Failed")


def service_account_profile(namespace: str, account: str) -> str:
    return f"ksa.{namespace}.{account}"


def convert_pod(raw: Mapping[str, Any]) -> Sequence[WorkloadEndpoint] | Skip:
    doc = Doc(raw, namespaced=True)
    spec, status = doc.root["spec"], doc.root["status"]
    node = spec["nodeName"].text()
    phase = status["phase"].text()
    host_network = spec["hostNetwork"].flag()
    addresses = (
        [ip for ip in (v["ip"].ip() for v in status["podIPs"].items()) if ip is not None]
        if status["podIPs"].present
        else [ip for ip in [status["podIP"].ip()] if ip is not None]
    )
    account = spec["serviceAccountName"].text()
    named_ports: list[NamedPort] = []
    origins: dict[str, str] = {}
    for container in spec["containers"].items():
        for port in container["ports"].items():
            if port["name"].present:
                model_path, path = f"named_ports[{len(named_ports)}]", port.path
                origins |= {model_path: path, f"{model_path}.port": f"{path}.containerPort"}
                named_ports.append(
                    NamedPort(
                        name=port["name"].text() or "",
                        port=port["containerPort"].port(required=True) or 0,
                        protocol=port["protocol"].choice(SERVICE_PROTOCOLS, "TCP"),
                    )
                )
    doc.check()
    skip = _skip_reason(node, phase, host_network, bool(addresses))
    if skip:
        return Skip(skip)
    labels = {**doc.labels, NAMESPACE_LABEL: doc.namespace, ORCHESTRATOR_LABEL: ORCHESTRATOR}
    profiles = [namespace_profile(doc.namespace)]
    if account:
        labels[SERVICE_ACCOUNT_LABEL] = account
        profiles.append(service_account_profile(doc.namespace, account))
    fields = FieldMap(
        {
            "name": "metadata.name",
            "namespace": "metadata.namespace",
            "labels": "metadata.labels",
            "node": "spec.nodeName",
            "interface": f"metadata.annotations[{INTERFACE_ANNOTATION!r}]",
            "addresses": "status.podIPs" if status["podIPs"].present else "status.podIP",
            **origins,
        }
    )
    endpoint = doc.build(
        fields,
        lambda: WorkloadEndpoint(
            namespace=doc.namespace,
            name=doc.name,
            node=node or "",
            interface=doc.annotations.get(INTERFACE_ANNOTATION)
            or workload_interface_name(doc.namespace, doc.name),
            addresses=addresses,
            labels=labels,
            named_ports=named_ports,
            profiles=profiles,
            service_account=account,
        ),
    )
    return (doc.finish(endpoint),)


def _skip_reason(
    node: str | None, phase: str | None, host_network: bool, has_address: bool
) -> str | None:
    if host_network:
        return "uses the host's network: its traffic is the node's, not a workload's"
    if phase in _FINISHED:
        return f"phase {phase}: it no longer sends or receives traffic"
    if not node:
        return "not scheduled to a node yet"
    if not has_address:
        return "no pod IP yet"
    return None

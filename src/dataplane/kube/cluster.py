"""v1 Namespace and Node → :class:`~dataplane.model.Namespace`, Profile and Node.

A namespace becomes two objects, as in Calico: the :class:`Namespace` whose
labels namespace selectors match, and the ``kns.<name>`` profile every pod of
the namespace carries. That profile allows everything in both directions,
which is what makes a pod that no policy selects reachable (Kubernetes'
default) while policies still decide first for pods they select.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dataplane.kube._fields import Doc, FieldMap
from dataplane.model import Action, Namespace, Node, Profile, Rule

NAME_LABELS = ("kubernetes.io/metadata.name", "projectcalico.org/name")
"""Labels naming the namespace itself, so selectors can pick a namespace by name.

The API server sets the first on every namespace (manifests written by hand
lack it); Calico matches the second.
"""

_ADDRESS_TYPES = ("InternalIP", "ExternalIP")


def namespace_profile(namespace: str) -> str:
    return f"kns.{namespace}"


def convert_namespace(raw: Mapping[str, Any]) -> Sequence[Namespace | Profile]:
    doc = Doc(raw, namespaced=False)
    fields = FieldMap({"name": "metadata.name", "labels": "metadata.labels"})
    labels = {**doc.labels, **dict.fromkeys(NAME_LABELS, doc.name)}
    namespace = doc.build(fields, lambda: Namespace(name=doc.name, labels=labels))
    profile = doc.build(
        fields,
        lambda: Profile(
            name=namespace_profile(doc.name),
            ingress=[Rule(Action.ALLOW)],
            egress=[Rule(Action.ALLOW)],
        ),
    )
    return doc.finish(namespace), doc.finish(profile)


def convert_node(raw: Mapping[str, Any]) -> Sequence[Node]:
    doc = Doc(raw, namespaced=False)
    spec = doc.root["spec"]
    addresses = [
        a["address"].ip()
        for a in doc.root["status"]["addresses"].items()
        if a["type"].text() in _ADDRESS_TYPES  # Hostname and InternalDNS entries are names
    ]
    pod_cidrs = (
        spec["podCIDRs"].cidrs()
        if spec["podCIDRs"].present
        else [c for c in [spec["podCIDR"].cidr()] if c is not None]
    )
    fields = FieldMap(
        {
            "name": "metadata.name",
            "labels": "metadata.labels",
            "addresses": "status.addresses",
            "pod_cidrs": "spec.podCIDRs",
        }
    )
    node = doc.build(
        fields,
        lambda: Node(
            name=doc.name,
            addresses=[a for a in addresses if a is not None],
            pod_cidrs=pod_cidrs,
            labels=doc.labels,
        ),
    )
    return (doc.finish(node),)

"""dataplane.io/v1alpha1 DataplaneConfiguration → :class:`~dataplane.model.NodeSettings`.

Named like Felix's configuration: ``default`` applies to every node and
``node.<name>`` to one node, its fields overriding the default's one by one.
A node therefore gets exactly one NodeSettings, merged from at most two
documents; each document is validated on its own first, so errors name the
document that holds the mistake. Fields not given keep the model's (Felix's)
defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from dataplane.kube._fields import Doc, Skip, Value, spec_fields
from dataplane.model import NodeSettings, ProtoPort

GLOBAL_NAME = "default"
NODE_PREFIX = "node."

# API field → NodeSettings field.
_SPEC = {
    "failsafeInboundHostPorts": "failsafe_inbound",
    "failsafeOutboundHostPorts": "failsafe_outbound",
    "externalServiceMode": "external_service_mode",
    "defaultEndpointToHostAction": "endpoint_to_host_action",
    "hostInterfacePattern": "host_interface_pattern",
    "workloadInterfacePrefix": "workload_interface_prefix",
    "clusterCIDRs": "cluster_cidrs",
    "masqueradeAll": "masquerade_all",
}
_FIELDS = spec_fields((), **{model: f"spec.{api}" for api, model in _SPEC.items()})


@attrs.frozen
class Configuration:
    """One validated document: its name and the NodeSettings fields it sets."""

    name: str
    settings: Mapping[str, Any]


def read_configuration(raw: Mapping[str, Any]) -> Configuration | Skip:
    doc = Doc(raw, namespaced=False)
    spec = doc.root["spec"]
    spec.only_keys(tuple(_SPEC))  # our own kind: a typo must not pass as a default
    settings = {_SPEC[key]: _read(key, spec[key]) for key in spec.names() if key in _SPEC}
    doc.build(_FIELDS, lambda: NodeSettings(**settings))
    doc.check()
    if doc.name != GLOBAL_NAME and not doc.name.startswith(NODE_PREFIX):
        return Skip(f"only {GLOBAL_NAME!r} and '{NODE_PREFIX}<node>' configurations apply")
    return Configuration(doc.name, settings)


def _read(key: str, value: Value) -> Any:
    if key.startswith("failsafe"):
        if value.raw == "none":
            return ()
        entries = value.items()
        for entry in entries:
            entry.only_keys(("protocol", "port", "net"))
        return [
            ProtoPort(
                protocol=v["protocol"].text() or "TCP",  # Felix writes "tcp"
                port=v["port"].port(required=True) or 0,
                net=v["net"].cidr(),
            )
            for v in entries
        ]
    if key == "clusterCIDRs":
        return value.cidrs()
    if key == "masqueradeAll":
        return value.flag()
    return value.required_text()


def node_settings(
    configurations: Iterable[Configuration], node_name: str | None
) -> tuple[NodeSettings | None, list[tuple[Configuration, str]]]:
    """The settings for ``node_name``, and the configurations that do not apply to it."""
    merged: dict[str, Any] = {}
    node_specific: Mapping[str, Any] = {}
    found = False
    others: list[tuple[Configuration, str]] = []
    for config in configurations:
        if config.name == GLOBAL_NAME:
            merged.update(config.settings)
            found = True
        elif node_name is not None and config.name == NODE_PREFIX + node_name:
            node_specific = config.settings
            found = True
        else:
            others.append((config, "for another node" if node_name else "no node_name given"))
    return (NodeSettings(**{**merged, **node_specific}) if found else None), others

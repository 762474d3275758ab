"""v1 Service → :class:`~dataplane.model.Service`.

Only what the packet path needs is read; the meaning (which frontends exist,
masquerade, fallbacks) is the calc's. Cross-field rules (node ports only on
NodePort/LoadBalancer services, duplicate ports, Local traffic policy) are
the model's: its problems come back under the manifest's field paths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dataplane.kube._fields import Doc, Skip, Value, spec_fields
from dataplane.model import IPAddress, Service, ServicePort
from dataplane.model.service import DEFAULT_AFFINITY_TIMEOUT

SERVICE_PROTOCOLS = ("TCP", "UDP", "SCTP")
_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
_POLICIES = ("Cluster", "Local")
_HEADLESS = "None"

_FIELDS = spec_fields(
    (
        "ports",
        "type",
        "external_ips",
        "load_balancer_source_ranges",
        "external_traffic_policy",
        "internal_traffic_policy",
        "session_affinity",
        "health_check_node_port",
    ),
    cluster_ips="spec.clusterIPs",
    external_ips="spec.externalIPs",
    load_balancer_ips="status.loadBalancer.ingress",
    affinity_timeout="spec.sessionAffinityConfig.clientIP.timeoutSeconds",
)


def convert_service(raw: Mapping[str, Any]) -> Sequence[Service] | Skip:
    doc = Doc(raw, namespaced=True)
    spec = doc.root["spec"]
    type_ = spec["type"].choice(_TYPES, "ClusterIP")
    if type_ == "ExternalName":
        doc.check()
        return Skip("ExternalName services are DNS aliases; nothing to program")
    cluster_ips = _cluster_ips(spec)
    ports = [_port(p) for p in spec["ports"].items()]
    if cluster_ips is None and not ports:
        doc.check()
        return Skip("headless service without ports")
    lb_ips = (
        [
            ip
            for ip in (i["ip"].ip() for i in doc.root["status"]["loadBalancer"]["ingress"].items())
            if ip is not None
        ]
        if type_ == "LoadBalancer"
        else []  # status left over from an old type is not the spec
    )
    affinity_timeout = spec["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"].integer()
    service = doc.build(
        _FIELDS,
        lambda: Service(
            namespace=doc.namespace,
            name=doc.name,
            ports=ports,
            type=type_,
            cluster_ips=cluster_ips or (),
            external_ips=spec["externalIPs"].ips(),
            load_balancer_ips=lb_ips,
            load_balancer_source_ranges=spec["loadBalancerSourceRanges"].cidrs(),
            external_traffic_policy=spec["externalTrafficPolicy"].choice(_POLICIES, "Cluster"),
            internal_traffic_policy=spec["internalTrafficPolicy"].choice(_POLICIES, "Cluster"),
            session_affinity=spec["sessionAffinity"].choice(("None", "ClientIP"), "None"),
            affinity_timeout=DEFAULT_AFFINITY_TIMEOUT
            if affinity_timeout is None
            else affinity_timeout,
            health_check_node_port=spec["healthCheckNodePort"].port(),
        ),
    )
    return (doc.finish(service),)


def _cluster_ips(spec: Value) -> list[IPAddress] | None:
    """``clusterIPs`` (or the older ``clusterIP``); ``None`` for a headless service.

    An empty string means "not allocated yet": the service exists but has no
    cluster frontend until the API server assigns one.
    """
    if spec["clusterIPs"].present:
        values = spec["clusterIPs"].items()
    else:
        values = [spec["clusterIP"]] if spec["clusterIP"].present else []
    if any(v.raw == _HEADLESS for v in values):
        return None
    return [ip for ip in (v.ip() for v in values if v.raw != "") if ip is not None]


def _port(value: Value) -> ServicePort:
    target = value["targetPort"]
    target_port: int | str | None = None
    if isinstance(target.raw, str):
        target_port = target.raw
    elif target.present:
        target_port = target.port()
    return ServicePort(
        port=value["port"].port(required=True) or 0,
        protocol=value["protocol"].choice(SERVICE_PROTOCOLS, "TCP"),
        name=value["name"].text() or "",
        target_port=target_port,
        node_port=value["nodePort"].port(),
    )

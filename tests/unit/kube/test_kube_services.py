"""Service and EndpointSlice conversion: every field the packet path needs."""

from __future__ import annotations

import ipaddress

from dataplane import kube
from dataplane.model import (
    Endpoint,
    EndpointPort,
    EndpointSet,
    Protocol,
    Service,
    ServicePort,
    ServiceType,
    SessionAffinity,
    TrafficPolicy,
)

ip = ipaddress.ip_address


def convert(text: str) -> kube.ConversionResult:
    return kube.convert(kube.load_manifests(text))


LOAD_BALANCER = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10, "fd00::10"]
  ports:
  - {name: http, port: 80, targetPort: http, nodePort: 30080}
  - {name: dns, port: 53, protocol: UDP, targetPort: 5353, nodePort: 30053}
  externalIPs: [192.168.99.1]
  loadBalancerSourceRanges: [203.0.113.0/25]
  externalTrafficPolicy: Local
  internalTrafficPolicy: Local
  healthCheckNodePort: 31000
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}
status:
  loadBalancer:
    ingress: [{ip: 1.2.3.4}, {hostname: lb.example.com}]
"""


def test_load_balancer_service_keeps_every_field() -> None:
    (svc,) = convert(LOAD_BALANCER).objects
    assert svc == Service(
        namespace="shop",
        name="web",
        type=ServiceType.LOAD_BALANCER,
        ports=(
            ServicePort(80, Protocol.TCP, "http", target_port="http", node_port=30080),
            ServicePort(53, Protocol.UDP, "dns", target_port=5353, node_port=30053),
        ),
        cluster_ips=(ip("10.96.0.10"), ip("fd00::10")),
        external_ips=(ip("192.168.99.1"),),
        load_balancer_ips=(ip("1.2.3.4"),),
        load_balancer_source_ranges=(ipaddress.ip_network("203.0.113.0/25"),),
        external_traffic_policy=TrafficPolicy.LOCAL,
        internal_traffic_policy=TrafficPolicy.LOCAL,
        session_affinity=SessionAffinity.CLIENT_IP,
        affinity_timeout=600,
        health_check_node_port=31000,
    )


def test_cluster_ip_defaults() -> None:
    (svc,) = convert("""
kind: Service
apiVersion: v1
metadata: {name: api}
spec: {clusterIP: 10.96.0.1, ports: [{port: 443}]}
""").objects
    assert isinstance(svc, Service)
    assert svc.namespace == "default"  # as kubectl assumes
    assert svc.type is ServiceType.CLUSTER_IP
    assert svc.ports == (ServicePort(443),)
    assert svc.ports[0].effective_target == 443
    assert svc.session_affinity is SessionAffinity.NONE


def test_headless_service_has_no_cluster_ips() -> None:
    (svc,) = convert("""
kind: Service
apiVersion: v1
metadata: {name: db, namespace: x}
spec: {clusterIP: None, clusterIPs: [None], ports: [{port: 5432}]}
""").objects
    assert isinstance(svc, Service)
    assert svc.cluster_ips == ()


def test_headless_without_ports_and_external_name_are_skipped() -> None:
    result = convert("""
kind: Service
apiVersion: v1
metadata: {name: db, namespace: x}
spec: {clusterIP: None}
---
kind: Service
apiVersion: v1
metadata: {name: ext, namespace: x}
spec: {type: ExternalName, externalName: example.com}
""")
    assert result.objects == ()
    assert [(s.kind, s.name) for s in result.skipped] == [("Service", "x/db"), ("Service", "x/ext")]
    assert all(s.reason for s in result.skipped)


def test_stale_load_balancer_status_is_ignored_on_other_types() -> None:
    (svc,) = convert("""
kind: Service
apiVersion: v1
metadata: {name: was-lb, namespace: x}
spec: {clusterIP: 10.96.0.3, ports: [{port: 80}]}
status: {loadBalancer: {ingress: [{ip: 1.2.3.4}]}}
""").objects
    assert isinstance(svc, Service)
    assert svc.load_balancer_ips == ()


SLICES = """
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-a, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- addresses: [10.0.0.5]
  nodeName: node-a
  conditions: {}
- addresses: [10.0.0.6]
  nodeName: node-b
  conditions: {ready: false, serving: true, terminating: true}
- addresses: [10.0.0.7]
  conditions: {ready: false}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-b, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: metrics, port: 9090, protocol: TCP}]
endpoints:
- addresses: [10.0.0.8]
  nodeName: node-a
- addresses: [10.0.0.5]  # also in web-a, as while an endpoint moves between slices
"""


def test_slices_of_one_service_merge() -> None:
    (merged,) = convert(SLICES).objects
    assert merged == EndpointSet(
        namespace="shop",
        name="web",
        ports=(EndpointPort(8080, name="http"), EndpointPort(9090, name="metrics")),
        endpoints=(
            Endpoint((ip("10.0.0.5"),), node="node-a"),
            # ready nil → true, but never for a terminating endpoint
            Endpoint((ip("10.0.0.6"),), node="node-b", ready=False, serving=True, terminating=True),
            Endpoint((ip("10.0.0.7"),), ready=False),
            Endpoint((ip("10.0.0.8"),), node="node-a"),
        ),
    )


def test_terminating_endpoint_without_ready_is_not_ready() -> None:
    (merged,) = convert("""
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: s, namespace: n, labels: {kubernetes.io/service-name: svc}}
addressType: IPv4
ports: [{port: 80}]
endpoints: [{addresses: [10.0.0.1], conditions: {terminating: true, serving: true}}]
""").objects
    assert isinstance(merged, EndpointSet)
    assert merged.endpoints[0].ready is False
    assert merged.endpoints[0].is_serving


def test_slice_clashing_on_a_port_number_is_skipped_not_merged() -> None:
    result = convert(
        SLICES.replace(
            "[{name: http, port: 8080}, {name: metrics", "[{name: http, port: 8081}, {name: metrics"
        )
    )
    (merged,) = result.objects
    assert isinstance(merged, EndpointSet)
    assert merged.ports == (EndpointPort(8080, name="http"),)
    (skipped,) = result.skipped
    assert (skipped.kind, skipped.name) == ("EndpointSlice", "shop/web-b")
    assert "'http'" in skipped.reason and "8081" in skipped.reason


def test_slices_without_service_or_with_fqdn_are_skipped() -> None:
    result = convert("""
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: custom, namespace: n}
addressType: IPv4
endpoints: []
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: names, namespace: n, labels: {kubernetes.io/service-name: svc}}
addressType: FQDN
endpoints: [{addresses: [example.com]}]
""")
    assert result.objects == ()
    assert [s.name for s in result.skipped] == ["n/custom", "n/names"]


def test_ipv6_slice_without_endpoints_gives_an_empty_set() -> None:
    (merged,) = convert("""
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: s, namespace: n, labels: {kubernetes.io/service-name: svc}}
addressType: IPv6
ports: [{port: 80, protocol: SCTP}, {name: any}]
endpoints: null
""").objects
    assert merged == EndpointSet(
        namespace="n", name="svc", ports=(EndpointPort(80, Protocol.SCTP),)
    )

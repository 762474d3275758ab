"""Service scenarios: kube-proxy semantics, checked against every backend.

Backends that preserve the client's source (eBPF) override the expected
source where kube-proxy would masquerade; everything else is common.
"""

from __future__ import annotations

from dataplane.model import NodeSettings
from dataplane.scenarios.types import REFUSED, TIMEOUT, Probe, Scenario, connected

from .build import service, unless

V = "10.96.0."  # service VIPs
EXT = "10.96.200."  # external IPs and LB IPs routed to a node
PRESERVE = "source_ip_preservation"
WEB = ("default/web-1", "default/web-2")
# Backends that cannot reject (HNS: no endpoints, no load balancer) let the connection time out.
NO_REJECT = {"!reject": TIMEOUT}
# Backends without SCTP services (HNS load balancers carry TCP and UDP only) program nothing.
NO_SCTP = {"!sctp": TIMEOUT}


def _cluster_ip(
    name: str, probes: tuple[Probe, ...], pods: tuple[object, ...], **kw: object
) -> Scenario:
    return Scenario(name, lambda f: service(f, "svc", V + "10", pods, **kw), probes)  # type: ignore[arg-type]


def _np(name: str, probes: tuple[Probe, ...], pods: tuple[object, ...], **kw: object) -> Scenario:
    return Scenario(
        name,
        lambda f: service(f, "np", V + "20", pods, type="NodePort", node_ports=[30080], **kw),  # type: ignore[arg-type]
        probes,
    )


def _ext(ip: str, port: int = 80, src: str = "ext", via: str = "n1", **kw: object) -> Probe:
    return Probe(src, ip, port, via=via, **kw)  # type: ignore[arg-type]


SERVICE_SCENARIOS: list[Scenario] = [
    # --- ClusterIP basics
    _cluster_ip(
        "clusterip-same-node",
        (Probe("default/cli-1", V + "10", 80, connected("default/web-1", source="client")),),
        ("default/web-1",),
    ),
    _cluster_ip(
        "clusterip-cross-node",
        (Probe("default/cli-1", V + "10", 80, connected("default/web-2", source="client")),),
        ("default/web-2",),
    ),
    _cluster_ip(
        "clusterip-two-backends", (Probe("default/cli-1", V + "10", 80, connected(*WEB)),), WEB
    ),
    _cluster_ip(
        "clusterip-from-other-namespace",
        (Probe("prod/cli-2", V + "10", 80, connected(*WEB, source="client")),),
        WEB,
    ),
    _cluster_ip(
        "clusterip-from-node-process",
        # The client is the node itself, so which source the pod sees says nothing.
        (Probe("n1", V + "10", 80, connected(*WEB)),),
        WEB,
    ),
    _cluster_ip(
        "clusterip-from-external-client",
        (
            Probe(
                "ext",
                V + "10",
                80,
                connected(*WEB, source="node"),
                via="n1",
                overrides={PRESERVE: connected(*WEB, source="client")},
            ),
        ),
        WEB,
    ),
    _cluster_ip(
        "clusterip-no-endpoints",
        (Probe("default/cli-1", V + "10", 80, REFUSED, overrides=NO_REJECT),),
        (),
    ),
    _cluster_ip(
        "clusterip-no-endpoints-udp",
        (Probe("default/cli-1", V + "10", 53, REFUSED, "udp", overrides=NO_REJECT),),
        (),
        ports=[("dns", 53, "UDP")],
    ),
    _cluster_ip(
        "clusterip-udp",
        (Probe("default/cli-1", V + "10", 53, connected(*WEB), "udp"),),
        WEB,
        ports=[("dns", 53, "UDP")],
    ),
    _cluster_ip(
        "clusterip-sctp",
        (Probe("default/cli-1", V + "10", 90, connected(*WEB), "sctp", overrides=NO_SCTP),),
        WEB,
        ports=[("s", 90, "SCTP")],
    ),
    _cluster_ip(
        "clusterip-multi-protocol-ports",
        (
            Probe("default/cli-1", V + "10", 80, connected(*WEB)),
            Probe("default/cli-1", V + "10", 53, connected(*WEB), "udp"),
        ),
        WEB,
        ports=[("http", 80, "TCP"), ("dns", 53, "UDP")],
    ),
    _cluster_ip(
        "clusterip-named-target-port",
        (Probe("default/cli-1", V + "10", 80, connected("default/web-1")),),
        ("default/web-1",),
        target="tcp-echo",
    ),
    _cluster_ip(
        "clusterip-hairpin",
        # Hairpin must be SNATed somewhere; kube-proxy uses the node, eBPF the VIP.
        (
            Probe(
                "default/web-1",
                V + "10",
                80,
                connected("default/web-1", source="node"),
                overrides={PRESERVE: connected("default/web-1")},
            ),
        ),
        ("default/web-1",),
    ),
    _cluster_ip(
        "clusterip-not-ready-excluded",
        (Probe("default/cli-1", V + "10", 80, connected("default/web-1")),),
        ("default/web-1", ("default/web-2", "not-ready")),
    ),
    _cluster_ip(
        "clusterip-terminating-fallback",
        (Probe("default/cli-1", V + "10", 80, connected("default/web-2")),),
        (("default/web-2", "serving-terminating"),),
    ),
    _cluster_ip(
        "clusterip-terminating-not-serving",
        (Probe("default/cli-1", V + "10", 80, REFUSED, overrides=NO_REJECT),),
        (("default/web-2", "terminating"),),
    ),
    _cluster_ip(
        "clusterip-ready-beats-terminating",
        (Probe("default/cli-1", V + "10", 80, connected("default/web-1")),),
        ("default/web-1", ("default/web-2", "serving-terminating")),
    ),
    _cluster_ip(
        "clusterip-affinity",
        (Probe("default/cli-1", V + "10", 80, connected(*WEB)),),
        WEB,
        session_affinity="ClientIP",
        affinity_timeout=60,
    ),
    _cluster_ip(
        "itp-local-uses-local-endpoint",
        (Probe("default/cli-1", V + "10", 80, connected("default/web-1")),),
        WEB,
        internal_traffic_policy="Local",
    ),
    _cluster_ip(
        "itp-local-no-local-endpoint-drops",
        (Probe("default/cli-1", V + "10", 80, TIMEOUT),),
        ("default/web-2",),
        internal_traffic_policy="Local",
    ),
    _cluster_ip(
        "itp-local-no-endpoints-rejects",
        (Probe("default/cli-1", V + "10", 80, REFUSED, overrides=NO_REJECT),),
        (),
        internal_traffic_policy="Local",
    ),
    Scenario(
        "masquerade-all",
        lambda f: [*service(f, "svc", V + "10", WEB), NodeSettings(masquerade_all=True)],
        (Probe("default/cli-1", V + "10", 80, connected(*WEB, source="node")),),
        requires=("masquerade",),
    ),
    # --- NodePort
    _np(
        "nodeport-cluster-from-external",
        (
            Probe(
                "ext",
                "n1",
                30080,
                connected(*WEB, source="node"),
                overrides={PRESERVE: connected(*WEB, source="client")},
            ),
        ),
        WEB,
    ),
    _np(
        "nodeport-cluster-remote-endpoint",
        (
            Probe(
                "ext",
                "n1",
                30080,
                connected("default/web-2", source="node"),
                overrides={PRESERVE: connected("default/web-2", source="client")},
            ),
        ),
        ("default/web-2",),
    ),
    _np("nodeport-on-second-node", (Probe("ext", "n2", 30080, connected(*WEB)),), WEB),
    _np("nodeport-from-router-client", (Probe("far", "n1", 30080, connected(*WEB)),), WEB),
    _np("nodeport-no-endpoints", (Probe("ext", "n1", 30080, REFUSED, overrides=NO_REJECT),), ()),
    _np(
        "nodeport-udp",
        (Probe("ext", "n1", 30080, connected(*WEB), "udp"),),
        WEB,
        ports=[("dns", 53, "UDP")],
    ),
    _np(
        "nodeport-sctp",
        (Probe("ext", "n1", 30080, connected(*WEB), "sctp", overrides=NO_SCTP),),
        WEB,
        ports=[("s", 90, "SCTP")],
    ),
    _np("nodeport-from-pod", (Probe("default/cli-1", "n2", 30080, connected(*WEB)),), WEB),
    _np(
        "etp-local-keeps-source",
        (Probe("ext", "n1", 30080, connected("default/web-1", source="client")),),
        WEB,
        external_traffic_policy="Local",
    ),
    _np(
        "etp-local-router-client-keeps-source",
        (Probe("far", "n2", 30080, connected("default/web-2", source="client")),),
        WEB,
        external_traffic_policy="Local",
    ),
    _np(
        "etp-local-no-local-endpoint-drops",
        (Probe("ext", "n1", 30080, TIMEOUT),),
        ("default/web-2",),
        external_traffic_policy="Local",
    ),
    _np(
        "etp-local-pod-short-circuit",
        (
            unless(
                "per_source_routes",
                Probe("default/cli-1", "n1", 30080, connected("default/web-2", source="client")),
            ),
        ),
        ("default/web-2",),
        external_traffic_policy="Local",
    ),
    Scenario(
        "etp-local-node-process-uses-any-endpoint",
        lambda f: service(
            f,
            "np",
            V + "20",
            ("default/web-2",),
            type="NodePort",
            node_ports=[30080],
            external_traffic_policy="Local",
        ),
        (unless("per_source_routes", Probe("n1", "n1", 30080, connected("default/web-2"))),),
        requires=("node_local_nodeport",),
    ),
    _np(
        "etp-local-health-check-port",
        (Probe("ext", "n1", 30080, connected("default/web-1")),),
        ("default/web-1",),
        external_traffic_policy="Local",
        health_check_node_port=32000,
    ),
    # --- external IPs and load balancers
    Scenario(
        "external-ip-cluster",
        lambda f: service(f, "x", V + "30", WEB, external_ips=[EXT + "1"]),
        (
            _ext(
                EXT + "1",
                expect=connected(*WEB, source="node"),
                overrides={PRESERVE: connected(*WEB, source="client")},
            ),
        ),
    ),
    Scenario(
        "external-ip-local",
        lambda f: service(
            f,
            "x",
            V + "30",
            WEB,
            type="NodePort",
            external_ips=[EXT + "1"],
            external_traffic_policy="Local",
        ),
        (_ext(EXT + "1", expect=connected("default/web-1", source="client")),),
    ),
    Scenario(
        "load-balancer-ip",
        lambda f: service(
            f,
            "lb",
            V + "40",
            WEB,
            type="LoadBalancer",
            node_ports=[30090],
            load_balancer_ips=[EXT + "2"],
        ),
        (_ext(EXT + "2", expect=connected(*WEB)), Probe("ext", "n1", 30090, connected(*WEB))),
    ),
    Scenario(
        "load-balancer-source-ranges",
        lambda f: service(
            f,
            "lb",
            V + "40",
            WEB,
            type="LoadBalancer",
            node_ports=[30090],
            load_balancer_ips=[EXT + "2"],
            load_balancer_source_ranges=["10.98.0.0/24"],
        ),
        (
            _ext(EXT + "2", src="far", expect=connected(*WEB)),
            # Backends that cannot filter by source (HNS) let every client in.
            _ext(
                EXT + "2",
                src="ext",
                expect=TIMEOUT,
                overrides={"!source_ranges": connected(*WEB)},
            ),
            # NodePorts are not subject to source ranges (kube-proxy).
            Probe("ext", "n1", 30090, connected(*WEB)),
        ),
    ),
    Scenario(
        "load-balancer-local-keeps-source",
        lambda f: service(
            f,
            "lb",
            V + "40",
            WEB,
            type="LoadBalancer",
            node_ports=[30090],
            load_balancer_ips=[EXT + "3"],
            external_traffic_policy="Local",
        ),
        (_ext(EXT + "3", via="n2", expect=connected("default/web-2", source="client")),),
    ),
    Scenario(
        "two-services-one-backend",
        lambda f: [
            *service(f, "a", V + "50", ("default/web-1",)),
            *service(f, "b", V + "51", ("default/web-1",), ports=[("", 81, "TCP")]),
        ],
        (
            Probe("default/cli-1", V + "50", 80, connected("default/web-1")),
            Probe("default/cli-1", V + "51", 81, connected("default/web-1")),
        ),
    ),
]

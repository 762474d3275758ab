"""Policy scenarios: Kubernetes NetworkPolicy as Calico models it, tiers, Pass,
named ports, host endpoints, failsafes — checked against every backend."""

from __future__ import annotations

from collections.abc import Sequence

from dataplane.model import (
    EndpointToHostAction,
    EntityMatch,
    HostEndpoint,
    NodeSettings,
    Policy,
    Rule,
    StateObject,
    Tier,
)
from dataplane.scenarios.types import TIMEOUT, Probe, Scenario, connected

from .build import service, unless

NEG = "negated_matches"  # HNS drops Allow rules it cannot express (fails closed)
W1, W2, W3 = "default/web-1", "default/web-2", "dev/web-3"
C1, C2, DB = "default/cli-1", "prod/cli-2", "prod/db-1"
P = 8080


def ok(dst: str) -> Probe:
    return Probe(C1, dst, P, connected(dst))


def allow(**src: object) -> Rule:
    return Rule("Allow", source=EntityMatch(**src))  # type: ignore[arg-type]


def deny_web(name: str = "deny-web") -> Policy:
    """Kubernetes-style default deny for app=web in default: selected, no ingress rules."""
    return Policy(name, "default", selector='app == "web"', types=["Ingress"])


def sc(
    name: str,
    objs: Sequence[StateObject] | None,
    probes: Sequence[Probe],
    make: object = None,
    requires: tuple[str, ...] = (),
) -> Scenario:
    fn = make if make is not None else (lambda f: list(objs or ()))
    return Scenario(name, fn, tuple(probes), requires)  # type: ignore[arg-type]


# Host endpoint policy needs a host firewall (HNS has none: it is not enforced there).
HEP = ("host_endpoints",)


def hep(node: str = "n1", interface: str = "*", **kw: object) -> HostEndpoint:
    return HostEndpoint(f"{node}-{'all' if interface == '*' else interface}", node, interface, **kw)  # type: ignore[arg-type]


def ext_to_pod(pod: str, expect_ok: bool, src: str = "ext", proto: str = "tcp") -> Probe:
    return Probe(
        src,
        pod,
        P,
        connected(pod) if expect_ok else TIMEOUT,
        proto,
        via="n1" if pod in (W1, C1, DB) else "n2",
    )


def host_deny_port(port: int | None, apply_on_forward: bool = False) -> list[StateObject]:
    """n1's host endpoint and a normal policy denying TCP to ``port`` (None: any)."""
    dst = EntityMatch(ports=[port]) if port is not None else EntityMatch()
    return [
        hep(labels={"role": "node"}),
        Policy(
            "host-deny",
            None,
            selector='role == "node"',
            apply_on_forward=apply_on_forward,
            ingress=[Rule("Deny", "TCP", destination=dst)],
        ),
    ]


def early_allow(f: dict[str, str], port: int = P, **flags: bool) -> Policy:
    """A preDNAT or doNotTrack policy explicitly allowing TCP ``port`` from ``ext`` only
    (doNotTrack: and its replies, which no conntrack entry lets out)."""
    ext = EntityMatch(nets=[f"{f['ext']}/32"])
    reply = Rule("Allow", "TCP", source=EntityMatch(ports=[port]), destination=ext)
    return Policy(
        "early-allow",
        None,
        selector='role == "node"',
        apply_on_forward=True,
        ingress=[Rule("Allow", "TCP", source=ext, destination=EntityMatch(ports=[port]))],
        egress=[reply] if flags.get("do_not_track") else [],
        **flags,  # type: ignore[arg-type]
    )


POLICY_SCENARIOS: list[Scenario] = [
    sc("no-policy-allows", [], [ok(W1), ok(W2), ok(W3)]),
    sc(
        "default-deny-ingress",
        [deny_web()],
        [Probe(C1, W1, P, TIMEOUT), Probe(C1, W2, P, TIMEOUT), ok(W3), ok(DB)],
    ),
    sc(
        "allow-from-same-namespace-selector",
        [
            deny_web(),
            Policy(
                "allow-cli",
                "default",
                selector='app == "web"',
                ingress=[allow(selector='app == "cli"')],
            ),
        ],
        [ok(W1), Probe(C2, W1, P, TIMEOUT), Probe(DB, W2, P, TIMEOUT)],
    ),
    sc(
        "allow-from-namespace-selector",
        [
            Policy(
                "allow-core",
                "default",
                selector='app == "web"',
                ingress=[allow(namespace_selector='team == "core"')],
            )
        ],
        [Probe(C2, W1, P, connected(W1)), Probe(W3, W1, P, TIMEOUT), ok(W2)],
    ),
    sc(
        "allow-namespace-and-pod-selector",
        [
            Policy(
                "allow-prod-cli",
                "default",
                selector='app == "web"',
                ingress=[allow(namespace_selector='env == "prod"', selector='app == "cli"')],
            )
        ],
        [Probe(C2, W1, P, connected(W1)), Probe(DB, W1, P, TIMEOUT), Probe(C1, W1, P, TIMEOUT)],
    ),
    sc(
        "allow-ip-block",
        [
            Policy(
                "allow-ext",
                "default",
                selector='app == "web"',
                ingress=[allow(nets=["10.99.0.0/24"])],
            )
        ],
        [ext_to_pod(W1, True), ext_to_pod(W1, False, src="far"), Probe(C1, W1, P, TIMEOUT)],
    ),
    sc(
        "allow-ip-block-except",
        [
            Policy(
                "allow-ext",
                "default",
                selector='app == "web"',
                ingress=[allow(nets=["10.98.0.0/16", "10.99.0.0/16"], not_nets=["10.98.0.0/24"])],
            )
        ],
        [unless(NEG, ext_to_pod(W1, True)), ext_to_pod(W1, False, src="far")],
    ),
    sc(
        "allow-tcp-port-only",
        [
            Policy(
                "tcp-8080",
                "default",
                selector='app == "web"',
                ingress=[Rule("Allow", "TCP", destination=EntityMatch(ports=[P]))],
            )
        ],
        [ok(W1), Probe(C1, W1, P, TIMEOUT, "udp")],
    ),
    sc(
        "allow-named-port",
        [
            Policy(
                "named",
                "default",
                selector='app == "web"',
                ingress=[Rule("Allow", "UDP", destination=EntityMatch(ports=["udp-echo"]))],
            )
        ],
        [Probe(C1, W1, P, connected(W1), "udp"), Probe(C1, W1, P, TIMEOUT)],
    ),
    sc(
        "allow-port-range",
        [
            Policy(
                "range",
                "default",
                selector='app == "web"',
                ingress=[Rule("Allow", "TCP", destination=EntityMatch(ports=["8000:8100"]))],
            )
        ],
        [ok(W1)],
    ),
    sc(
        "port-range-excludes",
        [
            Policy(
                "range",
                "default",
                selector='app == "web"',
                ingress=[Rule("Allow", "TCP", destination=EntityMatch(ports=["9000:9100"]))],
            )
        ],
        [Probe(C1, W1, P, TIMEOUT)],
    ),
    sc(
        "egress-default-deny",
        [Policy("no-egress", "default", selector='app == "cli"', types=["Egress"])],
        [Probe(C1, W2, P, TIMEOUT), Probe(W1, W2, P, connected(W2))],
    ),
    sc(
        "egress-allow-to-selector",
        [
            Policy(
                "to-web",
                "default",
                selector='app == "cli"',
                egress=[
                    Rule(
                        "Allow",
                        destination=EntityMatch(
                            selector='app == "web"', namespace_selector="all()"
                        ),
                    )
                ],
            )
        ],
        [ok(W2), ok(W3), Probe(C1, DB, P, TIMEOUT)],
    ),
    sc(
        "egress-named-port",
        [
            Policy(
                "to-named",
                "default",
                selector='app == "cli"',
                egress=[Rule("Allow", "TCP", destination=EntityMatch(ports=["tcp-echo"]))],
            )
        ],
        [
            # Without named ports (HNS) an Allow keeps only its numeric ports: here none.
            Probe(C1, W2, P, connected(W2), overrides={"!named_ports": TIMEOUT}),
            Probe(C1, W2, P, TIMEOUT, "udp"),
        ],
    ),
    sc(
        "source-egress-and-destination-ingress-both-needed",
        [
            Policy("no-egress", "default", selector='app == "cli"', types=["Egress"]),
            Policy("allow-all-in", "default", selector='app == "web"', ingress=[Rule("Allow")]),
        ],
        [Probe(C1, W1, P, TIMEOUT)],
    ),
    sc(
        "policy-order-deny-first",
        [
            Policy(
                "deny",
                None,
                order=10,
                selector='app == "web"',
                ingress=[Rule("Deny", source=EntityMatch(selector='app == "cli"'))],
            ),
            Policy("allow", None, order=20, selector='app == "web"', ingress=[Rule("Allow")]),
        ],
        [Probe(C1, W1, P, TIMEOUT), Probe(DB, W1, P, connected(W1))],
    ),
    sc(
        "tier-deny-beats-later-allow",
        [
            Tier("security", order=100),
            Policy(
                "security.block-cli",
                None,
                tier="security",
                selector='app == "web"',
                ingress=[Rule("Deny", source=EntityMatch(selector='app == "cli"')), Rule("Pass")],
            ),
            Policy("allow", None, selector='app == "web"', ingress=[Rule("Allow")]),
        ],
        [Probe(C1, W1, P, TIMEOUT), Probe(DB, W1, P, connected(W1))],
    ),
    sc(
        "tier-pass-to-next",
        [
            Tier("security", order=100),
            Policy(
                "security.pass-cli",
                None,
                tier="security",
                selector='app == "web"',
                ingress=[Rule("Pass", source=EntityMatch(selector='app == "cli"'))],
            ),
            Policy(
                "allow-cli",
                "default",
                selector='app == "web"',
                ingress=[allow(selector='app == "cli"')],
            ),
        ],
        [ok(W1), Probe(DB, W1, P, TIMEOUT)],
    ),
    sc(
        "tier-default-pass",
        [
            Tier("audit", order=50, default_action="Pass"),
            Policy("audit.log", None, tier="audit", selector="all()", ingress=[Rule("Log")]),
        ],
        [ok(W1), ok(W2)],
    ),
    sc(
        "log-then-allow",
        [
            Policy(
                "log-allow",
                "default",
                selector='app == "web"',
                ingress=[Rule("Log"), Rule("Allow")],
            )
        ],
        [ok(W1)],
    ),
    sc(
        "not-selector-matches-outside",
        [
            Policy(
                "not-cli",
                "default",
                selector='app == "web"',
                ingress=[allow(not_selector='app == "cli"')],
            )
        ],
        [
            Probe(C1, W1, P, TIMEOUT),
            unless(NEG, Probe(DB, W1, P, connected(W1))),
            unless(NEG, ext_to_pod(W1, True)),
        ],
    ),
    sc(
        "negated-selector-matches-endpoints-only",
        [Policy("not-env", None, selector='app == "web"', ingress=[allow(selector="!has(env)")])],
        [ok(W1), Probe(C2, W1, P, TIMEOUT), ext_to_pod(W1, False)],
    ),
    sc(
        "not-protocol",
        [
            Policy(
                "no-udp",
                "default",
                selector='app == "web"',
                ingress=[Rule("Allow", not_protocol="UDP")],
            )
        ],
        [unless(NEG, ok(W1)), Probe(C1, W1, P, TIMEOUT, "udp")],
    ),
    sc(
        "global-policy-namespace-selector",
        [
            Policy(
                "dev-deny",
                None,
                selector="all()",
                namespace_selector='env == "dev"',
                ingress=[Rule("Deny")],
            )
        ],
        [Probe(C1, W3, P, TIMEOUT), ok(W2)],
    ),
    sc(
        "policy-through-service",
        None,
        [Probe(C1, "10.96.0.60", 80, connected(W1, W2)), Probe(DB, "10.96.0.60", 80, TIMEOUT)],
        make=lambda f: [
            *service(f, "web", "10.96.0.60", (W1, W2)),
            deny_web(),
            Policy(
                "allow-cli",
                "default",
                selector='app == "web"',
                ingress=[allow(selector='app == "cli"')],
            ),
        ],
    ),
    sc(
        "host-endpoint-deny-all-keeps-failsafe",
        [hep()],
        [
            Probe("ext", "n1", 22, connected("n1")),
            Probe("ext", "n1", P, TIMEOUT),
            Probe("ext", "n2", P, connected("n2")),
        ],
        requires=HEP,
    ),
    sc(
        "host-endpoint-allow-port",
        [
            hep(labels={"role": "node"}),
            Policy(
                "host-http",
                None,
                selector='role == "node"',
                ingress=[Rule("Allow", "TCP", destination=EntityMatch(ports=[P]))],
            ),
        ],
        [Probe("ext", "n1", P, connected("n1")), Probe("ext", "n1", 22, connected("n1"))],
        requires=HEP,
    ),
    sc(
        "host-endpoint-named-interface",
        [hep(interface="eth0")],
        [Probe("ext", "n1", P, TIMEOUT), Probe("far", "n1", 22, connected("n1"))],
        requires=HEP,
    ),
    sc("host-endpoint-does-not-block-forwarded", [hep()], [ext_to_pod(W1, True)]),
    sc(
        "apply-on-forward-blocks-forwarded",
        [
            hep(labels={"role": "node"}),
            Policy(
                "fwd",
                None,
                selector='role == "node"',
                apply_on_forward=True,
                ingress=[Rule("Deny", source=EntityMatch(nets=["10.99.0.0/24"])), Rule("Allow")],
            ),
        ],
        [ext_to_pod(W1, False), ext_to_pod(W1, True, src="far")],
        requires=HEP,
    ),
    sc(
        "pre-dnat-filters-nodeport",
        None,
        [Probe("ext", "n1", 30070, TIMEOUT), Probe("far", "n1", 30070, connected(W1, W2))],
        make=lambda f: [
            *service(f, "np", "10.96.0.70", (W1, W2), type="NodePort", node_ports=[30070]),
            hep(labels={"role": "node"}),
            Policy(
                "pre",
                None,
                selector='role == "node"',
                pre_dnat=True,
                apply_on_forward=True,
                ingress=[Rule("Deny", source=EntityMatch(nets=["10.99.0.0/24"]))],
            ),
        ],
        requires=HEP,
    ),
    # An explicit allow in untracked or preDNAT policy skips the normal host endpoint policy
    # (host ingress, and applyOnForward ingress for forwarded traffic); no match goes on to it.
    sc(
        "pre-dnat-allow-skips-host-ingress-policy",
        None,
        [Probe("ext", "n1", P, connected("n1")), Probe("far", "n1", P, TIMEOUT)],
        make=lambda f: [
            *host_deny_port(P),
            early_allow(f, pre_dnat=True),
        ],
        requires=HEP,
    ),
    sc(
        "do-not-track-allow-skips-host-ingress-policy",
        None,
        [Probe("ext", "n1", P, connected("n1")), Probe("far", "n1", P, TIMEOUT)],
        make=lambda f: [
            *host_deny_port(P),
            # Untracked: the replies need an untracked allow of their own.
            early_allow(f, do_not_track=True),
        ],
        requires=HEP,
    ),
    sc(
        "pre-dnat-allow-skips-forward-ingress-policy",
        None,
        [
            Probe("ext", "n1", 30071, connected(W1)),
            Probe("far", "n1", 30071, TIMEOUT),
            ext_to_pod(W1, False),  # not the NodePort: the preDNAT rule does not match
        ],
        make=lambda f: [
            *service(f, "np", "10.96.0.71", (W1,), type="NodePort", node_ports=[30071]),
            *host_deny_port(None, apply_on_forward=True),
            early_allow(f, port=30071, pre_dnat=True),
        ],
        requires=HEP,
    ),
    sc(
        "endpoint-to-host-drop-by-default",
        [],
        # The endpoint-to-host action is a host firewall hook; without one (HNS) it is not enforced.
        [Probe(C1, "n1", P, TIMEOUT, overrides={"!host_endpoints": connected("n1")})],
    ),
    sc(
        "endpoint-to-host-accept",
        [NodeSettings(endpoint_to_host_action=EndpointToHostAction.ACCEPT)],
        [Probe(C1, "n1", P, connected("n1"))],
    ),
]

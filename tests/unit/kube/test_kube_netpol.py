"""Kubernetes NetworkPolicy → Policy: structure, and semantics checked by evaluation.

``allows`` is a small evaluator of one converted policy against converted
pods and namespaces (selectors through :mod:`dataplane.selector`), so the
tests state Kubernetes' meaning ("a pod labelled role=fe in this namespace
may connect") rather than the shape of the selector text.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import pytest

from dataplane import kube
from dataplane.model import (
    Action,
    EntityMatch,
    Namespace,
    Policy,
    PolicyType,
    PortRange,
    Protocol,
    Rule,
    WorkloadEndpoint,
)
from dataplane.selector import parse

CLUSTER = """
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: x}}
---
apiVersion: v1
kind: Namespace
metadata: {name: other, labels: {team: x}}
---
apiVersion: v1
kind: Namespace
metadata: {name: far, labels: {team: y}}
"""
_POD = """
---
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {ns}, labels: {labels}}}
spec:
  nodeName: node-a
  containers: [{{name: c, ports: [{{name: http, containerPort: 8080}}]}}]
status: {{phase: Running, podIP: {ip}}}
"""
PODS = {
    "shop/web": ("{app: web}", "10.0.0.1"),
    "shop/fe": ("{role: fe}", "10.0.0.2"),
    "shop/plain": ("{}", "10.0.0.3"),
    "other/fe": ("{role: fe}", "10.0.1.2"),
    "other/be": ("{role: be}", "10.0.1.3"),
    "far/fe": ("{role: fe}", "10.0.2.2"),
}


class World:
    """The converted cluster above plus one policy."""

    def __init__(self, policy_yaml: str) -> None:
        pods = "".join(
            _POD.format(ns=k.split("/")[0], name=k.split("/")[1], labels=labels, ip=address)
            for k, (labels, address) in PODS.items()
        )
        objects = kube.convert(kube.load_manifests(CLUSTER + pods + "---\n" + policy_yaml))
        self.namespaces = {o.name: o for o in objects.objects if isinstance(o, Namespace)}
        self.pods = {
            f"{o.namespace}/{o.name}": o for o in objects.objects if isinstance(o, WorkloadEndpoint)
        }
        (self.policy,) = [o for o in objects.objects if isinstance(o, Policy)]

    def selects(self, pod: str) -> bool:
        wep = self.pods[pod]
        return wep.namespace == self.policy.namespace and parse(self.policy.selector).matches(
            wep.labels
        )

    def allows(
        self,
        direction: PolicyType,
        target: str,
        peer: str,
        port: int = 8080,
        protocol: Protocol = Protocol.TCP,
    ) -> bool:
        """Would the policy let ``peer`` (a pod key or an IP) talk to/from ``target``?"""
        assert self.selects(target) and direction in self.policy.effective_types
        rules = self.policy.ingress if direction is PolicyType.INGRESS else self.policy.egress
        peer_wep = self.pods.get(peer)
        address = peer_wep.addresses[0] if peer_wep else ipaddress.ip_address(peer)
        # The destination's named ports resolve names: the target on ingress, the peer on egress.
        dest = self.pods[target] if direction is PolicyType.INGRESS else peer_wep
        for rule in rules:
            assert rule.action is Action.ALLOW
            peer_side = rule.source if direction is PolicyType.INGRESS else rule.destination
            if (
                rule.protocol in (None, protocol)
                and self._matches(peer_side, peer_wep, address)
                and _port_matches(rule.destination.ports, port, dest)
            ):
                return True
        return False

    def _matches(
        self,
        match: EntityMatch,
        wep: WorkloadEndpoint | None,
        address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    ) -> bool:
        if match.nets and not any(address in net for net in match.nets):
            return False
        if any(address in net for net in match.not_nets):
            return False
        if match.selector is not None and not (wep and parse(match.selector).matches(wep.labels)):
            return False
        if match.namespace_selector is not None:
            namespace = self.namespaces[wep.namespace] if wep else None
            return bool(namespace and parse(match.namespace_selector).matches(namespace.labels))
        return True


def _port_matches(
    ports: Sequence[PortRange | str], port: int, dest: WorkloadEndpoint | None
) -> bool:
    if not ports:
        return True
    named = {p.name: p.port for p in dest.named_ports} if dest else {}
    return any(port in p if isinstance(p, PortRange) else named.get(p) == port for p in ports)


def policy(spec: str, name: str = "p") -> str:
    return (
        f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
        f"metadata: {{name: {name}, namespace: shop}}\nspec:\n{spec}"
    )


INGRESS, EGRESS = PolicyType.INGRESS, PolicyType.EGRESS


def test_identity_tier_order_and_empty_pod_selector() -> None:
    world = World(policy("  podSelector: {}\n", name="deny"))
    p = world.policy
    assert (p.name, p.namespace, p.tier, p.order) == ("knp.default.deny", "shop", "default", 1000)
    assert p.selector == 'projectcalico.org/orchestrator == "k8s"'
    assert all(world.selects(k) for k in ("shop/web", "shop/fe", "shop/plain"))
    assert not world.selects("other/fe")  # a namespaced policy stays in its namespace


def test_no_rules_and_empty_rules_deny_ingress() -> None:
    for spec in ("  podSelector: {}\n", "  podSelector: {}\n  ingress: []\n"):
        p = World(policy(spec)).policy
        assert p.types == frozenset({INGRESS}) and p.ingress == () and p.egress == ()


def test_empty_rule_allows_everything() -> None:
    world = World(policy("  podSelector: {matchLabels: {app: web}}\n  ingress: [{}]\n"))
    assert world.policy.ingress == (Rule(Action.ALLOW),)
    assert world.allows(INGRESS, "shop/web", "far/fe", port=1, protocol=Protocol.UDP)
    assert world.allows(INGRESS, "shop/web", "198.51.100.1")


def test_pod_selector_peer_means_own_namespace() -> None:
    world = World(
        policy("""  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{podSelector: {matchLabels: {role: fe}}}]}]
""")
    )
    assert world.allows(INGRESS, "shop/web", "shop/fe")
    assert not world.allows(INGRESS, "shop/web", "other/fe")
    assert not world.allows(INGRESS, "shop/web", "shop/plain")
    assert not world.allows(INGRESS, "shop/web", "10.0.0.2")  # an address is not a pod


def test_namespace_and_pod_selector_in_one_peer_is_an_and() -> None:
    world = World(
        policy("""  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: x}}, podSelector: {matchLabels: {role: fe}}}]
""")
    )
    assert world.allows(INGRESS, "shop/web", "shop/fe")
    assert world.allows(INGRESS, "shop/web", "other/fe")
    assert not world.allows(INGRESS, "shop/web", "other/be")
    assert not world.allows(INGRESS, "shop/web", "far/fe")


def test_namespace_and_pod_selector_as_two_peers_is_an_or() -> None:
    world = World(
        policy("""  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: x}}}, {podSelector: {matchLabels: {role: fe}}}]
""")
    )
    assert len(world.policy.ingress) == 2
    assert world.allows(INGRESS, "shop/web", "other/be")  # any pod of a team-x namespace
    assert world.allows(INGRESS, "shop/web", "shop/plain")
    assert not world.allows(INGRESS, "shop/web", "far/fe")  # role=fe, but not in shop


def test_empty_namespace_selector_means_every_namespace() -> None:
    world = World(
        policy("""  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{namespaceSelector: {}}]}]
""")
    )
    (rule,) = world.policy.ingress
    assert rule.source.namespace_selector == "all()"
    assert world.allows(INGRESS, "shop/web", "far/fe")
    assert not world.allows(INGRESS, "shop/web", "203.0.113.1")  # pods only, not the world


def test_match_expressions_every_operator() -> None:
    world = World(
        policy("""  podSelector:
    matchExpressions:
    - {key: app, operator: In, values: [web, api]}
    - {key: tier, operator: NotIn, values: [db]}
    - {key: app, operator: Exists}
    - {key: legacy, operator: DoesNotExist}
""")
    )
    assert world.policy.selector == (
        'projectcalico.org/orchestrator == "k8s" && app in {"web", "api"} && '
        'tier not in {"db"} && has(app) && !has(legacy)'
    )
    assert world.selects("shop/web")  # NotIn and DoesNotExist hold for a missing label
    assert not world.selects("shop/fe")


def test_ip_block_with_except() -> None:
    world = World(
        policy("""  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{ipBlock: {cidr: 198.51.100.0/24, except: [198.51.100.128/25]}}]}]
""")
    )
    (rule,) = world.policy.ingress
    assert rule.source == EntityMatch(nets=("198.51.100.0/24",), not_nets=("198.51.100.128/25",))
    assert world.allows(INGRESS, "shop/web", "198.51.100.1")
    assert not world.allows(INGRESS, "shop/web", "198.51.100.200")
    assert not world.allows(INGRESS, "shop/web", "203.0.113.1")


def test_ports_named_numeric_ranges_and_protocol_defaults() -> None:
    world = World(
        policy("""  podSelector: {matchLabels: {app: web}}
  ingress:
  - ports:
    - {port: http}
    - {port: 9000, endPort: 9010}
    - {protocol: UDP, port: 53}
    - {protocol: SCTP}
""")
    )
    assert world.policy.ingress == (
        Rule(
            Action.ALLOW,
            protocol=Protocol.TCP,
            destination=EntityMatch(ports=("http", PortRange(9000, 9010))),
        ),
        Rule(Action.ALLOW, protocol=Protocol.UDP, destination=EntityMatch(ports=(53,))),
        Rule(Action.ALLOW, protocol=Protocol.SCTP),
    )
    assert world.allows(INGRESS, "shop/web", "far/fe", port=8080)  # "http" on the target
    assert world.allows(INGRESS, "shop/web", "far/fe", port=9010)
    assert not world.allows(INGRESS, "shop/web", "far/fe", port=9011)
    assert not world.allows(INGRESS, "shop/web", "far/fe", port=53)  # TCP 53 is not listed
    assert world.allows(INGRESS, "shop/web", "far/fe", port=53, protocol=Protocol.UDP)
    assert world.allows(INGRESS, "shop/web", "far/fe", port=7, protocol=Protocol.SCTP)


def test_port_less_entry_widens_its_protocol() -> None:
    world = World(
        policy("""  podSelector: {}
  ingress: [{ports: [{port: 80}, {protocol: TCP}]}]
""")
    )
    assert world.policy.ingress == (Rule(Action.ALLOW, protocol=Protocol.TCP),)


def test_one_rule_per_peer_and_protocol() -> None:
    world = World(
        policy("""  podSelector: {}
  ingress:
  - from: [{podSelector: {}}, {ipBlock: {cidr: 10.9.0.0/16}}]
    ports: [{port: 80}, {protocol: UDP, port: 53}]
""")
    )
    pairs = [(r.protocol, bool(r.source.nets)) for r in world.policy.ingress]
    assert pairs == [
        (Protocol.TCP, False),
        (Protocol.UDP, False),
        (Protocol.TCP, True),
        (Protocol.UDP, True),
    ]


@pytest.mark.parametrize(
    ("spec", "types", "egress_rules"),
    [
        ("  podSelector: {}\n  egress: [{}]\n", {INGRESS, EGRESS}, 1),
        ("  podSelector: {}\n  egress: []\n", {INGRESS}, 0),
        ("  podSelector: {}\n  policyTypes: []\n  egress: [{}]\n", {INGRESS, EGRESS}, 1),
        ("  podSelector: {}\n  policyTypes: [Ingress]\n  egress: [{}]\n", {INGRESS}, 0),
        ("  podSelector: {}\n  policyTypes: [Egress]\n", {EGRESS}, 0),
    ],
    ids=[
        "egress-implies-egress",
        "empty-egress-does-not",
        "empty-types-default",
        "ignored-egress-rules",
        "egress-deny-all",
    ],
)
def test_policy_types_default_as_the_api_does(
    spec: str, types: set[PolicyType], egress_rules: int
) -> None:
    p = World(policy(spec)).policy
    assert p.types == frozenset(types)
    assert len(p.egress) == egress_rules


def test_egress_only_policy() -> None:
    world = World(
        policy("""  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  ingress: [{}]
  egress:
  - to: [{ipBlock: {cidr: 10.96.0.10/32}}]
    ports: [{protocol: UDP, port: 53}]
  - to: [{podSelector: {matchLabels: {role: fe}}}]
    ports: [{port: http}]
""")
    )
    assert world.policy.types == frozenset({EGRESS}) and world.policy.ingress == ()
    dns, http = world.policy.egress
    assert dns.destination == EntityMatch(nets=("10.96.0.10/32",), ports=(53,))
    assert http.destination.ports == ("http",)
    assert world.allows(EGRESS, "shop/web", "10.96.0.10", port=53, protocol=Protocol.UDP)
    assert not world.allows(EGRESS, "shop/web", "10.96.0.11", port=53, protocol=Protocol.UDP)
    assert world.allows(EGRESS, "shop/web", "shop/fe", port=8080)  # "http" on the peer
    assert not world.allows(EGRESS, "shop/web", "other/fe", port=8080)


def test_label_values_are_quoted_so_the_selector_parses() -> None:
    p = World(policy("  podSelector: {matchLabels: {note: 'say \"hi\"'}}\n")).policy
    assert p.selector.endswith("note == 'say \"hi\"'")
    assert parse(p.selector).matches({"projectcalico.org/orchestrator": "k8s", "note": 'say "hi"'})

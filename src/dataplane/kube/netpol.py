"""networking.k8s.io/v1 NetworkPolicy → a Calico-model :class:`~dataplane.model.Policy`.

Kubernetes NetworkPolicy is a union of allows: a pod selected by any policy
in a direction is denied there unless some rule of some policy allows the
traffic. The Calico model says the same with one policy per NetworkPolicy in
the ``default`` tier (order 1000, name ``knp.default.<name>``, Calico's
spelling) whose rules are all Allow and whose types are set explicitly: a
tier that applies but does not allow drops, and pods no policy selects fall
through to their namespace profile, which allows.

Each Kubernetes rule becomes one Allow rule per (peer, protocol) pair: a model
rule has one protocol, and the rule's peers are alternatives. No peers means
any peer; no ports means any protocol and port.

Selectors are written as Calico's converter writes them, with the
``projectcalico.org/orchestrator == "k8s"`` term that keeps pod selectors
from matching host endpoints. A ``podSelector`` peer without a
``namespaceSelector`` means the policy's own namespace, so its selector also
tests ``projectcalico.org/namespace``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from dataplane.kube._fields import Doc, FieldMap, Value
from dataplane.kube.pods import ORCHESTRATOR, ORCHESTRATOR_LABEL
from dataplane.kube.services import SERVICE_PROTOCOLS
from dataplane.model import DEFAULT_TIER, Action, EntityMatch, Policy, PortRange, Rule
from dataplane.model.policy import PortSpec
from dataplane.selector import NAMESPACE_LABEL

POLICY_ORDER = 1000.0
_DIRECTIONS = {"ingress": "from", "egress": "to"}
_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
_LABEL_KEY = re.compile(r"[A-Za-z0-9_./-]{1,512}")
# IANA_SVC_NAME, as the API server validates named ports.
_PORT_NAME = re.compile(r"(?=.*[a-z])(?!.*--)[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?")

PortGroup = tuple[str | None, tuple[PortSpec, ...]]


def policy_name(name: str) -> str:
    return f"knp.default.{name}"


def convert_network_policy(raw: Mapping[str, Any]) -> Sequence[Policy]:
    doc = Doc(raw, namespaced=True)
    spec = doc.root["spec"]
    types = _types(spec)
    origins: dict[str, str] = {}
    # Rules of a direction the policy does not cover are ignored, as by the API,
    # but still read: the API server would still reject them if malformed.
    rules = {
        direction: _rules(spec[direction], direction, doc.namespace, origins)
        for direction in _DIRECTIONS
    }
    fields = FieldMap(
        {
            "name": "metadata.name",
            "namespace": "metadata.namespace",
            "selector": "spec.podSelector",
            "types": "spec.policyTypes",
        },
        opaque=origins,
    )
    policy = doc.build(
        fields,
        lambda: Policy(
            name=policy_name(doc.name),
            namespace=doc.namespace,
            tier=DEFAULT_TIER,
            order=POLICY_ORDER,
            selector=label_selector(spec["podSelector"], pods=True),
            types=types,
            ingress=rules["ingress"] if "Ingress" in types else (),
            egress=rules["egress"] if "Egress" in types else (),
        ),
    )
    return (doc.finish(policy),)


def _types(spec: Value) -> list[str]:
    """policyTypes, or the API's default: Ingress, plus Egress if egress rules exist."""
    given = [t.choice(("Ingress", "Egress")) for t in spec["policyTypes"].items()]
    if given:
        return [t for t in given if t is not None]
    return ["Ingress", "Egress"] if spec["egress"].items() else ["Ingress"]


def _rules(values: Value, direction: str, namespace: str, origins: dict[str, str]) -> list[Rule]:
    rules: list[Rule] = []
    for value in values.items():
        peers = [_peer(p, namespace) for p in value[_DIRECTIONS[direction]].items()]
        groups = _port_groups(value["ports"])
        for peer in peers or [EntityMatch()]:
            if peer is None:
                continue
            for protocol, ports in groups:
                origins[f"{direction}[{len(rules)}]"] = value.path
                if direction == "ingress":
                    rules.append(
                        Rule(
                            Action.ALLOW,
                            protocol=protocol,
                            source=peer,
                            destination=EntityMatch(ports=ports),
                        )
                    )
                else:
                    rules.append(
                        Rule(
                            Action.ALLOW,
                            protocol=protocol,
                            destination=attrs.evolve(peer, ports=ports),
                        )
                    )
    return rules


def _peer(value: Value, namespace: str) -> EntityMatch | None:
    pods, namespaces, block = value["podSelector"], value["namespaceSelector"], value["ipBlock"]
    if block.present:
        if pods.present or namespaces.present:
            value.problem("ipBlock cannot be combined with podSelector or namespaceSelector")
            return None
        return _ip_block(block)
    if namespaces.present:
        return EntityMatch(
            selector=label_selector(pods, pods=True),
            namespace_selector=label_selector(namespaces, pods=False),
        )
    if pods.present:
        own = f"{NAMESPACE_LABEL} == {_quote(namespace, value)}"
        return EntityMatch(selector=f"{own} && {label_selector(pods, pods=True)}")
    value.problem("a peer needs podSelector, namespaceSelector or ipBlock")
    return None


def _ip_block(block: Value) -> EntityMatch | None:
    cidr = block["cidr"].cidr()
    if not block["cidr"].present:
        block["cidr"].problem("required")
    excepts = []
    for item in block["except"].items():
        net = item.cidr()
        if net is None or cidr is None:
            continue
        inside = (
            net.version == cidr.version
            and net.prefixlen > cidr.prefixlen
            and int(net.network_address) & int(cidr.netmask) == int(cidr.network_address)
        )
        if not inside:
            item.problem(f"{net} is not a strict subnet of {cidr}")
        excepts.append(net)
    return EntityMatch(nets=[cidr], not_nets=excepts) if cidr is not None else None


def _port_groups(ports: Value) -> list[PortGroup]:
    """Ports by protocol, in order; ``()`` means every port of that protocol."""
    groups: dict[str | None, list[PortSpec] | None] = {}
    for value in ports.items():
        protocol = value["protocol"].choice(SERVICE_PROTOCOLS, "TCP")
        spec = _port(value["port"], value["endPort"])
        current = groups.get(protocol, [])
        # A port-less entry allows every port of its protocol, whatever else is listed.
        groups[protocol] = None if spec is None or current is None else [*current, spec]
    return [(protocol, tuple(specs or ())) for protocol, specs in groups.items()] or [(None, ())]


def _port(port: Value, end: Value) -> PortSpec | None:
    """One NetworkPolicyPort's port: a range, a name, or ``None`` for all ports."""
    if isinstance(port.raw, str):
        if not _PORT_NAME.fullmatch(port.raw):
            port.problem(f"not a port number or a port name (IANA_SVC_NAME): {port.raw!r}")
        if end.present:
            end.problem("needs a numeric port")
        return port.raw
    first = port.port()
    if first is None:
        if end.present and not port.present:
            end.problem("needs a numeric port")
        return None  # no port (all ports), or a bad one already reported
    last = end.port() if end.present else first
    if last is not None and last < first:
        end.problem(f"must not be below port {first}")
    return PortRange(first, max(first, last or first))


def label_selector(value: Value, *, pods: bool) -> str:
    """A Kubernetes LabelSelector as Calico selector text; empty selects everything.

    ``NotIn`` and ``DoesNotExist`` are true for objects without the label in
    both languages, so the translation is exact.
    """
    terms = [f"{ORCHESTRATOR_LABEL} == {_quote(ORCHESTRATOR, value)}"] if pods else []
    match_labels = value["matchLabels"]
    for key, text in sorted(match_labels.str_map().items()):
        _check_key(match_labels, key)
        terms.append(f"{key} == {_quote(text, match_labels)}")
    for expr in value["matchExpressions"].items():
        term = _expression(expr)
        if term:
            terms.append(term)
    return " && ".join(terms) or "all()"


def _expression(expr: Value) -> str | None:
    key, operator, values = expr["key"], expr["operator"], expr["values"]
    name = key.required_text()
    _check_key(key, name)
    op = operator.required_text()
    texts = [_quote(v, values) for v in values.str_list()]
    if op and op not in _OPERATORS:
        operator.problem(f"must be one of {', '.join(_OPERATORS)}, not {op!r}")
        return None
    if op in ("In", "NotIn") and not texts:
        values.problem(f"{op} needs at least one value")
    if op in ("Exists", "DoesNotExist") and values.items():
        values.problem(f"{op} takes no values")
    return {
        "In": f"{name} in {{{', '.join(texts)}}}",
        "NotIn": f"{name} not in {{{', '.join(texts)}}}",
        "Exists": f"has({name})",
        "DoesNotExist": f"!has({name})",
    }.get(op)


def _check_key(where: Value, key: str) -> None:
    if key and not _LABEL_KEY.fullmatch(key):
        where.problem(f"label key {key!r} has characters a selector cannot express")


def _quote(text: str, where: Value) -> str:
    """A selector string literal; the grammar has no escapes, so choose the quote."""
    if '"' not in text:
        return f'"{text}"'
    if "'" not in text:
        return f"'{text}'"
    where.problem(f"{text!r} holds both quote characters; a selector cannot express it")
    return '""'

"""Service rendering and the dispatch tree, checked with the restore-text tracer (no root)."""

from __future__ import annotations

import ipaddress
import random

import pytest
from ipt_tracer import Packet, Trace, Tracer

from dataplane.backends.iptables import tree
from dataplane.backends.iptables.layout import (
    FilterNeeds,
    base_piece,
    filter_hooks_piece,
    tree_piece,
)
from dataplane.backends.iptables.naming import Marks, Names
from dataplane.backends.iptables.render_services import (
    ServiceNames,
    frontend_piece,
    probability,
    tree_entry,
)
from dataplane.backends.iptables.store import Store
from dataplane.calc.ir import (
    Backend,
    Frontend,
    FrontendKind,
    IRSettings,
    NoEndpoints,
    Route,
    SourceClass,
)
from dataplane.model import EndpointToHostAction, ExternalServiceMode, Protocol

NAMES = Names("test")
MARKS = Marks.from_mask(0x0F000000)
SN = ServiceNames(NAMES, MARKS)
POD_CIDR = ipaddress.ip_network("10.244.0.0/16")
A = ipaddress.ip_address


def settings() -> IRSettings:
    return IRSettings(
        "n1",
        (A("192.168.0.2"),),
        (POD_CIDR,),
        (),
        (),
        ExternalServiceMode.TUNNEL,
        EndpointToHostAction.ACCEPT,
        "^eth",
        "dpw",
    )


def backends(*last_octets: int, local: bool = True) -> tuple[Backend, ...]:
    return tuple(Backend(A(f"10.244.1.{o}"), 8080, "n1", local) for o in last_octets)


def store_of(*frontends: Frontend) -> Store:
    store = Store()
    store.put("base", base_piece(NAMES, MARKS, settings(), nat=True))
    for fe in frontends:
        store.put(fe.key, frontend_piece(fe, SN))
    entries = [tree_entry(fe.key, SN.nat_chain(fe.key)) for fe in frontends]
    store.put("nat-tree", tree_piece(NAMES, "nat", entries))
    filtered = [
        tree_entry(fe.key, SN.filter_chain(fe.key))
        for fe in frontends
        if ("filter", SN.filter_chain(fe.key)) in store.chains
    ]
    store.put("filter-tree", tree_piece(NAMES, "filter", filtered))
    needs = FilterNeeds(True, False, False, False, False, False, False, False)
    store.put("hooks", filter_hooks_piece(NAMES, MARKS, settings(), needs))
    return store


def trace_nat(store: Store, pkt: Packet) -> tuple[set[str], bool]:
    """DNAT targets and whether the connection is masqueraded (mark or hairpin)."""
    members = {name: frozenset(c) for name, c in store.members.items()}
    tracer = Tracer(store.chains, members)
    t = tracer.run("nat", NAMES.fixed("PRE"), pkt)
    masq = bool(t.mark & MARKS.masq)
    for target in t.dnat:
        ip, port = target.split(":")
        post = Trace(dnat={target}, mark=t.mark)
        tracer.run("nat", NAMES.fixed("POST"), Packet(pkt.src, ip, pkt.proto, int(port)), post)
        masq |= post.verdict == "MASQUERADE"
    return t.dnat, masq


def trace_filter(store: Store, pkt: Packet) -> str | None:
    members = {name: frozenset(c) for name, c in store.members.items()}
    return Tracer(store.chains, members).run("filter", NAMES.fixed("FWD"), pkt).verdict


def cluster_ip(vip: str, bs: tuple[Backend, ...], **kw: object) -> Frontend:
    routes = (Route(SourceClass.POD, bs, False), Route(SourceClass.ANY, bs, True))
    return Frontend(A(vip), Protocol.TCP, 80, FrontendKind.CLUSTER_IP, "ns/svc", routes, **kw)  # type: ignore[arg-type]


def test_probabilities_are_printed_as_iptables_save_does() -> None:
    assert probability(0, 3) == "0.33333333349"
    assert probability(1, 3) == "0.50000000000"


def test_cluster_ip_pod_keeps_source_others_masqueraded() -> None:
    store = store_of(cluster_ip("10.96.0.1", backends(2, 3, 4)))
    all3 = {"10.244.1.2:8080", "10.244.1.3:8080", "10.244.1.4:8080"}
    assert trace_nat(store, Packet("10.244.9.9", "10.96.0.1")) == (all3, False)
    assert trace_nat(store, Packet("192.168.0.2", "10.96.0.1", local_src=True)) == (all3, True)
    assert trace_nat(store, Packet("10.244.9.9", "10.96.0.1", dport=81)) == (set(), False)


def test_hairpin_is_masqueraded_only_to_itself() -> None:
    store = store_of(cluster_ip("10.96.0.1", backends(2)))
    assert trace_nat(store, Packet("10.244.1.2", "10.96.0.1")) == ({"10.244.1.2:8080"}, True)
    assert trace_nat(store, Packet("10.244.1.3", "10.96.0.1")) == ({"10.244.1.2:8080"}, False)
    no_hairpin = cluster_ip("10.96.0.1", backends(2), hairpin_masquerade=False)
    store = store_of(no_hairpin)
    assert trace_nat(store, Packet("10.244.1.2", "10.96.0.1")) == ({"10.244.1.2:8080"}, False)


def test_local_policy_routes_by_source_class() -> None:
    cluster, local = backends(2, 3, local=False) + backends(4), backends(4)
    fe = Frontend(
        A("192.168.0.2"),
        Protocol.TCP,
        30080,
        FrontendKind.NODE_PORT,
        "ns/svc",
        (
            Route(SourceClass.POD, cluster, False),
            Route(SourceClass.HOST, cluster, True),
            Route(SourceClass.ANY, local, False, NoEndpoints.DROP),
        ),
    )
    store = store_of(fe)
    every = {f"{b.address}:8080" for b in cluster}
    pod = Packet("10.244.9.9", "192.168.0.2", dport=30080)
    host = Packet("192.168.0.2", "192.168.0.2", dport=30080, local_src=True)
    outside = Packet("203.0.113.7", "192.168.0.2", dport=30080)
    assert trace_nat(store, pod) == (every, False)
    assert trace_nat(store, host) == (every, True)
    assert trace_nat(store, outside) == ({"10.244.1.4:8080"}, False)


def test_no_endpoints_reject_drop_by_first_matching_route() -> None:
    fe = Frontend(
        A("10.96.0.2"),
        Protocol.TCP,
        80,
        FrontendKind.CLUSTER_IP,
        "ns/svc",
        (
            Route(SourceClass.POD, backends(2), False),
            Route(SourceClass.ANY, (), True, NoEndpoints.DROP),
        ),
    )
    rejecting = cluster_ip("10.96.0.3", ())
    store = store_of(fe, rejecting)
    assert trace_filter(store, Packet("10.244.9.9", "10.96.0.2")) is None  # DNATed in nat
    assert trace_filter(store, Packet("203.0.113.7", "10.96.0.2")) == "DROP"
    assert trace_filter(store, Packet("10.244.9.9", "10.96.0.3")) == "REJECT"
    assert trace_nat(store, Packet("203.0.113.7", "10.96.0.2")) == (set(), False)


def test_source_ranges_drop_others() -> None:
    fe = Frontend(
        A("1.2.3.4"),
        Protocol.TCP,
        80,
        FrontendKind.LOAD_BALANCER,
        "ns/lb",
        (Route(SourceClass.ANY, backends(2), True),),
        source_ranges=(ipaddress.ip_network("203.0.113.0/25"),),
    )
    store = store_of(fe)
    assert trace_nat(store, Packet("203.0.113.2", "1.2.3.4")) == ({"10.244.1.2:8080"}, True)
    assert trace_nat(store, Packet("203.0.113.130", "1.2.3.4")) == (set(), False)
    assert trace_filter(store, Packet("203.0.113.130", "1.2.3.4")) == "DROP"
    assert trace_filter(store, Packet("203.0.113.2", "1.2.3.4")) is None


def test_affinity_uses_timed_sets_and_sticky_chains() -> None:
    store = store_of(cluster_ip("10.96.0.1", backends(2, 3), affinity_timeout=600))
    sets = [s for s in store.sets.values() if s.timeout == 600]
    assert len(sets) == 2 and all(s.type == "hash:ip" for s in sets)
    targets, _ = trace_nat(store, Packet("10.244.9.9", "10.96.0.1"))
    assert targets == {"10.244.1.2:8080", "10.244.1.3:8080"}
    sticky = [r for (t, c), rules in store.chains.items() if "-E-" in c for r in rules]
    assert any(r.startswith("-j SET --add-set") and r.endswith("src --exist") for r in sticky)


def test_pools_are_shared_between_frontends_with_equal_backends() -> None:
    routes = (
        Route(SourceClass.POD, backends(2, 3), False),
        Route(SourceClass.ANY, backends(4, 5), True),
    )
    a = Frontend(A("10.96.0.1"), Protocol.TCP, 80, FrontendKind.CLUSTER_IP, "ns/a", routes)
    b = Frontend(A("192.168.0.2"), Protocol.TCP, 30001, FrontendKind.NODE_PORT, "ns/a", routes)
    store = store_of(a, b)
    pools = [c for (_, c) in store.chains if "-L-" in c]
    assert len(pools) == 2
    store.drop(a.key)
    assert len([c for (_, c) in store.chains if "-L-" in c]) == 2  # still used by b


@pytest.mark.parametrize("count", [1, 9, 500, 10_000])
def test_tree_reaches_every_frontend_in_few_rules(count: int) -> None:
    rng = random.Random(count)
    entries = []
    for i, host in enumerate(rng.sample(range(1, 1 << 16), count)):
        proto = rng.choice([6, 17])
        entries.append(tree.Entry((10 << 24) | (96 << 16) | host, proto, 80 + i % 3, f"F{i}"))
    chains = tree.build(entries, "ROOT", lambda ident: f"N{ident}")
    table = {("nat", name): rules for name, rules in chains.items()}
    tracer = Tracer(table | {("nat", e.target): ("-j ACCEPT",) for e in entries}, {})
    worst = 0
    for e in rng.sample(entries, min(count, 300)):
        pkt = Packet(
            "10.244.0.1",
            str(ipaddress.IPv4Address(e.address)),
            {6: "tcp", 17: "udp"}[e.protocol],
            e.port,
        )
        result = tracer.run("nat", "ROOT", pkt)
        assert result.verdict == "ACCEPT"
        worst = max(worst, result.rules_seen)
    assert worst <= 40, worst  # a linear chain would need up to ``count``


def test_node_ports_on_one_address_split_by_protocol_and_port() -> None:
    entries = [
        tree.Entry(0xC0A80002, proto, port, f"F{proto}-{port}")
        for proto in (6, 17)
        for port in range(30000, 30400)
    ]
    chains = tree.build(entries, "ROOT", lambda ident: f"N{ident}")
    rules = [r for rs in chains.values() for r in rs]
    assert any(r.startswith("-p udp -m udp --dport 30") and " -g N" in r for r in rules)
    table = {("nat", n): r for n, r in chains.items()}
    tracer = Tracer(table | {("nat", e.target): ("-j ACCEPT",) for e in entries}, {})
    result = tracer.run("nat", "ROOT", Packet("1.1.1.1", "192.168.0.2", "udp", 30321))
    assert result.verdict == "ACCEPT" and result.rules_seen <= 40

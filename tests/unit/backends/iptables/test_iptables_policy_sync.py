"""Policy rendering, the store, restore payloads, read-back and conntrack filters (no root)."""

from __future__ import annotations

import ipaddress

import pytest

from dataplane.backends.iptables import restore
from dataplane.backends.iptables.conntrack import stale_filters
from dataplane.backends.iptables.naming import CHAIN_MAX, Marks, Names, parse_mark_mask
from dataplane.backends.iptables.readback import Installed, parse_ipset_save, parse_save
from dataplane.backends.iptables.render_ipsets import ipset_piece
from dataplane.backends.iptables.render_policy import (
    PolicyNames,
    ProgramRenderer,
    failsafe_rules,
    rule_lines,
)
from dataplane.backends.iptables.store import Piece, SetSpec, Store
from dataplane.calc.ir import (
    Backend,
    Chain,
    ChainEnd,
    Direction,
    Frontend,
    FrontendKind,
    IpSet,
    IRRule,
    PolicyProgram,
    PortMatch,
    Route,
    RuleRef,
    SourceClass,
    TierProgram,
)
from dataplane.model import Action, PortRange, Protocol, ProtoPort, TierDefault

NAMES = Names("test")
MARKS = Marks.from_mask(0x0F000000)
PN = PolicyNames(NAMES, MARKS)
REF = RuleRef("default/p", Direction.INGRESS, 0)


def test_names_are_short_prefixed_and_distinct_per_instance() -> None:
    a, b = Names("node-a"), Names("node-b")
    assert a.prefix != b.prefix and a.prefix.startswith("DP-")
    name = a.hashed("WI", "WorkloadEndpoint|default|" + "x" * 300)
    assert len(name) <= CHAIN_MAX and a.owns(name) and not b.owns(name)
    with pytest.raises(ValueError):
        parse_mark_mask("0x3")


def test_allow_with_ports_and_named_ports_is_one_alternative_each() -> None:
    rule = IRRule(
        Action.ALLOW,
        REF,
        protocol=6,
        src_sets=("s1",),
        dst_ports=PortMatch((PortRange(80, 80), PortRange(8000, 8100)), ("n1",)),
    )
    lines = rule_lines(rule, PN)
    s1, n1 = PN.ipset("s1"), PN.ipset("n1")
    assert lines == [
        f"-p tcp -m set --match-set {s1} src -m multiport --dports 80,8000:8100 "
        "-j MARK --set-xmark 0x2000000/0x2000000",
        f"-p tcp -m set --match-set {s1} src -m set --match-set {n1} dst,dst "
        "-j MARK --set-xmark 0x2000000/0x2000000",
        "-m mark --mark 0x2000000/0x2000000 -j RETURN",
    ]


def test_negations_icmp_log_pass_deny_and_ipv6() -> None:
    deny = IRRule(
        Action.DENY,
        REF,
        protocol=1,
        icmp_type=8,
        icmp_code=0,
        not_dst_ports=None,
        not_src_sets=("s2",),
    )
    assert rule_lines(deny, PN) == [
        f"-p icmp -m icmp --icmp-type 8/0 -m set ! --match-set {PN.ipset('s2')} src -j DROP"
    ]
    many = tuple(PortRange(p, p) for p in range(1000, 1020))
    negated = IRRule(Action.PASS, REF, protocol=17, not_dst_ports=PortMatch(many))
    [line, back] = rule_lines(negated, PN)
    assert line.count("-m multiport ! --dports") == 2 and back.endswith("-j RETURN")
    assert rule_lines(IRRule(Action.LOG, REF), PN) == ['-j LOG --log-prefix "dp default/p "']
    assert rule_lines(IRRule(Action.ALLOW, REF, ip_version=6), PN) == []
    any_proto = IRRule(Action.DENY, REF, dst_ports=PortMatch((PortRange(53, 53),)))
    assert [r.split()[1] for r in rule_lines(any_proto, PN)] == ["tcp", "udp", "sctp"]


def test_endpoint_chain_tiers_profiles_and_end() -> None:
    tier = TierProgram("t", TierDefault.DENY, (PolicyProgram("p", (IRRule(Action.ALLOW, REF),)),))
    passing = TierProgram("u", TierDefault.PASS, ())
    profile = PolicyProgram("profile", ())
    r = ProgramRenderer(PN, "filter")
    r.endpoint("EP", Chain((tier, passing), (profile,), ChainEnd.DENY), ["-j PROLOGUE"], "RETURN")
    ep = r.chains[("filter", "EP")]
    assert ep[0] == "-j PROLOGUE" and ep[1] == "-j MARK --set-xmark 0x0/0x6000000"
    assert ep[-1] == "-j DROP" and sum(" -j RETURN" in x for x in ep) == 3
    tiers = [rules for (_, name), rules in r.chains.items() if "-T-" in name]
    assert any(rules[-1] == "-j DROP" for rules in tiers)  # end of tier
    assert any(rules == () for rules in tiers)  # an empty Pass tier passes
    again = ProgramRenderer(PN, "filter")
    again.endpoint("EP2", Chain((tier,)), [], "ACCEPT")
    assert set(again.chains) - {("filter", "EP2")} <= set(r.chains)  # shared by content


def test_failsafes_match_both_directions_in_raw() -> None:
    ssh = (ProtoPort("tcp", 22, "10.0.0.0/8"),)
    assert failsafe_rules(ssh, inbound=True, reply=False) == [
        "-s 10.0.0.0/8 -p tcp -m tcp --dport 22 -j ACCEPT"
    ]
    assert failsafe_rules(ssh, inbound=True, reply=True) == [
        "-d 10.0.0.0/8 -p tcp -m tcp --sport 22 -j ACCEPT"
    ]


def test_ipsets_spell_members_as_ipset_save_does() -> None:
    nets = IpSet(
        "a",
        "x",
        nets=frozenset(
            ipaddress.ip_network(n)
            for n in ("10.0.0.1/32", "10.1.0.0/16", "0.0.0.0/0", "fd00::/64")
        ),
    )
    piece = ipset_piece(NAMES, nets)
    [spec] = piece.sets
    assert spec.type == "hash:net"
    assert piece.members[spec.name] == {"10.0.0.1", "10.1.0.0/16", "0.0.0.0/1", "128.0.0.0/1"}
    ports = IpSet(
        "b", "named", ports=frozenset({(ipaddress.ip_network("10.0.0.5/32"), Protocol.TCP, 8080)})
    )
    piece = ipset_piece(NAMES, ports)
    assert piece.sets[0].type == "hash:net,port"
    assert piece.members[piece.sets[0].name] == {"10.0.0.5,tcp:8080"}


def test_store_refcounts_shared_chains_and_members() -> None:
    store = Store()
    shared = {("filter", "P"): ("-j DROP",)}
    store.put("a", Piece(chains=shared, members={"S": frozenset({"1.1.1.1"})}))
    store.put("b", Piece(chains=shared, members={"S": frozenset({"1.1.1.1", "2.2.2.2"})}))
    store.take_dirty()
    store.drop("a")
    assert store.chains == shared and store.members_of("S") == {"1.1.1.1", "2.2.2.2"}
    chains, sets = store.take_dirty()
    assert chains == set() and sets == {"S"}
    store.drop("b")
    assert store.chains == {} and store.take_dirty()[0] == {("filter", "P")}


def test_restore_payload_writes_only_differences_and_deletes_last() -> None:
    wanted = {("nat", "A"): ("-j RETURN",), ("nat", "B"): ("-g A",)}
    installed = {("nat", "A"): ("-j RETURN",), ("nat", "OLD"): ("-j ACCEPT",)}
    hooks = restore.hook_lines(
        {("nat", "PREROUTING"): "-j A"},
        {("nat", "PREROUTING"): ["-j A", "-j A"], ("nat", "OUTPUT"): ["-j B"]},
    )
    payload = restore.table_payloads(wanted, installed, set(wanted) | set(installed), hooks)
    assert payload["nat"][0].splitlines() == [
        "*nat",
        ":B - [0:0]",
        ":OLD - [0:0]",
        "-A B -g A",
        "-D OUTPUT -j B",
        "-D PREROUTING -j A",
        "-X OLD",
        "COMMIT",
    ]


def test_ipset_plan_adds_removes_and_never_touches_dynamic_members() -> None:
    store = Store()
    store.put(
        "x",
        Piece(
            sets=(SetSpec("S", "hash:net"), SetSpec("A", "hash:ip", timeout=60)),
            members={"S": frozenset({"1.1.1.1", "3.3.3.3"})},
        ),
    )
    installed = Installed(
        sets={
            "S": SetSpec("S", "hash:net"),
            "GONE": SetSpec("GONE", "hash:net"),
            "A": SetSpec("A", "hash:ip", 60),
        },
        members={"S": frozenset({"1.1.1.1", "2.2.2.2"}), "A": frozenset({"9.9.9.9"})},
    )
    plan = restore.plan(store, installed, (), {"S", "A", "GONE"}, {})
    assert plan.sets_before.splitlines() == ["add S 3.3.3.3", "del S 2.2.2.2"]
    assert plan.sets_after == "destroy GONE\n"


def test_readback_parses_own_chains_hooks_and_sets() -> None:
    owns = NAMES.owns
    p = NAMES.prefix
    save = (
        f"*nat\n:PREROUTING ACCEPT [0:0]\n:{p}PRE - [0:0]\n:KUBE-X - [0:0]\n"
        f"-A PREROUTING -j {p}PRE\n-A PREROUTING -j KUBE-X\n"
        f"-A {p}PRE -m set --match-set {p}FE dst,dst -g {p}NT\nCOMMIT\n"
    )
    installed = Installed()
    parse_save(save, "nat", owns, installed)
    assert installed.chains == {("nat", f"{p}PRE"): (f"-m set --match-set {p}FE dst,dst -g {p}NT",)}
    assert installed.hooks == {("nat", "PREROUTING"): [f"-j {p}PRE"]}
    sets = (
        f"create {p}FE hash:ip,port family inet hashsize 1024 maxelem 1048576\n"
        f"add {p}FE 10.96.0.1,tcp:80\ncreate other hash:net\n"
        f"create {p}A hash:ip family inet timeout 60\nadd {p}A 1.2.3.4 timeout 59\n"
    )
    parse_ipset_save(sets, owns, installed)
    assert installed.sets[f"{p}A"] == SetSpec(f"{p}A", "hash:ip", 60)
    assert installed.members[f"{p}FE"] == {"10.96.0.1,tcp:80"} and "other" not in installed.sets


def _udp(*backends: str) -> Frontend:
    bs = tuple(Backend(ipaddress.ip_address(b), 53, None, False) for b in backends)
    return Frontend(
        ipaddress.ip_address("10.96.0.10"),
        Protocol.UDP,
        53,
        FrontendKind.CLUSTER_IP,
        "kube-system/dns",
        (Route(SourceClass.ANY, bs, True),),
    )


def test_conntrack_filters_for_udp_backend_changes() -> None:
    base = ["-p", "udp", "--orig-dst", "10.96.0.10", "--orig-port-dst", "53"]
    assert list(stale_filters(_udp("10.0.0.1", "10.0.0.2"), _udp("10.0.0.2"))) == [
        [*base, "--dst-nat", "10.0.0.1"]
    ]
    assert list(stale_filters(_udp(), _udp("10.0.0.2"))) == [base]  # first backend
    assert list(stale_filters(None, _udp("10.0.0.2"))) == [base]
    assert list(stale_filters(_udp("10.0.0.2"), None)) == [base]
    assert list(stale_filters(_udp("10.0.0.2"), _udp("10.0.0.2", "10.0.0.3"))) == []


def test_large_restore_is_split_bottom_up_with_removals_last() -> None:
    """iptables-nft: each restore names at most max_names chains; a chain is written after
    the chains it jumps to, the hooks with the last rewrite, removals unlinked then deleted."""
    wanted = {("nat", f"F{i}"): (f"-j DNAT --to-destination 10.0.0.{i}",) for i in range(4)}
    wanted[("nat", "T")] = tuple(f"-d 10.1.0.{i}/32 -g F{i}" for i in range(4))
    installed = {("nat", "OLD1"): ("-g OLD2",), ("nat", "OLD2"): ("-j RETURN",)}
    hooks = {"nat": ["-I PREROUTING 1 -j T"]}
    keys = set(wanted) | set(installed)
    assert len(restore.table_payloads(wanted, installed, keys, hooks)["nat"]) == 1
    blocks = restore.table_payloads(wanted, installed, keys, hooks, max_names=3)["nat"]
    assert [b.splitlines()[1:-1] for b in blocks] == [
        [
            ":F0 - [0:0]",
            ":F1 - [0:0]",
            "-A F0 -j DNAT --to-destination 10.0.0.0",
            "-A F1 -j DNAT --to-destination 10.0.0.1",
        ],
        [
            ":F2 - [0:0]",
            ":F3 - [0:0]",
            "-A F2 -j DNAT --to-destination 10.0.0.2",
            "-A F3 -j DNAT --to-destination 10.0.0.3",
        ],
        [
            ":T - [0:0]",
            *(f"-A T -d 10.1.0.{i}/32 -g F{i}" for i in range(4)),
            "-I PREROUTING 1 -j T",
        ],
        [":OLD1 - [0:0]", ":OLD2 - [0:0]"],
        [":OLD1 - [0:0]", ":OLD2 - [0:0]", "-X OLD1", "-X OLD2"],
    ]

"""Policy programs (pure): IR chains → instructions, limits, rule-space allocation."""

from __future__ import annotations

import ipaddress
from typing import Any

import attrs
import pytest

from dataplane.backends.ebpf import policy, program
from dataplane.backends.ebpf.maps import failsafe, ifpolicy
from dataplane.backends.ebpf.maps import rules as r
from dataplane.calc.ir import (
    ALLOW_ALL,
    Chain,
    ChainEnd,
    DataplaneIR,
    Direction,
    IpSet,
    IRRule,
    IRSettings,
    PolicyProgram,
    PortMatch,
    RemoteNode,
    RuleRef,
    TierProgram,
)
from dataplane.errors import CapacityError
from dataplane.model import (
    Action,
    EndpointToHostAction,
    ExternalServiceMode,
    PortRange,
    ProtoPort,
    TierDefault,
)


def rule(action: Action, policy_name: str = "default/p", index: int = 0, **kw: object) -> IRRule:
    return IRRule(action, RuleRef(policy_name, Direction.INGRESS, index), **kw)  # type: ignore[arg-type]


def actions(prog: program.Program) -> list[tuple[int, int]]:
    return [(i.decode().action, i.decode().jump) for i in prog]


def test_tiers_pass_log_and_profiles_flatten_with_forward_jumps() -> None:
    chain = Chain(
        tiers=(
            TierProgram(
                "security",
                TierDefault.DENY,
                (PolicyProgram("security.p", (rule(Action.LOG), rule(Action.PASS, index=1))),),
            ),
            TierProgram("default", TierDefault.PASS, (PolicyProgram("default/q", ()),)),
        ),
        profiles=(PolicyProgram("profile:x", (rule(Action.PASS), rule(Action.ALLOW, index=1))),),
        end=ChainEnd.DENY,
    )
    prog, _ = program.compile_chains((chain,), {})
    # log, pass -> past the end-of-tier deny, deny (end of tier), profile allow -> end, deny.
    assert actions(prog) == [
        (r.ACT_LOG, 0),
        (r.ACT_PASS, 3),
        (r.ACT_DENY, 0),
        (r.ACT_ALLOW, 5),
        (r.ACT_DENY, 0),
    ]
    assert [i.origin for i in prog][2] == "end of tier security"


def test_chains_in_a_row_allow_into_the_next_one() -> None:
    prog, _ = program.compile_chains((ALLOW_ALL, Chain(end=ChainEnd.DENY)), {})
    assert actions(prog) == [(r.ACT_ALLOW, 1), (r.ACT_DENY, 0)]


def test_rule_fields_and_sets_are_encoded() -> None:
    irr = rule(
        Action.ALLOW,
        protocol=6,
        src_sets=("s1",),
        not_dst_sets=("s2",),
        dst_ports=PortMatch((PortRange(80, 90),), ("np",)),
        icmp_type=None,
    )
    prog, used = program.compile_chains(
        (Chain(profiles=(PolicyProgram("x", (irr,)),)),),
        {
            "s1": 1,
            "s2": 2,
            "np": 3,
        },
    )
    enc = prog[0].decode()
    assert enc.proto == 6
    assert list(enc.set_role[:3]) == [r.SET_SRC, r.SET_NOT_DST, r.SET_DST_PORT]
    assert list(enc.set_id[:3]) == [1, 2, 3]
    assert enc.port_groups == r.PG_DST and enc.named_groups == r.PG_DST
    assert (enc.port_role[0], enc.port_first[0], enc.port_last[0]) == (3, 80, 90)
    assert used == {"s1", "s2", "np"}


def test_unknown_positive_set_never_matches() -> None:
    prog, _ = program.compile_chains(
        (Chain(profiles=(PolicyProgram("x", (rule(Action.ALLOW, src_sets=("gone",)),)),)),), {}
    )
    assert prog[0].decode().flags & r.R_NEVER


def test_too_many_sets_in_a_rule_names_the_policy() -> None:
    ids = {f"s{i}": i + 1 for i in range(9)}
    irr = rule(Action.ALLOW, "default/wide", src_sets=tuple(ids))
    with pytest.raises(CapacityError, match=r"default/wide.*9 IP sets.*allows 8"):
        program.compile_chains((Chain(profiles=(PolicyProgram("x", (irr,)),)),), ids)


def test_too_long_program_names_the_policy() -> None:
    rules = tuple(rule(Action.DENY, "default/huge", i, protocol=6) for i in range(r.MAX_RULES))
    chain = Chain(tiers=(TierProgram("default", TierDefault.DENY, (PolicyProgram("h", rules),)),))
    with pytest.raises(
        CapacityError, match=r"policy default/huge: the endpoint's program needs 1026"
    ):
        program.compile_chains((chain,), {})


def test_rule_space_reuses_and_coalesces_free_runs() -> None:
    space = policy.RuleSpace(10)
    a, b = space.take(4, "a"), space.take(4, "b")
    assert (a, b) == (0, 4)
    with pytest.raises(CapacityError, match="c: no room"):
        space.take(4, "c")
    space.release(a, 4)
    space.release(b, 4)
    assert space.take(10, "d") == 0


def test_failsafes_include_the_tunnel_to_other_nodes() -> None:
    settings = IRSettings(
        "n1",
        (ipaddress.ip_address("10.0.0.1"),),
        (),
        (ProtoPort("tcp", 22),),
        (ProtoPort("udp", 53, "10.0.0.0/8"),),
        ExternalServiceMode.TUNNEL,
        EndpointToHostAction.DROP,
        "eth.*",
        "dpw",
    )
    ir = DataplaneIR(
        settings,
        remote_nodes={"n2": RemoteNode("n2", (ipaddress.ip_address("10.0.0.2"),), ())},
    )
    net = ipaddress.IPv4Network
    assert policy.failsafes(ir, 4789) == {
        (failsafe.IN, 6, 22, net("0.0.0.0/0")),
        (failsafe.OUT, 17, 53, net("10.0.0.0/8")),
        (failsafe.IN, 17, 4789, net("10.0.0.2/32")),
        (failsafe.OUT, 17, 4789, net("10.0.0.2/32")),
    }


def test_members_skip_ipv6() -> None:
    s = IpSet(
        "x", "d", frozenset({ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::/0")})
    )
    assert policy.members(s) == {(ipaddress.IPv4Network("10.0.0.0/8"), 0, 0)}


def test_chain_kinds_match_the_c_header() -> None:
    assert ifpolicy.CH_MAX == 8 and len(ifpolicy.CHAIN_NAMES) == ifpolicy.CH_MAX


class FakeMap:
    """Records element writes the way PolicyMaps makes them (no kernel)."""

    def __init__(self) -> None:
        self.data: dict[bytes, Any] = {}
        self.writes = 0

    def update(self, key: Any, value: Any) -> None:
        self.data[bytes(key)] = value
        self.writes += 1

    def update_many(self, pairs: Any) -> None:
        for k, v in pairs:
            self.update(k, v)

    def delete(self, key: Any) -> bool:
        self.writes += 1
        return self.data.pop(bytes(key), None) is not None

    def delete_many(self, keys: Any) -> None:
        for k in keys:
            self.delete(k)

    def zero_percpu(self, keys: Any) -> None:
        for k in keys:
            self.data[bytes(k)] = 0

    def all_keys(self) -> list[Any]:
        return []

    def entries(self) -> list[Any]:
        return []


def test_set_member_change_writes_two_elements_and_bumps_users_only() -> None:
    sets, ifpol = FakeMap(), FakeMap()
    maps = policy.PolicyMaps(FakeMap(), FakeMap(), ifpol, sets, FakeMap(), 1000)  # type: ignore[arg-type]
    maps.load()
    nets = [ipaddress.ip_network(f"10.0.0.{i}/32") for i in range(100)]
    maps.upsert_sets([IpSet("s", "d", frozenset(nets))])
    chain = Chain(profiles=(PolicyProgram("x", (rule(Action.ALLOW, src_sets=("s",)),)),))
    uses = policy.Wanted("a", 1, ((), (), (), (), (), (), (), ()), frozenset({"s"}), "a")
    other = policy.Wanted("b", 1, ((), (), (), (), (), (), (), ()), frozenset(), "b")
    prog, _ = program.compile_chains((chain,), maps.set_ids)
    uses = attrs.evolve(uses, programs=(prog, *uses.programs[1:]))
    maps.sync_interfaces({1: uses, 2: other})
    gens = {i: c.gen for i, c in maps.installed.items()}
    sets.writes = ifpol.writes = 0
    changed = maps.upsert_sets(
        [IpSet("s", "d", frozenset([*nets[1:], ipaddress.ip_network("10.1.0.0/16")]))]
    )
    maps.bump(changed)
    assert sets.writes == 2 and ifpol.writes == 1
    assert maps.installed[1].gen > max(gens.values()) and maps.installed[2].gen == gens[2]


def test_generations_are_never_used_twice_even_when_an_interface_comes_back() -> None:
    ifpol = FakeMap()
    maps = policy.PolicyMaps(FakeMap(), FakeMap(), ifpol, FakeMap(), FakeMap(), 1000)  # type: ignore[arg-type]
    maps.load()
    empty = policy.Wanted("a", 1, ((), (), (), (), (), (), (), ()), frozenset(), "a")
    used: set[int] = set()
    before: dict[int, int] = {}
    for want in ({1: empty}, {}, {1: empty}, {2: empty}, {1: empty, 2: empty}):
        maps.sync_interfaces(want)
        now = {i: c.gen for i, c in maps.installed.items()}
        fresh = {g for i, g in now.items() if before.get(i) != g}
        assert not fresh & used and 0 not in fresh
        used |= fresh
        before = now
    assert len(used) == 4  # 1, 1 again, 2, 1 again

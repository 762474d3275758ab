"""The iptables backend with real packets in a lab: services, policy, failures, restart.

Each test programs node-0 of a two-node lab through :class:`IptablesBackend`
directly (IR built by hand), once per iptables flavour, and cleans up after
itself; the lab fixture removes the namespaces at the end of the module.
"""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Iterator

import attrs
import pytest

from dataplane.backends.iptables import IptablesBackend
from dataplane.backends.iptables._exec import Runner
from dataplane.backends.iptables.flavour import Flavour
from dataplane.calc.ir import (
    Backend,
    Chain,
    ChainEnd,
    DataplaneIR,
    Direction,
    Frontend,
    FrontendKind,
    HostProgram,
    IpSet,
    IRDelta,
    IRRule,
    IRSettings,
    NoEndpoints,
    PolicyProgram,
    PortMatch,
    Route,
    RuleRef,
    SourceClass,
    TierProgram,
    WorkloadProgram,
)
from dataplane.engine.config import DataplaneConfig
from dataplane.errors import BackendError
from dataplane.lab import Lab, LabSpec
from dataplane.model import (
    Action,
    EndpointToHostAction,
    ExternalServiceMode,
    ObjectKey,
    PortRange,
    Protocol,
    ProtoPort,
    TierDefault,
)

pytestmark = [pytest.mark.kernel]

VIP = ipaddress.ip_address("10.96.0.10")
NODE_PORT = 30080


@pytest.fixture(scope="module")
def lab_spec() -> LabSpec:
    return LabSpec.uniform(2, 2, fabric_clients=1)


@pytest.fixture(scope="module")
def routed_lab(lab: Lab) -> Lab:
    """node-0 routes service VIPs somewhere, as nodes with a default route do
    (the route lookup happens before nat OUTPUT rewrites the destination)."""
    lab.add_route("node-0", "10.96.0.0/16", via="node-1")
    return lab


MODES = {  # id: (iptables flavour, who NATs services)
    "legacy": ("legacy", "iptables"),
    "nft": ("nft", "iptables"),
    "legacy-nftables-nat": ("legacy", "nftables"),
    "nft-nftables-nat": ("nft", "nftables"),
}


@pytest.fixture(params=list(MODES))
def backend(request: pytest.FixtureRequest, routed_lab: Lab) -> Iterator[IptablesBackend]:
    lab = routed_lab
    node = lab.nodes["node-0"]
    before = _tables(node.netns)
    be = IptablesBackend(_config(lab, *MODES[request.param]))
    be.start()
    try:
        yield be
    finally:
        be.cleanup()
    assert _tables(node.netns) == before, "cleanup must leave the tables as it found them"


def _config(lab: Lab, flavour: str, nat: str) -> DataplaneConfig:
    node = lab.nodes["node-0"]
    return DataplaneConfig(
        backend="iptables",
        node_name="node-0",
        netns=node.netns,
        instance=f"{lab.prefix}-n0",
        options={"iptables_flavour": flavour, "iptables_nat": nat},
    )


def _tables(netns: str) -> str:
    """Rules, sets and nft tables in the namespace, without comments and counters
    (iptables-nft-save shows iptables' own tables only; ``nft list tables`` shows ours)."""
    runner = Runner(netns)
    out = []
    for tool in ("iptables-legacy-save", "iptables-nft-save"):
        text = runner.run([tool])
        out += [line for line in text.splitlines() if line.startswith(("-A", ":DP"))]
    out += runner.run(["ipset", "list", "-n"]).split()
    out += [line for line in runner.run(["nft", "list", "tables"]).splitlines() if "DP-" in line]
    return "\n".join(out)


def _addr(text: str) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(text)


def _settings(lab: Lab, **changes: object) -> IRSettings:
    base = IRSettings(
        node="node-0",
        local_addresses=(_addr(lab.nodes["node-0"].ip),),
        cluster_cidrs=(ipaddress.ip_network("10.100.0.0/16"),),
        failsafe_inbound=(ProtoPort("tcp", 22),),
        failsafe_outbound=(ProtoPort("udp", 53),),
        external_service_mode=ExternalServiceMode.TUNNEL,
        endpoint_to_host_action=EndpointToHostAction.ACCEPT,
        host_interface_pattern="^eth",
        workload_interface_prefix="dpw",
    )
    return attrs.evolve(base, **changes)


def _backend(lab: Lab, pod: str, port: int = 8080) -> Backend:
    info = lab.pods[pod]
    return Backend(_addr(info.ip), port, info.node, info.node == "node-0")


def _cluster_ip(
    backends: tuple[Backend, ...],
    proto: Protocol = Protocol.TCP,
    vip: ipaddress.IPv4Address = VIP,
    **kw: object,
) -> Frontend:
    return Frontend(
        vip,
        proto,
        80,
        FrontendKind.CLUSTER_IP,
        "default/web",
        (Route(SourceClass.POD, backends, False), Route(SourceClass.ANY, backends, True)),
        **kw,  # type: ignore[arg-type]
    )


def _node_port(lab: Lab, routes: tuple[Route, ...]) -> Frontend:
    return Frontend(
        _addr(lab.nodes["node-0"].ip),
        Protocol.TCP,
        NODE_PORT,
        FrontendKind.NODE_PORT,
        "default/web",
        routes,
    )


def _ir(lab: Lab, *frontends: Frontend, **kw: object) -> DataplaneIR:
    return DataplaneIR(settings=_settings(lab), frontends={f.key: f for f in frontends}, **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------ services


def test_cluster_ip_from_pod_keeps_source_from_node_is_masqueraded(
    lab: Lab, backend: IptablesBackend
) -> None:
    target = _backend(lab, "default/pod-1-0")
    backend.apply(IRDelta(ir=_ir(lab, _cluster_ip((target,))), full=True))
    from_pod = lab.probe("default/pod-0-0", str(VIP), 80)
    assert from_pod.connected, from_pod
    assert from_pod.server_pod == "default/pod-1-0"
    assert from_pod.seen_source == lab.pods["default/pod-0-0"].ip  # POD route: no SNAT
    from_host = lab.probe("node-0", str(VIP), 80)
    assert from_host.connected, from_host
    assert from_host.seen_source == lab.nodes["node-0"].ip  # ANY route: masquerade


def test_even_spread_and_hairpin(lab: Lab, backend: IptablesBackend) -> None:
    pods = ("default/pod-0-0", "default/pod-1-0", "default/pod-1-1")
    backend.apply(
        IRDelta(ir=_ir(lab, _cluster_ip(tuple(_backend(lab, p) for p in pods))), full=True)
    )
    seen: dict[str | None, int] = {}
    for _ in range(60):
        result = lab.probe("default/pod-0-1", str(VIP), 80)
        seen[result.server_pod] = seen.get(result.server_pod, 0) + 1
    assert set(seen) == set(pods) and min(seen.values()) >= 8, seen
    for _ in range(20):  # a pod reaching itself through the service is masqueraded
        result = lab.probe("default/pod-0-0", str(VIP), 80)
        if result.server_pod == "default/pod-0-0":
            assert result.seen_source == lab.nodes["node-0"].ip
        else:
            assert result.seen_source == lab.pods["default/pod-0-0"].ip


def test_node_port_cluster_masquerades_local_keeps_source(
    lab: Lab, backend: IptablesBackend
) -> None:
    remote, local = _backend(lab, "default/pod-1-0"), _backend(lab, "default/pod-0-0")
    cluster = _node_port(lab, (Route(SourceClass.ANY, (remote,), True),))
    backend.apply(IRDelta(ir=_ir(lab, cluster), full=True))
    result = lab.probe("client-0", lab.nodes["node-0"].ip, NODE_PORT)
    assert result.server_pod == "default/pod-1-0", result
    assert result.seen_source == lab.nodes["node-0"].ip
    local_only = _node_port(lab, (Route(SourceClass.ANY, (local,), False, NoEndpoints.DROP),))
    backend.apply(IRDelta(ir=_ir(lab, local_only), frontends_upserted=(local_only,)))
    result = lab.probe("client-0", lab.nodes["node-0"].ip, NODE_PORT)
    assert result.server_pod == "default/pod-0-0", result
    assert result.seen_source == lab.clients["client-0"].ip


def test_no_endpoints_reject_or_drop_and_source_ranges(lab: Lab, backend: IptablesBackend) -> None:
    reject = _cluster_ip(())
    drop = Frontend(
        _addr("10.96.0.11"),
        Protocol.TCP,
        80,
        FrontendKind.CLUSTER_IP,
        "x/drop",
        (Route(SourceClass.ANY, (), True, NoEndpoints.DROP),),
    )
    ranged = Frontend(
        _addr("10.96.0.12"),
        Protocol.TCP,
        80,
        FrontendKind.LOAD_BALANCER,
        "x/lb",
        (Route(SourceClass.ANY, (_backend(lab, "default/pod-1-1"),), True),),
        source_ranges=(ipaddress.ip_network(lab.pods["default/pod-0-0"].ip),),
    )
    backend.apply(IRDelta(ir=_ir(lab, reject, drop, ranged), full=True))
    assert lab.probe("default/pod-0-0", str(VIP), 80).outcome == "refused"
    assert lab.probe("default/pod-0-0", "10.96.0.11", 80, timeout=0.5).outcome == "timeout"
    assert lab.probe("default/pod-0-0", "10.96.0.12", 80).server_pod == "default/pod-1-1"
    assert lab.probe("default/pod-0-1", "10.96.0.12", 80, timeout=0.5).outcome == "timeout"


def test_affinity_sticks(lab: Lab, backend: IptablesBackend) -> None:
    pods = ("default/pod-0-0", "default/pod-1-0", "default/pod-1-1")
    fe = _cluster_ip(tuple(_backend(lab, p) for p in pods), affinity_timeout=60)
    backend.apply(IRDelta(ir=_ir(lab, fe), full=True))
    first = lab.probe("default/pod-0-1", str(VIP), 80).server_pod
    assert {lab.probe("default/pod-0-1", str(VIP), 80).server_pod for _ in range(15)} == {first}


@pytest.mark.parametrize("proto", ["udp", "sctp"])
def test_udp_and_sctp(lab: Lab, backend: IptablesBackend, proto: str) -> None:
    if proto == "sctp" and not lab.sctp_supported:
        pytest.skip("no SCTP in this kernel")
    fe = _cluster_ip((_backend(lab, "default/pod-1-0"),), Protocol[proto.upper()])
    backend.apply(IRDelta(ir=_ir(lab, fe), full=True))
    result = lab.probe("default/pod-0-0", str(VIP), 80, proto)  # type: ignore[arg-type]
    assert result.server_pod == "default/pod-1-0", result


def test_udp_conntrack_follows_backend_change(lab: Lab, backend: IptablesBackend) -> None:
    old, new = _backend(lab, "default/pod-1-0"), _backend(lab, "default/pod-1-1")
    fe = _cluster_ip((old,), Protocol.UDP)
    backend.apply(IRDelta(ir=_ir(lab, fe), full=True))
    conn = lab.open_connection("default/pod-0-0", str(VIP), 80, "udp")
    assert conn.initial.server_host == "default/pod-1-0"
    assert f"src={old.address} " in _udp_flows(lab)
    moved = _cluster_ip((new,), Protocol.UDP)
    backend.apply(IRDelta(ir=_ir(lab, moved), frontends_upserted=(moved,)))
    assert f"src={old.address} " not in _udp_flows(lab), "the stale entry must be deleted"
    assert conn.ping()  # the same socket's next datagram is NATed afresh
    assert f"src={new.address} " in _udp_flows(lab)
    conn.close()


def _udp_flows(lab: Lab) -> str:
    return Runner(lab.nodes["node-0"].netns).run(
        ["conntrack", "-L", "-p", "udp", "--orig-dst", str(VIP)]
    )


# ------------------------------------------------------------------ policy


def _rule(action: Action, index: int, **kw: object) -> IRRule:
    return IRRule(action, RuleRef("default/p", Direction.INGRESS, index), **kw)  # type: ignore[arg-type]


def _chain(*rules: IRRule, end: ChainEnd = ChainEnd.DENY) -> Chain:
    tier = TierProgram("default", TierDefault.DENY, (PolicyProgram("default/p", rules),))
    return Chain(tiers=(tier,), end=end)


def test_workload_policy_allows_set_members_only(lab: Lab, backend: IptablesBackend) -> None:
    target = lab.pods["default/pod-0-1"]
    friends = IpSet(
        "sfriends",
        "friends",
        nets=frozenset({ipaddress.ip_network(lab.pods["default/pod-0-0"].ip)}),
    )
    web = IpSet(
        "nweb",
        "named port web",
        ports=frozenset({(ipaddress.ip_network(target.ip), Protocol.TCP, 8080)}),
    )
    ingress = _chain(
        _rule(Action.LOG, 0),
        _rule(
            Action.ALLOW,
            1,
            protocol=6,
            src_sets=("sfriends",),
            dst_ports=PortMatch(named_sets=("nweb",)),
        ),
        _rule(Action.ALLOW, 2, protocol=1, icmp_type=8),
        _rule(Action.ALLOW, 3, protocol=17, dst_ports=PortMatch((PortRange(8000, 8100),))),
    )
    program = WorkloadProgram(
        ObjectKey("WorkloadEndpoint", "default", "pod-0-1"),
        target.interface,
        (_addr(target.ip),),
        ingress,
        Chain(end=ChainEnd.ALLOW),
    )
    ir = _ir(lab, ip_sets={s.id: s for s in (friends, web)}, workloads={program.key: program})
    backend.apply(IRDelta(ir=ir, full=True))
    assert lab.probe("default/pod-0-0", target.ip, 8080).connected
    assert lab.probe("default/pod-1-0", target.ip, 8080, timeout=0.5).outcome == "timeout"
    assert lab.probe("client-0", target.ip, 8080, timeout=0.5).outcome == "timeout"
    assert lab.probe("default/pod-1-0", target.ip, 8080, "udp").connected
    assert lab.probe("node-0", target.ip, 8080).connected  # host → local pod is never policed


def test_pass_and_tier_end(lab: Lab, backend: IptablesBackend) -> None:
    target = lab.pods["default/pod-0-1"]
    passing = TierProgram(
        "security",
        TierDefault.DENY,
        (PolicyProgram("gnp:pass", (_rule(Action.PASS, 0, protocol=6),)),),
    )
    denying = TierProgram("default", TierDefault.DENY, (PolicyProgram("default/none", ()),))
    profile = PolicyProgram("profile:allow", (_rule(Action.ALLOW, 0),))
    program = WorkloadProgram(
        ObjectKey("WorkloadEndpoint", "default", "pod-0-1"),
        target.interface,
        (_addr(target.ip),),
        Chain(tiers=(passing,), profiles=(profile,)),
        Chain(end=ChainEnd.ALLOW),
    )
    backend.apply(IRDelta(ir=_ir(lab, workloads={program.key: program}), full=True))
    assert lab.probe("default/pod-0-0", target.ip, 8080).connected  # passed → profile allows
    assert lab.probe("default/pod-0-0", target.ip, 8080, "udp", 0.5).outcome == "timeout"
    program2 = attrs.evolve(program, ingress=Chain(tiers=(passing, denying), profiles=(profile,)))
    backend.apply(
        IRDelta(ir=_ir(lab, workloads={program.key: program2}), workloads_upserted=(program2,))
    )
    assert lab.probe("default/pod-0-0", target.ip, 8080, timeout=0.5).outcome == "timeout"


@pytest.fixture(scope="module")
def node_servers(lab: Lab) -> None:
    lab.serve("node-0", 22)
    lab.serve("node-0", 9100)


@pytest.mark.usefixtures("node_servers")
def test_host_endpoint_deny_all_keeps_failsafe(lab: Lab, backend: IptablesBackend) -> None:
    node = lab.nodes["node-0"]
    hep = HostProgram(
        ObjectKey("HostEndpoint", "", "node-0-uplink"),
        node.uplink,
        (_addr(node.ip),),
        ingress=Chain(),
        egress=Chain(),
    )
    backend.apply(IRDelta(ir=_ir(lab, hosts={hep.key: hep}), full=True))
    assert lab.probe("client-0", node.ip, 22).connected
    assert lab.probe("client-0", node.ip, 9100, timeout=0.5).outcome == "timeout"
    assert lab.probe("default/pod-0-0", node.ip, 9100).connected  # workload → host: Accept


# ------------------------------------------------------------------ failure and restart


@attrs.frozen
class _BrokenRunner(Runner):
    """Appends a rule the kernel refuses to the nat block (iptables) or to the end of the
    script (nft): the write fails midway."""

    def restore(self, tool: str, payload: str) -> None:
        bad = payload.replace("*nat\n", "*nat\n-A NO-SUCH-CHAIN -j ACCEPT\n")
        super().restore(tool, bad)

    def nft(self, script: str) -> None:
        super().nft(script + "add rule ip no-such-table no-such-chain accept\n")


def test_failed_restore_keeps_old_rules_and_full_apply_converges(
    lab: Lab, backend: IptablesBackend
) -> None:
    node = lab.nodes["node-0"]
    first = _cluster_ip((_backend(lab, "default/pod-1-0"),))
    backend.apply(IRDelta(ir=_ir(lab, first), full=True))
    rules_before = _own_rules(node.netns)
    second = _cluster_ip((_backend(lab, "default/pod-1-1"),))
    good = backend._runner
    backend._runner = _BrokenRunner(good.netns)
    with pytest.raises(BackendError):
        backend.apply(IRDelta(ir=_ir(lab, second), frontends_upserted=(second,)))
    assert _own_rules(node.netns) == rules_before
    assert lab.probe("default/pod-0-0", str(VIP), 80).server_pod == "default/pod-1-0"
    backend._runner = good
    backend.apply(IRDelta(ir=_ir(lab, second), full=True))
    assert lab.probe("default/pod-0-0", str(VIP), 80).server_pod == "default/pod-1-1"


def _own_rules(netns: str) -> list[str]:
    """Own iptables rules and the whole nft ruleset (both without counters)."""
    text = _tables(netns)
    nft_rules = Runner(netns).run(["nft", "list", "ruleset"])
    iptables_rules = [line for line in text.splitlines() if line.startswith("-A")]
    return iptables_rules + [line for line in nft_rules.splitlines() if "counter" not in line]


def test_restart_adopts_without_rewriting(lab: Lab, backend: IptablesBackend) -> None:
    # two backends: the statistic rules must be rendered the way save prints them too
    fe = _cluster_ip((_backend(lab, "default/pod-1-0"), _backend(lab, "default/pod-1-1")))
    ir = _ir(lab, fe)
    backend.apply(IRDelta(ir=ir, full=True))
    conn = lab.open_connection("default/pod-0-0", str(VIP), 80)
    options = backend.config.options
    successor = IptablesBackend(_config(lab, options["iptables_flavour"], options["iptables_nat"]))
    successor.start()
    writes: list[str] = []
    successor._runner = _CountingRunner(successor._runner.netns, writes)
    successor.apply(IRDelta(ir=ir, full=True))
    assert writes == [], "an unchanged rule set is adopted, not rewritten"
    assert conn.ping()
    dump = successor.dump()
    assert "default/web" in dump["services"] and dump["adopted_not_wanted"] == []
    conn.close()


def test_switching_who_nats_converges(lab: Lab, backend: IptablesBackend) -> None:
    """A restart with the other ``iptables_nat`` takes over: the new mode's NAT is installed,
    the old mode's is removed by the same full apply, and traffic keeps flowing."""
    ir = _ir(lab, _cluster_ip((_backend(lab, "default/pod-1-0"),)))
    backend.apply(IRDelta(ir=ir, full=True))
    options = backend.config.options
    flavour, before = options["iptables_flavour"], options["iptables_nat"]
    other = "iptables" if before == "nftables" else "nftables"
    netns = lab.nodes["node-0"].netns
    for nat in (other, before):
        successor = IptablesBackend(_config(lab, flavour, nat))
        successor.start()
        successor.apply(IRDelta(ir=ir, full=True))
        probe = lab.probe("default/pod-0-0", str(VIP), 80)
        assert probe.server_pod == "default/pod-1-0", (nat, probe)
        nft_tables = Runner(netns).run(["nft", "list", "tables"])
        own_nat_chains = [c for t, c in successor._read(Flavour(flavour)).chains if t == "nat"]
        if nat == "nftables":
            assert successor._nft_table in nft_tables and own_nat_chains == []
        else:
            assert successor._nft_table not in nft_tables and own_nat_chains


@attrs.frozen
class _CountingRunner(Runner):
    writes: list[str] = attrs.field(factory=list, eq=False)

    def restore(self, tool: str, payload: str) -> None:
        self.writes.append(payload)
        super().restore(tool, payload)

    def ipset_restore(self, payload: str, *, busy_wait: float = 0.0) -> None:
        if payload:
            self.writes.append(payload)
        super().ipset_restore(payload, busy_wait=busy_wait)

    def nft(self, script: str) -> None:
        self.writes.append(script)
        super().nft(script)


def test_root_namespace_untouched() -> None:
    """Nothing of ours in the machine's own namespace (run last in this module)."""
    for tool in ("iptables-legacy-save", "iptables-nft-save"):
        text = subprocess.run([tool], capture_output=True, text=True, check=False).stdout
        assert "DP-" not in text
    sets = subprocess.run(["ipset", "list", "-n"], capture_output=True, text=True, check=False)
    assert "DP-" not in sets.stdout
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=False)
    assert "DP-" not in tables.stdout

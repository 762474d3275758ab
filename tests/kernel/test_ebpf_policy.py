"""eBPF policy with real packets: failsafes under a deny-all host endpoint, revocation of
established flows (policy and IP-set changes), dump and rule hit counters.

The behaviour suite (tests/behaviour) checks each policy scenario's outcome
against the reference; these tests check what only a kernel shows: that
verdicts kept in conntrack are re-judged when the policy changes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import pytest

from dataplane import DesiredState
from dataplane.backends.ebpf import EbpfBackend, _libbpf, _netns
from dataplane.lab import Lab, packets
from dataplane.lab.netns import unavailable_reason
from dataplane.model import EntityMatch, HostEndpoint, Policy, Rule, StateObject, WorkloadEndpoint
from dataplane.scenarios.cluster import STANDARD_SPEC, base_objects

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason())),
    pytest.mark.skipif(
        EbpfBackend.unavailable_reason() is not None,
        reason=str(EbpfBackend.unavailable_reason()),
    ),
]

W1, C1, W2 = "default/web-1", "default/cli-1", "default/web-2"
PORT = 8080
TC_ACT_SHOT = 2


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(STANDARD_SPEC) as running:
        running.serve("ext", 6443)  # an outbound failsafe port
        running.serve("ext", PORT)
        yield running


@pytest.fixture(scope="module")
def planes(lab: Lab) -> Iterator[dict[str, Any]]:
    started: dict[str, Any] = {}
    try:
        for name in lab.nodes:
            started[name] = lab.dataplane(name, backend="ebpf", resync_period=0).start()
        yield started
    finally:
        for dp in started.values():
            dp.cleanup()
            dp.close()


def apply(lab: Lab, planes: dict[str, Any], extra: Sequence[StateObject] = ()) -> None:
    state = DesiredState([*base_objects(lab.plan), *extra])
    for dp in planes.values():
        dp.apply(state)


def web_only_from_cli() -> Policy:
    return Policy(
        "web-from-cli",
        "default",
        selector='app == "web"',
        ingress=[Rule("Allow", source=EntityMatch(selector='app == "cli"'))],
    )


def wait_until_broken(conn: Any, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not conn.ping():
            return True
    return False


def test_deny_all_host_endpoint_keeps_failsafes(lab: Lab, planes: dict[str, Any]) -> None:
    apply(lab, planes, [HostEndpoint("n1-all", "n1", "*")])  # no policy: deny all
    assert lab.probe("ext", "n1", 22).connected, "inbound failsafe tcp:22"
    assert lab.probe("ext", "n1", PORT).outcome == "timeout"
    assert lab.probe("ext", "n1", PORT, "udp").outcome == "timeout"
    assert lab.probe("n1", "ext", 6443).connected, "outbound failsafe tcp:6443"
    assert lab.probe("n1", "ext", PORT).outcome == "timeout"
    assert lab.probe("ext", "n2", PORT).connected, "the other node has no host endpoint"
    assert lab.probe(C1, W2, PORT).connected, "forwarded traffic is not host traffic"
    apply(lab, planes)
    assert lab.probe("ext", "n1", PORT).connected


def test_revoked_policy_stops_an_established_connection(lab: Lab, planes: dict[str, Any]) -> None:
    apply(lab, planes)
    with lab.open_connection(C1, W1, PORT, interval=0.1, timeout=0.5) as conn:
        assert conn.ping()
        deny = Policy("deny-web", "default", selector='app == "web"', types=["Ingress"])
        apply(lab, planes, [deny])
        assert wait_until_broken(conn), "a revoked permission must stop the flow"
        assert conn.status().failures > 0
    assert lab.probe(C1, W1, PORT).outcome == "timeout"
    apply(lab, planes)
    assert lab.probe(C1, W1, PORT).connected


def test_a_reused_tuple_is_judged_by_the_policy_of_its_time(
    lab: Lab, planes: dict[str, Any]
) -> None:
    """Each new connection from one source port replaces the closed one's
    policy-conntrack entry (rewritten in place): allowed while policy allows
    it, dropped once policy denies it, allowed again after."""
    sport = 41002
    apply(lab, planes, [web_only_from_cli()])
    for _ in range(3):
        assert lab.probe(C1, W1, PORT, sport=sport).connected
    deny = Policy("deny-web", "default", selector='app == "web"', types=["Ingress"])
    apply(lab, planes, [deny])
    assert lab.probe(C1, W1, PORT, timeout=0.5, sport=sport).outcome == "timeout"
    apply(lab, planes, [web_only_from_cli()])
    assert lab.probe(C1, W1, PORT, sport=sport).connected
    apply(lab, planes)


def test_ip_set_member_removal_stops_its_flow(lab: Lab, planes: dict[str, Any]) -> None:
    apply(lab, planes, [web_only_from_cli()])
    with lab.open_connection(C1, W1, PORT, interval=0.1, timeout=0.5) as conn:
        assert conn.ping()
        relabelled = [
            attrs.evolve(o, labels={"app": "other"})
            if isinstance(o, WorkloadEndpoint) and f"{o.namespace}/{o.name}" == C1
            else o
            for o in base_objects(lab.plan)
        ]
        state = DesiredState([*relabelled, web_only_from_cli()])
        for dp in planes.values():
            dp.apply(state)
        assert wait_until_broken(conn), "leaving the allowed set must stop the flow"
    apply(lab, planes)


def host_deny() -> list[StateObject]:
    """A host endpoint on every interface of n1 whose policy denies TCP to PORT."""
    return [
        HostEndpoint("n1-all", "n1", "*", labels={"role": "node"}),
        Policy(
            "host-deny",
            None,
            selector='role == "node"',
            ingress=[Rule("Deny", "TCP", destination=EntityMatch(ports=[PORT]))],
        ),
    ]


def test_early_allow_is_kept_for_re_evaluation(lab: Lab, planes: dict[str, Any]) -> None:
    """A preDNAT allow (judged on a flow's first packet) keeps skipping the normal host
    policy when the flow is judged again; a doNotTrack allow is judged per packet, so
    revoking it stops the flow."""
    ext = EntityMatch(nets=[f"{lab.host('ext').ip}/32"])
    base = host_deny()
    bump = Policy("bump", None, selector='role == "node"', ingress=[Rule("Allow", "UDP")])

    def early(**flags: bool) -> Policy:
        reply = Rule("Allow", "TCP", source=EntityMatch(ports=[PORT]), destination=ext)
        return Policy(
            "early-allow",
            None,
            selector='role == "node"',
            apply_on_forward=True,
            ingress=[Rule("Allow", "TCP", source=ext, destination=EntityMatch(ports=[PORT]))],
            egress=[reply] if flags.get("do_not_track") else [],
            **flags,  # type: ignore[arg-type]
        )

    pre = early(pre_dnat=True)
    apply(lab, planes, [*base, pre])
    with lab.open_connection("ext", "n1", PORT, interval=0.1, timeout=0.5) as conn:
        assert conn.ping()
        apply(lab, planes, [*base, pre, bump])  # a new generation: the flow is judged again
        assert not wait_until_broken(conn, 1.5), "the preDNAT allow must still skip host-deny"
    untracked = early(do_not_track=True)
    apply(lab, planes, [*base, untracked])
    with lab.open_connection("ext", "n1", PORT, interval=0.1, timeout=0.5) as conn:
        assert conn.ping()
        apply(lab, planes, [*base, untracked, bump])
        assert not wait_until_broken(conn, 1.5), "the doNotTrack allow must still skip host-deny"
        apply(lab, planes, base)
        assert wait_until_broken(conn), "a revoked doNotTrack allow must stop the flow"
    apply(lab, planes)


def test_a_host_endpoint_that_returns_judges_established_flows_again(
    lab: Lab, planes: dict[str, Any]
) -> None:
    """A flow allowed under a host endpoint's policy, which is then removed and comes
    back with a policy that denies the flow: the verdict kept from the first time must
    not pass for current (generations are never used twice), so the flow stops."""
    hep = HostEndpoint("n1-all", "n1", "*", labels={"role": "node"})

    def host_policy(action: str) -> Policy:
        rule = Rule(action, "TCP", destination=EntityMatch(ports=[PORT]))  # type: ignore[arg-type]
        return Policy("host", None, selector='role == "node"', ingress=[rule])

    apply(lab, planes, [hep, host_policy("Allow")])
    with lab.open_connection("ext", "n1", PORT, interval=0.1, timeout=0.5) as conn:
        assert conn.ping()
        apply(lab, planes)  # no host endpoint: nothing to judge
        assert conn.ping()
        apply(lab, planes, [hep, host_policy("Deny")])
        assert wait_until_broken(conn), "the returning host endpoint's deny must stop the flow"
    apply(lab, planes)


def test_a_reply_judged_first_after_a_revoked_do_not_track_allow_does_not_keep_it(
    lab: Lab, planes: dict[str, Any]
) -> None:
    """A doNotTrack verdict is the packet's own, and only packets from the network
    bring the ingress one. When the allow is revoked and a reply of the flow is the
    first of its packets judged under the new policy, the reply must not carry the
    old allow into the new generation: the flow stops."""
    ext = EntityMatch(nets=[f"{lab.host('ext').ip}/32"])
    base = host_deny()
    untracked = Policy(
        "untracked-allow",
        None,
        selector='role == "node"',
        do_not_track=True,
        apply_on_forward=True,
        ingress=[Rule("Allow", "TCP", source=ext, destination=EntityMatch(ports=[PORT]))],
        egress=[Rule("Allow", "TCP", source=EntityMatch(ports=[PORT]), destination=ext)],
    )
    node = lab.nodes["n1"]
    to_hep = planes["n1"].backend.program_fds()["dp_to_hep"]
    apply(lab, planes, [*base, untracked])
    with lab.open_connection("ext", "n1", PORT, timeout=0.5) as conn:  # pings only when asked
        assert conn.ping()
        port = conn.status().local_port
        assert port
        time.sleep(0.3)  # the client's delayed ACK of the echo has gone by
        apply(lab, planes, base)
        reply = packets.tcp(node.ip, PORT, lab.host("ext").ip, port)

        def run() -> int:
            ifindex = _netns.links(node.netns)[node.uplink]
            return _libbpf.prog_test_run(to_hep, reply, ifindex).retval

        assert _netns.run_in_netns(node.netns, run) == TC_ACT_SHOT
        assert wait_until_broken(conn), "the revoked doNotTrack allow must stop the flow"
    apply(lab, planes)


def test_dump_shows_programs_sets_and_rule_hits(lab: Lab, planes: dict[str, Any]) -> None:
    apply(lab, planes, [web_only_from_cli()])
    assert lab.probe(C1, W1, PORT).connected
    backend = planes["n1"].backend
    dump = backend.dump()
    web = lab.pods[W1].interface
    to_pod = dump["policy"][web]["chains"]["to"]
    assert any("allow" in line and "default/web-from-cli ingress[0]" in line for line in to_pod)
    cli_ip = lab.pods[C1].ip
    assert any(f"{cli_ip}/32" in members for members in dump["ip_sets"].values())
    assert backend.rule_hits()["default/web-from-cli ingress[0]"] >= 1
    apply(lab, planes)

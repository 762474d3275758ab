"""Real packets through a lab with no data plane: plain routing must just work."""

from __future__ import annotations

import subprocess
import time

import pytest

from dataplane.lab import Lab, LabSpec, ProbeRequest
from dataplane.lab.netns import unavailable_reason

pytest_plugins = ["dataplane.lab.pytest_plugin"]
pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason())),
]


@pytest.fixture(scope="module")
def lab_spec() -> LabSpec:
    return LabSpec.uniform(2, 2, fabric_clients=1, remote_clients=1)


PATHS = [
    ("default/pod-0-0", "default/pod-0-1"),  # same node
    ("default/pod-0-0", "default/pod-1-0"),  # across nodes
    ("client-0", "default/pod-1-1"),  # fabric client to pod (pod CIDRs are routed)
    ("remote-0", "default/pod-1-0"),  # client outside the node subnet, through the router
    ("node-0", "default/pod-1-1"),  # host network to a remote pod
    ("default/pod-1-0", "remote-0"),  # pod out to a client behind the router
]


@pytest.mark.parametrize("proto", ["tcp", "udp", "sctp"])
@pytest.mark.parametrize("src, dst", PATHS)
def test_echo_sees_the_client_address(lab: Lab, src: str, dst: str, proto: str) -> None:
    if proto == "sctp" and not lab.sctp_supported:
        pytest.skip("kernel without SCTP (CONFIG_IP_SCTP not set)")
    if dst == "remote-0":
        lab.serve(dst, 9000, proto)  # type: ignore[arg-type]
        port = 9000
    else:
        port = 8080
    result = lab.probe(src, dst, port, proto)  # type: ignore[arg-type]
    assert result.outcome == "connected", result
    assert result.seen_source == lab.host(src).ip
    assert result.seen_sport == result.local_port
    assert result.seen_dest == lab.host(dst).ip
    assert result.reply_source == lab.host(dst).ip
    assert result.server_host == lab.host(dst).key


def test_client_reaches_node_ip(lab: Lab) -> None:
    lab.serve("node-1", 9100)
    result = lab.probe("client-0", "node-1", 9100)
    assert result.connected and result.server_node == "node-1" and result.server_pod is None
    assert result.seen_source == lab.clients["client-0"].ip
    assert lab.probe("remote-0", lab.nodes["node-1"].ip, 9100).seen_source == "10.98.0.10"


def test_server_reports_node_and_pod(lab: Lab) -> None:
    result = lab.probe("client-0", lab.pods["default/pod-1-1"].ip, 8080)
    assert (result.server_node, result.server_pod) == ("node-1", "default/pod-1-1")


def test_failure_outcomes(lab: Lab) -> None:
    assert lab.probe("client-0", "default/pod-0-0", 9999).outcome == "refused"
    assert lab.probe("client-0", "default/pod-0-0", 9999, "udp").outcome == "refused"
    # no route anywhere for service VIPs until a test adds one
    assert lab.probe("client-0", "10.96.0.10", 80).outcome == "unreachable"
    # a pod-CIDR address nobody has: the node has no route for it
    assert lab.probe("client-0", "10.100.0.200", 8080, timeout=0.5).outcome in (
        "unreachable",
        "timeout",
    )


def test_probes_refuse_non_lab_destinations(lab: Lab) -> None:
    with pytest.raises(Exception, match="not a lab address"):
        lab.probe("client-0", "192.0.2.1", 80)


def test_many_probes_run_in_parallel(lab: Lab) -> None:
    requests = [
        ProbeRequest(src, lab.host(dst).ip, 8080, "tcp", 0.5)
        for src in ("client-0", "remote-0", "default/pod-0-0")
        for dst in lab.pods
    ]
    requests += [ProbeRequest("client-0", "default/pod-0-0", 9999, "tcp", 0.5)] * 4
    # four probes that time out: parallel means the batch takes ~one timeout, not four
    requests += [ProbeRequest("client-0", "10.100.0.250", 8080, "tcp", 0.5)] * 4
    started = time.monotonic()
    results = lab.probe_many(requests)
    assert time.monotonic() - started < 1.5
    assert [r.outcome for r in results[:12]] == ["connected"] * 12
    assert [r.outcome for r in results[12:16]] == ["refused"] * 4


def test_probe_cost_is_a_pipe_round_trip(lab: Lab) -> None:
    started = time.monotonic()
    for _ in range(100):
        assert lab.probe("client-0", "default/pod-1-0", 8080).connected
    assert (time.monotonic() - started) / 100 < 0.02


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_long_lived_connection_keeps_pinging(lab: Lab, proto: str) -> None:
    with lab.open_connection(
        "remote-0",
        "default/pod-0-1",
        8080,
        proto,  # type: ignore[arg-type]
        interval=0.02,
    ) as conn:
        time.sleep(0.2)
        assert conn.ping()
        status = conn.status()
        assert status.healthy and status.pings >= 5, status
        assert status.seen_source == "10.98.0.10"
        assert status.server_host == "default/pod-0-1"


def test_long_lived_connection_notices_a_broken_path() -> None:
    with Lab(LabSpec.uniform(1, 1, fabric_clients=1)) as small:
        conn = small.open_connection("client-0", "default/pod-0-0", 8080, timeout=0.3)
        assert conn.ping()
        cut = small.spawn("default/pod-0-0", ["ip", "link", "set", "eth0", "down"])
        assert cut.wait(timeout=5) == 0
        assert not conn.ping()
        status = conn.status()
        assert not status.open and status.failures == 1 and status.last_error


def test_capture_shows_the_path(lab: Lab) -> None:
    node1 = lab.nodes["node-1"]
    with lab.capture("node-1", interface=node1.uplink, proto="tcp", port=8080) as cap:
        assert lab.probe("client-0", "default/pod-1-0", 8080).connected
    inbound = [p for p in cap.packets if not p.outgoing]
    outbound = [p for p in cap.packets if p.outgoing]
    assert inbound[0].tcp_flags == "S" and inbound[0].src == lab.clients["client-0"].ip
    assert any(p.tcp_flags == "SA" and p.src == lab.pods["default/pod-1-0"].ip for p in outbound)
    assert all(p.interface == "eth0" for p in cap.packets)


def test_spawn_runs_inside_the_namespace(lab: Lab) -> None:
    process = lab.spawn(
        "default/pod-0-0", ["ip", "-o", "-4", "addr", "show", "dev", "eth0"], stdout=subprocess.PIPE
    )
    out, _ = process.communicate(timeout=5)
    assert lab.pods["default/pod-0-0"].ip + "/32" in out.decode()


def test_routes_can_be_added_for_service_vips(lab: Lab) -> None:
    lab.add_route("client-0", "10.96.0.0/16", "node-0")
    # the node has no service for it, and no route back out for a VIP: it is dropped or refused
    assert lab.probe("client-0", "10.96.0.10", 80, timeout=0.3).outcome != "connected"


def test_describe_matches_what_was_built(lab: Lab) -> None:
    pods = [o for o in lab.describe() if o["kind"] == "Pod"]
    assert len(pods) == 4
    for pod in pods:
        key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        info = lab.pods[key]
        assert pod["status"]["podIP"] == info.ip
        ifname = pod["metadata"]["annotations"]["dataplane.io/interface"]
        process = lab.spawn(
            info.node, ["ip", "-o", "link", "show", "dev", ifname], stdout=subprocess.PIPE
        )
        out, _ = process.communicate(timeout=5)
        assert process.returncode == 0 and "ee:ee:ee:ee:ee:ee" in out.decode()


def test_node_dataplane_targets_the_node_namespace(lab: Lab) -> None:
    try:
        dataplane = lab.dataplane("node-1")
    except (ImportError, AttributeError) as exc:
        pytest.skip(f"dataplane.Dataplane is not available yet: {exc}")
    assert dataplane.config.netns == lab.nodes["node-1"].netns
    assert dataplane.config.node_name == "node-1"
    assert dataplane.config.instance.startswith(lab.prefix)


def test_bridges_are_plain_switches(lab: Lab) -> None:
    """Where br_netfilter is loaded, the lab's bridges still pass frames without
    the netfilter hooks of their namespace (PLAIN_SWITCH)."""
    namespaces = [lab.plan.fabric_netns]
    if lab.plan.router is not None:
        namespaces.append(lab.plan.router.netns)
    for name in namespaces:
        out = subprocess.run(
            ["ip", "netns", "exec", name, "sh", "-c", "cat /proc/sys/net/bridge/bridge-nf-call-*"],
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            pytest.skip("br_netfilter is not loaded here: bridges have no netfilter hooks")
        assert out.stdout.split() == ["0", "0", "0"], name

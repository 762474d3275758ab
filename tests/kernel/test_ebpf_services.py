"""The eBPF backend with real packets in a lab: services without kube-proxy.

Each node namespace runs its own ``EbpfBackend`` (instance named after the
lab's per-run prefix, so pins live under /sys/fs/bpf/dataplane/<prefix>-<n>)
and gets a hand-built IR: these tests pin down what the programs do with a
given IR; the behaviour suite covers calc + backend together.

Topology (``LabSpec.uniform(2, 2)``): node-0 and node-1 (fabric 10.99.0.11/.12)
with pods pod-<n>-0/1 (10.100.<n>.2/.3), client-0 on the fabric (10.99.0.101).
"""

from __future__ import annotations

import ctypes
import ipaddress
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import attrs
import pytest

from dataplane.backends.ebpf import EbpfBackend, _libbpf, _netns, attach
from dataplane.calc import ir
from dataplane.engine.config import DataplaneConfig
from dataplane.lab import Lab, LabSpec
from dataplane.lab.netns import unavailable_reason
from dataplane.model import EndpointToHostAction, ExternalServiceMode, ObjectKey, Protocol

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason())),
    pytest.mark.skipif(
        EbpfBackend.unavailable_reason() is not None,
        reason=str(EbpfBackend.unavailable_reason()),
    ),
]

IP = ipaddress.ip_address
POD_SUPERNET = ipaddress.ip_network("10.100.0.0/16")
ECHO = 8080
TUNNEL = ExternalServiceMode.TUNNEL
DSR = ExternalServiceMode.DSR


# --------------------------------------------------------------------------- IR by hand


@attrs.frozen
class Svc:
    """One service port as a test describes it; frontends are derived per node."""

    vip: str
    port: int
    pods: tuple[str, ...]
    proto: Protocol = Protocol.TCP
    node_port: int | None = None
    local_only: bool = False  # externalTrafficPolicy: Local
    affinity: int | None = None
    if_empty: ir.NoEndpoints = ir.NoEndpoints.REJECT
    lb_ranges: tuple[str, ...] | None = None  # a load-balancer frontend with source ranges


def _backends(lab: Lab, node: str, pods: Sequence[str]) -> tuple[ir.Backend, ...]:
    out = []
    for key in pods:
        pod = lab.pods[key]
        out.append(ir.Backend(IP(pod.ip), ECHO, pod.node, pod.node == node))
    return tuple(out)


def frontends(lab: Lab, node: str, svc: Svc) -> list[ir.Frontend]:
    cluster = _backends(lab, node, svc.pods)
    internal = (ir.Route(ir.SourceClass.ANY, cluster, False, svc.if_empty),)
    external = internal
    if svc.local_only:
        local = tuple(b for b in cluster if b.local)
        external = (
            ir.Route(ir.SourceClass.POD, cluster, False),
            ir.Route(ir.SourceClass.HOST, cluster, False),
            ir.Route(ir.SourceClass.ANY, local, False, ir.NoEndpoints.DROP),
        )

    def make(
        addr: str,
        port: int,
        kind: ir.FrontendKind,
        routes: tuple[ir.Route, ...],
        ranges: tuple[str, ...] = (),
    ) -> ir.Frontend:
        return ir.Frontend(
            IP(addr),
            svc.proto,
            port,
            kind,
            f"test/{svc.vip}:{svc.port}",
            routes,
            affinity_timeout=svc.affinity,
            source_ranges=tuple(ipaddress.ip_network(r) for r in ranges),
        )

    out = [make(svc.vip, svc.port, ir.FrontendKind.CLUSTER_IP, internal)]
    if svc.node_port is not None:
        out.append(make(lab.nodes[node].ip, svc.node_port, ir.FrontendKind.NODE_PORT, external))
    if svc.lb_ranges is not None:
        lb = str(ipaddress.ip_address(svc.vip) + 256)
        out.append(make(lb, svc.port, ir.FrontendKind.LOAD_BALANCER, external, svc.lb_ranges))
    return out


def node_ir(
    lab: Lab, node: str, services: Sequence[Svc], mode: ExternalServiceMode
) -> ir.DataplaneIR:
    me = lab.nodes[node]
    settings = ir.IRSettings(
        node=node,
        local_addresses=(IP(me.ip),),
        cluster_cidrs=(POD_SUPERNET,),
        failsafe_inbound=(),
        failsafe_outbound=(),
        external_service_mode=mode,
        endpoint_to_host_action=EndpointToHostAction.DROP,
        host_interface_pattern=r"^eth\d+$",
        workload_interface_prefix="dpw",
    )
    workloads = {}
    for pod in me.pods:
        key = ObjectKey("WorkloadEndpoint", pod.namespace, pod.name)
        workloads[key] = ir.WorkloadProgram(
            key, pod.interface, (IP(pod.ip),), ir.ALLOW_ALL, ir.ALLOW_ALL
        )
    remote = {
        n.name: ir.RemoteNode(n.name, (IP(n.ip),), (ipaddress.ip_network(n.pod_cidr),))
        for n in lab.plan.nodes
        if n.name != node
    }
    fes = {fe.key: fe for svc in services for fe in frontends(lab, node, svc)}
    return ir.DataplaneIR(settings, frontends=fes, workloads=workloads, remote_nodes=remote)


class Cluster:
    """One EbpfBackend per lab node, programmed together."""

    def __init__(self, lab: Lab, tunnel: str = "kernel") -> None:
        self.lab = lab
        self.tunnel = tunnel
        self.attach = attach.DEFAULT_MODE
        self.backends: dict[str, EbpfBackend] = {}

    def config(self, node: str) -> DataplaneConfig:
        info = self.lab.nodes[node]
        return DataplaneConfig(
            backend="ebpf",
            node_name=node,
            netns=info.netns,
            instance=f"{self.lab.prefix}-{info.index}",
            options={"ebpf_tunnel": self.tunnel, "ebpf_attach": self.attach},
        )

    def start(self, node: str) -> EbpfBackend:
        backend = EbpfBackend(self.config(node))
        self.backends[node] = backend
        backend.start()
        return backend

    def program(self, services: Sequence[Svc], mode: ExternalServiceMode = TUNNEL) -> None:
        for node, backend in self.backends.items():
            backend.apply(ir.IRDelta(node_ir(self.lab, node, services, mode), full=True))

    def cleanup(self) -> None:
        for backend in self.backends.values():
            backend.cleanup()


# --------------------------------------------------------------------------- fixtures

WEB = Svc("10.96.0.10", 80, ("default/pod-0-1",), node_port=30080)
WEB_UDP = attrs.evolve(WEB, proto=Protocol.UDP)
PAIR = Svc("10.96.0.11", 80, ("default/pod-0-1", "default/pod-1-0"))
STICKY = attrs.evolve(PAIR, vip="10.96.0.12", affinity=600)
EMPTY = Svc("10.96.0.13", 80, ())
EMPTY_UDP = attrs.evolve(EMPTY, proto=Protocol.UDP)
EMPTY_DROP = Svc("10.96.0.14", 80, (), if_empty=ir.NoEndpoints.DROP)
LOCAL = Svc("10.96.0.15", 80, ("default/pod-0-1",), node_port=30081, local_only=True)
RANGED = Svc("10.96.0.16", 80, ("default/pod-0-1",), lb_ranges=("10.99.0.101/32",))
SCTP = Svc("10.96.0.17", 9132, ("default/pod-0-1",), proto=Protocol.SCTP)
ALL = (WEB, WEB_UDP, PAIR, STICKY, EMPTY, EMPTY_UDP, EMPTY_DROP, LOCAL, RANGED, SCTP)


@pytest.fixture(scope="module", params=["kernel", "bpf"])
def tunnel(request: pytest.FixtureRequest) -> str:
    """Every test runs with both ``ebpf_tunnel`` modes."""
    return str(request.param)


@pytest.fixture(scope="module")
def lab_spec(tunnel: str) -> LabSpec:
    """A fresh lab per tunnel mode."""
    return LabSpec.uniform(2, 2, fabric_clients=1)


@pytest.fixture(scope="module")
def cluster(lab: Lab, tunnel: str) -> Iterator[Cluster]:
    lab.add_route("client-0", "10.96.0.0/16", "node-0")
    nodes = Cluster(lab, tunnel)
    try:
        for node in lab.nodes:
            nodes.start(node)
        nodes.program(ALL)
        yield nodes
    finally:
        nodes.cleanup()


def _assert_via_service(result: object, client_ip: str, server: str, reply_from: str) -> None:
    assert result.outcome == "connected", result
    assert result.seen_source == client_ip, result  # no SNAT: real client address
    assert result.server_host == server, result
    assert result.reply_source == reply_from, result  # reverse NAT


# --------------------------------------------------------------------------- ClusterIP


def test_a_closed_connections_tuple_is_reused_by_the_next(cluster: Cluster, lab: Lab) -> None:
    """New SYNs from a port whose last connection ended (reset) are translated
    afresh each time, through the tuple's one conntrack entry (rewritten in
    place): one FWD entry for the tuple, however often it is reused."""
    client = lab.pods["default/pod-0-0"].ip
    for _ in range(6):
        result = lab.probe("default/pod-0-0", PAIR.vip, PAIR.port, sport=41000)
        assert result.outcome == "connected", result
        assert (result.seen_source, result.seen_sport) == (client, 41000), result
        assert result.reply_source == PAIR.vip, result
    fwd = [
        line
        for line in cluster.backends["node-0"].dump()["conntrack"]
        if line.startswith(f"fwd {client}:41000 -> {PAIR.vip}:{PAIR.port}/tcp")
    ]
    assert len(fwd) == 1, fwd
    assert "R" in fwd[0].split("tcp=")[1].split()[0], fwd  # the last one's reset


def test_cluster_ip_from_pod_on_same_node(cluster: Cluster, lab: Lab) -> None:
    result = lab.probe("default/pod-0-0", WEB.vip, WEB.port)
    _assert_via_service(result, lab.pods["default/pod-0-0"].ip, "default/pod-0-1", WEB.vip)


def test_cluster_ip_from_pod_on_other_node(cluster: Cluster, lab: Lab) -> None:
    result = lab.probe("default/pod-1-1", WEB.vip, WEB.port)
    _assert_via_service(result, lab.pods["default/pod-1-1"].ip, "default/pod-0-1", WEB.vip)


def test_cluster_ip_from_host_network(cluster: Cluster, lab: Lab) -> None:
    """Host processes: DNAT on the uplink's egress, redirected to the backend's veth."""
    lab.add_route("node-0", "10.96.0.0/16", "node-1")  # the host needs some route to the VIP
    result = lab.probe("node-0", WEB.vip, WEB.port)
    _assert_via_service(result, lab.nodes["node-0"].ip, "default/pod-0-1", WEB.vip)


def test_udp_through_cluster_ip(cluster: Cluster, lab: Lab) -> None:
    for src in ("default/pod-0-0", "default/pod-1-1"):
        result = lab.probe(src, WEB_UDP.vip, WEB_UDP.port, "udp")
        _assert_via_service(result, lab.pods[src].ip, "default/pod-0-1", WEB_UDP.vip)


def test_backends_are_spread_without_affinity(cluster: Cluster, lab: Lab) -> None:
    servers = {lab.probe("default/pod-0-0", PAIR.vip, PAIR.port).server_host for _ in range(24)}
    assert servers == {"default/pod-0-1", "default/pod-1-0"}


def test_client_ip_affinity_sticks(cluster: Cluster, lab: Lab) -> None:
    for src in ("default/pod-0-0", "default/pod-1-1"):
        servers = {lab.probe(src, STICKY.vip, STICKY.port).server_host for _ in range(12)}
        assert len(servers) == 1, servers
    affinity = cluster.backends["node-0"].dump()["affinity"]
    assert any(lab.pods["default/pod-0-0"].ip in line for line in affinity), affinity


# --------------------------------------------------------------------------- NodePort


def test_pod_to_pod_elsewhere_is_forwarded_by_the_programs_with_ttl(
    cluster: Cluster, lab: Lab
) -> None:
    """dp_route holds the other node's pod CIDR on the uplink, via that node (the
    route's gateway); a pod's packets to a pod there are redirected by the programs
    on both nodes (no host routing), and arrive with the TTL two forwarding hops
    leave (64 - 2), as through the stack."""
    uplink = _ifindex(lab, "node-0", "eth0")
    dump = cluster.backends["node-0"].dump()
    peer = lab.nodes["node-1"].ip
    assert dump["pod_routes"] == {lab.nodes["node-1"].pod_cidr: {"ifindex": uplink, "via": peer}}
    # the tunnel's next hop: on-link, the node itself
    assert dump["node_routes"] == {f"{peer}/32": {"ifindex": uplink, "via": peer}}
    with lab.capture("default/pod-1-0", proto="tcp", port=8080) as capture:
        assert lab.probe("default/pod-0-0", lab.pods["default/pod-1-0"].ip, 8080).connected
    arrived = [p for p in capture.packets if not p.outgoing]
    assert arrived and {p.ttl for p in arrived} == {62}, arrived


def test_dp_route_follows_a_moved_route_without_a_resync(
    cluster: Cluster, lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The backend watches node-0's routing table: when the route to node-1's pod
    CIDR moves to another gateway (a fabric host) and back, dp_route follows each
    move by itself, with no apply in between, looking up only the route that
    moved. A route to one of node-0's own pods (what a CNI adds per pod) covers
    no other node and costs no lookup."""
    cidr, peer = lab.nodes["node-1"].pod_cidr, lab.nodes["node-1"].ip
    other = lab.clients["client-0"].ip
    netns = lab.host("node-0").netns
    backend = cluster.backends["node-0"]
    looked_up: list[str] = []
    real_routes_out = _netns.routes_out

    def routes_out(ns: str | None, addrs: Iterable[str]) -> dict[str, Any]:
        looked_up.extend(addrs := list(addrs))
        return real_routes_out(ns, addrs)

    def via_becomes(gateway: str, seconds: float = 5.0) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if backend.dump()["pod_routes"][cidr]["via"] == gateway:
                return True
            time.sleep(0.02)
        return False

    assert via_becomes(peer)
    node_routes = backend.dump()["node_routes"]
    local_pod = str(ipaddress.ip_network(lab.nodes["node-0"].pod_cidr)[200])
    monkeypatch.setattr(_netns, "routes_out", routes_out)
    try:
        subprocess.run(["ip", "-n", netns, "route", "add", local_pod, "dev", "lo"], check=True)
        subprocess.run(["ip", "-n", netns, "route", "replace", cidr, "via", other], check=True)
        assert via_becomes(other), backend.dump()["pod_routes"]
    finally:
        subprocess.run(["ip", "-n", netns, "route", "replace", cidr, "via", peer], check=True)
        subprocess.run(["ip", "-n", netns, "route", "del", local_pod], check=False)
    assert via_becomes(peer), backend.dump()["pod_routes"]
    probe = str(ipaddress.ip_network(cidr).network_address + 1)
    assert set(looked_up) == {probe}, looked_up
    assert backend.dump()["node_routes"] == node_routes


def _ifindex(lab: Lab, host: str, name: str) -> int:
    out = subprocess.run(
        ["ip", "-n", lab.nodes[host].netns, "-j", "link", "show", name],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    index: int = json.loads(out)[0]["ifindex"]
    return index


def test_node_port_preserves_client_address(cluster: Cluster, lab: Lab) -> None:
    node = lab.nodes["node-0"].ip
    result = lab.probe("client-0", node, 30080)
    _assert_via_service(result, lab.clients["client-0"].ip, "default/pod-0-1", node)


def test_node_port_to_other_node_preserves_client_address(cluster: Cluster, lab: Lab) -> None:
    """externalTrafficPolicy Cluster, backend elsewhere: tunnelled, reply via the ingress node."""
    node = lab.nodes["node-1"].ip
    for proto in ("tcp", "udp"):
        result = lab.probe("client-0", node, 30080, proto)  # type: ignore[arg-type]
        _assert_via_service(result, lab.clients["client-0"].ip, "default/pod-0-1", node)
    conntrack = cluster.backends["node-1"].dump()["conntrack"]
    assert any("[tunnel-out]" in line for line in conntrack), conntrack


def test_node_port_dsr_answers_from_the_backend_node(cluster: Cluster, lab: Lab) -> None:
    ingress = lab.nodes["node-1"].ip
    cluster.program(ALL, mode=DSR)
    try:
        with lab.capture("node-0", interface="eth0", proto="tcp", port=30080) as capture:
            result = lab.probe("client-0", ingress, 30080)
        _assert_via_service(result, lab.clients["client-0"].ip, "default/pod-0-1", ingress)
        direct = [p for p in capture.packets if p.outgoing and p.src == ingress]
        assert direct, "the backend node (node-0) must answer as node-1:30080 itself"
    finally:
        cluster.program(ALL, mode=TUNNEL)


def test_external_traffic_policy_local(cluster: Cluster, lab: Lab) -> None:
    """Local: outside clients reach only node-local backends (none on node-1: dropped),
    while pods take the cluster-wide route (source classes)."""
    assert lab.probe("client-0", lab.nodes["node-1"].ip, 30081).outcome == "timeout"
    result = lab.probe("client-0", lab.nodes["node-0"].ip, 30081)
    _assert_via_service(
        result, lab.clients["client-0"].ip, "default/pod-0-1", lab.nodes["node-0"].ip
    )
    result = lab.probe("default/pod-1-1", lab.nodes["node-1"].ip, 30081)
    _assert_via_service(
        result, lab.pods["default/pod-1-1"].ip, "default/pod-0-1", lab.nodes["node-1"].ip
    )


# --------------------------------------------------------------------------- MTU of the tunnel

UPLINK_MTU = 1500  # the lab's interfaces
TUNNEL_MSS = UPLINK_MTU - 50 - 40  # VXLAN, then IPv4 + TCP headers

# Run in the client: a TCP transfer through a NodePort to the echo server,
# reporting the MSS the client's kernel settled on.
_BULK = r"""
import json, socket, sys
host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection((host, port), timeout=10)
f = s.makefile("rb")
f.readline()  # the echo server's greeting
chunk, moved = b"x" * 65536, 0
while moved < size:
    s.sendall(chunk)
    assert f.read(len(chunk)) == chunk
    moved += len(chunk)
print(json.dumps({"mss": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG), "moved": moved}))
"""

# Run in the client: full-size UDP datagrams with DF set; the path MTU the
# kernel learnt (from ICMP fragmentation needed) and the send errors.
_UDP_DF = r"""
import json, socket, sys, time
IP_MTU_DISCOVER, IP_PMTUDISC_DO, IP_MTU = 10, 2, 14
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
s.connect((sys.argv[1], int(sys.argv[2])))
errors = []
for _ in range(20):
    try:
        s.send(b"x" * int(sys.argv[3]))
    except OSError as exc:
        errors.append(exc.errno)
        break
    time.sleep(0.05)
print(json.dumps({"mtu": s.getsockopt(socket.IPPROTO_IP, IP_MTU), "errors": errors}))
"""


def _run_in(lab: Lab, host: str, argv: Sequence[str]) -> str:
    proc = lab.spawn(host, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


def _ip_counters(lab: Lab, node: str) -> dict[str, int]:
    """``Ip:`` counters of /proc/net/snmp inside the node's namespace."""
    lines = [ln.split() for ln in _run_in(lab, node, ["cat", "/proc/net/snmp"]).splitlines()]
    names, values = [ln for ln in lines if ln and ln[0] == "Ip:"][:2]
    return {n: int(v) for n, v in zip(names[1:], values[1:], strict=True)}


def _counter(cluster: Cluster, node: str, name: str) -> int:
    return int(cluster.backends[node].dump()["counters"][name])


def _device_packets(lab: Lab, node: str, device: str) -> int:
    """rx + tx packets of ``device`` inside the node's namespace."""
    link = json.loads(_run_in(lab, node, ["ip", "-j", "-s", "link", "show", "dev", device]))[0]
    return int(link["stats64"]["rx"]["packets"]) + int(link["stats64"]["tx"]["packets"])


@pytest.mark.parametrize("mode", [TUNNEL, DSR], ids=["tunnel", "dsr"])
def test_tunnel_mode_picks_the_encapsulation(
    cluster: Cluster, lab: Lab, mode: ExternalServiceMode
) -> None:
    """``ebpf_tunnel="kernel"`` sends NodePort traffic for another node through
    the VXLAN device; ``"bpf"`` encapsulates and decapsulates in the programs,
    so the device carries nothing, in either direction, on either node."""
    cluster.program(ALL, mode=mode)
    try:
        devices = {n: cluster.backends[n].dump()["tunnel"] for n in lab.nodes}
        before = {n: _device_packets(lab, n, devices[n]) for n in lab.nodes}
        for proto in ("tcp", "udp"):
            result = lab.probe("client-0", lab.nodes["node-1"].ip, 30080, proto)  # type: ignore[arg-type]
            _assert_via_service(
                result, lab.clients["client-0"].ip, "default/pod-0-1", lab.nodes["node-1"].ip
            )
        moved = {n: _device_packets(lab, n, devices[n]) - before[n] for n in lab.nodes}
    finally:
        cluster.program(ALL, mode=TUNNEL)
    if cluster.tunnel == "bpf":
        assert moved == {n: 0 for n in lab.nodes}, moved
    else:
        assert moved["node-0"] > 0 and moved["node-1"] > 0, moved
    assert all(_counter(cluster, n, "tunnel_fail") == 0 for n in lab.nodes)


@pytest.mark.parametrize("mode", [TUNNEL, DSR], ids=["tunnel", "dsr"])
def test_tunnelled_node_port_transfer_is_not_fragmented(
    cluster: Cluster, lab: Lab, mode: ExternalServiceMode
) -> None:
    """A few MB both ways through node-1's NodePort to a pod on node-0: the
    SYN and SYN/ACK MSS are clamped so that VXLAN's 50 bytes still fit the
    uplink, and neither node fragments a single packet."""
    cluster.program(ALL, mode=mode)
    try:
        before = {n: _ip_counters(lab, n) for n in lab.nodes}
        clamped = {n: _counter(cluster, n, "mss_clamp") for n in lab.nodes}
        out = _run_in(
            lab,
            "client-0",
            [sys.executable, "-c", _BULK, lab.nodes["node-1"].ip, "30080", str(4 << 20)],
        )
        after = {n: _ip_counters(lab, n) for n in lab.nodes}
    finally:
        cluster.program(ALL, mode=TUNNEL)
    result = json.loads(out)
    assert result["moved"] == 4 << 20
    assert result["mss"] <= TUNNEL_MSS, result  # the client sends segments that fit
    for node in lab.nodes:
        for counter in ("FragCreates", "FragFails", "ReasmReqds"):
            assert after[node][counter] == before[node][counter], (node, counter)
    # The ingress node clamps the SYN it encapsulates, the backend's node the SYN/ACK.
    for node in lab.nodes:
        assert _counter(cluster, node, "mss_clamp") > clamped[node], node


def test_tunnel_answers_fragmentation_needed(cluster: Cluster, lab: Lab) -> None:
    """A UDP datagram with DF that cannot fit the tunnel: ICMP fragmentation
    needed with MTU - 50, so the client's kernel lowers its path MTU."""
    ingress = lab.nodes["node-1"].ip
    too_big = _counter(cluster, "node-1", "too_big")
    out = _run_in(
        lab, "client-0", [sys.executable, "-c", _UDP_DF, ingress, "30080", str(UPLINK_MTU - 28)]
    )
    result = json.loads(out)
    assert result["mtu"] == UPLINK_MTU - 50, result
    assert result["errors"] == [90], result  # EMSGSIZE once the ICMP arrived
    assert _counter(cluster, "node-1", "too_big") > too_big
    # What fits goes through.
    fits = lab.probe("client-0", ingress, 30080, "udp")
    assert fits.outcome == "connected", fits


# --------------------------------------------------------------------------- no endpoints, ranges


@pytest.mark.parametrize("svc", [EMPTY, EMPTY_UDP], ids=["tcp-rst", "udp-icmp"])
def test_no_endpoints_is_refused(cluster: Cluster, lab: Lab, svc: Svc) -> None:
    proto = "tcp" if svc.proto is Protocol.TCP else "udp"
    for src in ("default/pod-0-0", "client-0"):
        assert lab.probe(src, svc.vip, svc.port, proto).outcome == "refused"  # type: ignore[arg-type]


def test_no_endpoints_drop(cluster: Cluster, lab: Lab) -> None:
    assert lab.probe("default/pod-0-0", EMPTY_DROP.vip, 80, timeout=0.5).outcome == "timeout"


def test_load_balancer_source_ranges(cluster: Cluster, lab: Lab) -> None:
    lb = str(ipaddress.ip_address(RANGED.vip) + 256)
    result = lab.probe("client-0", lb, RANGED.port)
    _assert_via_service(result, lab.clients["client-0"].ip, "default/pod-0-1", lb)
    assert lab.probe("default/pod-0-0", lb, RANGED.port, timeout=0.5).outcome == "timeout"
    assert lab.probe("default/pod-0-0", RANGED.vip, RANGED.port).connected  # ClusterIP: no ranges


# --------------------------------------------------------------------------- SCTP

_SEND_SCTP = """
import socket, struct, sys
src, dst, sport, dport = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
# SCTP common header + one INIT chunk (the kernel may have no SCTP stack: raw it is)
packet = struct.pack("!HHII", sport, dport, 0, 0) + struct.pack("!BBH", 1, 0, 20) + \
    struct.pack("!IIHHI", 0x01020304, 65535, 1, 1, 0x1234)
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_SCTP)
s.sendto(packet, (dst, 0))
"""


def _send_sctp(lab: Lab, host: str, dst: str, sport: int, dport: int) -> None:
    process = lab.spawn(
        host, [sys.executable, "-c", _SEND_SCTP, lab.host(host).ip, dst, str(sport), str(dport)]
    )
    assert process.wait(timeout=10) == 0


def test_sctp_through_cluster_ip(cluster: Cluster, lab: Lab) -> None:
    """DNAT on the way in, reverse NAT on the way back, seen in captures (raw SCTP
    packets: the test kernel may lack an SCTP stack, the data plane does not care)."""
    client = lab.pods["default/pod-1-1"]
    backend = lab.pods["default/pod-0-1"]
    with lab.capture(backend.key, proto="sctp") as at_backend:
        _send_sctp(lab, client.key, SCTP.vip, 40000, SCTP.port)
        time.sleep(0.3)
    arrived = [p for p in at_backend.packets if not p.outgoing]
    assert [(p.src, p.dst, p.sport, p.dport) for p in arrived] == [
        (client.ip, backend.ip, 40000, ECHO)
    ]
    with lab.capture(client.key, proto="sctp") as at_client:
        _send_sctp(lab, backend.key, client.ip, ECHO, 40000)
        time.sleep(0.3)
    replies = [p for p in at_client.packets if not p.outgoing]
    assert [(p.src, p.dst, p.sport, p.dport) for p in replies] == [
        (SCTP.vip, client.ip, SCTP.port, 40000)
    ]


# --------------------------------------------------------------------------- state, restart


def test_dump_is_readable_json(cluster: Cluster) -> None:
    dump = cluster.backends["node-0"].dump()
    json.dumps(dump)
    web = [f for f in dump["frontends"] if f["frontend"] == f"{WEB.vip}:{WEB.port}/tcp"]
    assert web and web[0]["backends"] == ["10.100.0.3:8080"]
    assert {i["kind"] for i in dump["interfaces"]} == {"host", "workload", "tunnel"}
    assert {i["attached"] for i in dump["interfaces"]} == {"tcx"}  # the default, kernel >= 6.6
    assert dump["counters"]["nat_new"] > 0


def test_unchanged_ir_rewrites_nothing(cluster: Cluster) -> None:
    before = cluster.backends["node-0"].dump()["frontends"]
    cluster.program(ALL)
    assert cluster.backends["node-0"].dump()["frontends"] == before


def test_incremental_upsert_and_remove(cluster: Cluster, lab: Lab) -> None:
    extra = Svc("10.96.0.30", 80, ("default/pod-1-0",))
    added = {node: frontends(lab, node, extra) for node in cluster.backends}
    for node, backend in cluster.backends.items():
        new = node_ir(lab, node, (*ALL, extra), TUNNEL)
        backend.apply(ir.IRDelta(new, frontends_upserted=tuple(added[node])))
    result = lab.probe("default/pod-0-0", extra.vip, extra.port)
    _assert_via_service(result, lab.pods["default/pod-0-0"].ip, "default/pod-1-0", extra.vip)
    for node, backend in cluster.backends.items():
        removed = tuple(fe.key for fe in added[node])
        backend.apply(ir.IRDelta(node_ir(lab, node, ALL, TUNNEL), frontends_removed=removed))
    assert not lab.probe("default/pod-0-0", extra.vip, extra.port, timeout=0.5).connected
    dump = cluster.backends["node-0"].dump()
    assert not any(f["frontend"].startswith(extra.vip) for f in dump["frontends"])


def test_connection_survives_agent_restart(cluster: Cluster, lab: Lab) -> None:
    """A new process (new EbpfBackend on the same pins) adopts maps, swaps programs
    in atomically and converges; the established connection never notices."""
    with lab.open_connection("default/pod-1-1", WEB.vip, WEB.port, timeout=2.0) as conn:
        assert conn.initial.server_host == "default/pod-0-1"
        assert conn.ping()
        routes = cluster.backends["node-0"].dump()["frontends"]
        for node in list(cluster.backends):
            cluster.backends[node].close()  # the old agent exits: no cleanup
        assert conn.ping(), "programs and maps must outlive the agent"
        for node in list(cluster.backends):
            cluster.start(node)
        cluster.program(ALL)
        for _ in range(5):
            assert conn.ping()
        status = conn.status()
        assert status.open and status.failures == 0
        assert cluster.backends["node-0"].dump()["frontends"] == routes  # ids adopted
    assert lab.probe("default/pod-0-0", WEB.vip, WEB.port).connected


def _tc_filters(netns: str, ifname: str) -> str:
    return subprocess.run(
        ["tc", "-n", netns, "filter", "show", "dev", ifname, "ingress"],
        capture_output=True,
        text=True,
    ).stdout


def _tcx_ids(netns: str, ifname: str) -> list[int]:
    """Programs attached through TCX at ``ifname``'s ingress, any owner."""

    def query() -> list[int]:
        return _libbpf.tcx_programs(_netns.links(netns)[ifname], attach.INGRESS)

    return _netns.run_in_netns(netns, query)


def _restart(cluster: Cluster, mode: str) -> None:
    """The agents exit without cleanup and come back with ``ebpf_attach=mode``."""
    for backend in cluster.backends.values():
        backend.close()
    cluster.attach = mode
    for node in list(cluster.backends):
        cluster.start(node)
    cluster.program(ALL)


def _ipv4_dropper() -> int:
    """Another tool's TC program: drops IPv4, leaves everything else to the hook."""

    def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> int:
        return code | (dst | src << 4) << 8 | (off & 0xFFFF) << 16 | (imm & 0xFFFFFFFF) << 32

    program = (ctypes.c_uint64 * 5)(
        insn(0x61, dst=2, src=1, off=16),  # r2 = skb->protocol
        insn(0xB7, dst=0, imm=2),  # r0 = TC_ACT_SHOT
        insn(0x15, dst=2, off=1, imm=0x0008),  # if r2 == htons(ETH_P_IP): exit
        insn(0xB7, dst=0, imm=-1),  # r0 = TC_ACT_UNSPEC
        insn(0x95),  # exit
    )
    load = ctypes.CDLL("libbpf.so.1", use_errno=True).bpf_prog_load  # not the package's handle
    load.restype = ctypes.c_int
    load.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_void_p,
    ]
    fd: int = load(3, b"foreign", b"GPL", program, len(program), None)  # SCHED_CLS
    assert fd >= 0, f"bpf_prog_load: errno {ctypes.get_errno()}"
    return fd


def test_what_the_programs_pass_on_meets_the_hooks_later_filters(
    cluster: Cluster, lab: Lab
) -> None:
    """Another tool's clsact filter after ours (one that drops IPv4) still sees
    the packets our programs pass to the stack, with TCX links and with clsact
    filters, while a packet our programs redirect ends the hook with them."""
    node = lab.nodes["node-0"]
    uplink = _ifindex(lab, "node-0", "eth0")
    lab.serve("node-0", 9100)
    foreign, last = _ipv4_dropper(), 0xFFFF  # after our filter's priority (1..0x7fff)
    try:
        for mode in ("tc", "tcx"):
            _restart(cluster, mode)
            assert lab.probe("client-0", "node-0", 9100).connected, mode
            created = _netns.run_in_netns(node.netns, lambda: _libbpf.tc_ensure_clsact(uplink))
            _netns.run_in_netns(
                node.netns, lambda: _libbpf.tc_attach(uplink, attach.INGRESS, foreign, last)
            )
            try:
                assert lab.probe("client-0", "node-0", 9100).outcome == "timeout", mode
                _assert_via_service(  # DNAT, then redirected into the pod
                    lab.probe("client-0", node.ip, WEB.node_port),
                    lab.clients["client-0"].ip,
                    "default/pod-0-1",
                    node.ip,
                )
            finally:
                _netns.run_in_netns(
                    node.netns, lambda: _libbpf.tc_detach(uplink, attach.INGRESS, last)
                )
                if created:
                    _netns.run_in_netns(node.netns, lambda: _libbpf.tc_remove_clsact(uplink))
            assert lab.probe("client-0", "node-0", 9100).connected, mode
    finally:
        os.close(foreign)


def test_attach_mode_switch_keeps_connections(cluster: Cluster, lab: Lab) -> None:
    """Upgrading from clsact filters to TCX links (and back) on restart: each
    interface gets its new attachment before the old one goes, so an
    established NATed connection sees no loss, and nothing of the old way stays."""
    node = lab.nodes["node-0"]
    pod_if = node.pods[0].interface
    with lab.open_connection("default/pod-1-1", WEB.vip, WEB.port, timeout=2.0) as conn:
        assert conn.ping()
        _restart(cluster, "tc")
        assert conn.ping()
        dump = cluster.backends["node-0"].dump()
        assert {i["attached"] for i in dump["interfaces"]} == {"tc"}
        assert "dp_from_wep" in _tc_filters(node.netns, pod_if)
        assert _tcx_ids(node.netns, pod_if) == []
        assert not any((cluster.backends["node-0"]._pin_dir / attach.LINK_DIR).iterdir())
        _restart(cluster, "tcx")
        for _ in range(3):
            assert conn.ping()
        dump = cluster.backends["node-0"].dump()
        assert {i["attached"] for i in dump["interfaces"]} == {"tcx"}
        assert "dp_from" not in _tc_filters(node.netns, pod_if)
        assert len(_tcx_ids(node.netns, pod_if)) == 1
        qdiscs = subprocess.run(
            ["tc", "-n", node.netns, "qdisc", "show", "dev", pod_if],
            capture_output=True,
            text=True,
        ).stdout
        assert "clsact" not in qdiscs  # the qdisc the clsact run created went with it
        status = conn.status()
        assert status.open and status.failures == 0


def test_kernel_without_tcx_falls_back_to_clsact(
    cluster: Cluster, lab: Lab, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Where link_create refuses the TCX attach type (kernels before 6.6), the
    backend attaches with clsact instead, once, with a warning; here it also
    moves the interfaces off the links the previous run left."""

    def refuse(ifindex: int, point: int, prog_fd: int, pin: object) -> None:
        raise _libbpf.TcxUnsupportedError(f"TCX attach to ifindex {ifindex}: not supported")

    node = lab.nodes["node-0"]
    pod_if = node.pods[0].interface
    assert len(_tcx_ids(node.netns, pod_if)) == 1
    with monkeypatch.context() as patch:
        patch.setattr(_libbpf, "tcx_attach", refuse)
        _restart(cluster, "tcx")
    assert [r for r in caplog.records if "attaching with a clsact qdisc" in r.getMessage()]
    assert {i["attached"] for i in cluster.backends["node-0"].dump()["interfaces"]} == {"tc"}
    assert "dp_from_wep" in _tc_filters(node.netns, pod_if)
    assert _tcx_ids(node.netns, pod_if) == []
    _assert_via_service(
        lab.probe("default/pod-1-1", WEB.vip, WEB.port),
        lab.pods["default/pod-1-1"].ip,
        "default/pod-0-1",
        WEB.vip,
    )
    _restart(cluster, "tcx")  # the kernel has TCX after all: back to links
    assert len(_tcx_ids(node.netns, pod_if)) == 1


def test_cleanup_of_clsact_attachments(cluster: Cluster, lab: Lab) -> None:
    """cleanup() of an instance attached with ``ebpf_attach="tc"`` removes its
    filters and the qdiscs it created (the TCX case is the test below)."""
    node = lab.nodes["node-0"]
    pod_if = node.pods[0].interface
    _restart(cluster, "tc")
    assert "dp_from_wep" in _tc_filters(node.netns, pod_if)
    cluster.backends["node-0"].cleanup()
    for ifname in ("eth0", pod_if):
        assert "dp_from" not in _tc_filters(node.netns, ifname)
        qdiscs = subprocess.run(
            ["tc", "-n", node.netns, "qdisc", "show", "dev", ifname],
            capture_output=True,
            text=True,
        ).stdout
        assert "clsact" not in qdiscs
    assert not cluster.backends["node-0"]._pin_dir.exists()
    _restart(cluster, "tcx")


def test_cleanup_removes_everything(cluster: Cluster, lab: Lab) -> None:
    pins = [b._pin_dir for b in cluster.backends.values()]
    node0 = lab.nodes["node-0"]
    assert _tcx_ids(node0.netns, "eth0"), "attached through TCX before cleanup"
    cluster.cleanup()
    assert not any(p.exists() for p in pins)
    for node in lab.nodes.values():
        shown = subprocess.run(
            ["ip", "-n", node.netns, "-j", "link", "show"],
            capture_output=True,
            check=True,
            text=True,
        ).stdout
        assert "dpv" not in shown  # the tunnel is gone
        for ifname in ("eth0", node.pods[0].interface):
            assert "dp_from" not in _tc_filters(node.netns, ifname)
            assert _tcx_ids(node.netns, ifname) == []
    cluster.cleanup()  # idempotent
    assert lab.probe("default/pod-0-0", WEB.vip, WEB.port, timeout=0.5).outcome != "connected"

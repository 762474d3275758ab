"""Services through no data plane, iptables and eBPF, side by side in one run (issue 5).

Run as root (everything happens inside lab namespaces; see docs/lab.md)::

    .venv/bin/python bench/ebpf_services.py [--json out.json] [--repeat 3] [--duration 5]
    .venv/bin/python bench/ebpf_services.py --quick      # smoke run: checks the script works
    .venv/bin/python bench/ebpf_services.py --measure throughput --rows "none, same path;ebpf"

Three measurements; docs/performance.md explains the method and holds results:

1. New TCP connections/s (``wrk -H 'Connection: close'`` against nginx) and
   first-packet latency (time of a blocking ``connect()``: SYN → SYN/ACK) from
   a pod on node-0 to a ClusterIP whose one endpoint is nginx in a pod on
   node-1, with 10 / 1,000 / 10,000 services programmed (every other service
   has 10 endpoints inside the pod CIDRs). The "none" column connects to the
   pod's own address with no data plane. Target: eBPF ≥ 90 % of "none" at
   10,000 services.
2. Single-stream iperf3 throughput from an external client through a NodePort
   on node-0 to a pod on node-1, and the whole machine's CPU-seconds per Gbit
   (``/proc/stat``). Two baselines without a data plane: "none" goes from the
   client straight to the pod's node (one hop fewer than any NodePort to a
   remote pod), "none, same path" routes the pod's address via node-0, which
   forwards it to node-1 (same two hops, no NAT). The sender runs cubic
   (``--congestion``; see ``_tools.CONGESTION_CONTROL``). Target: eBPF ≥ 95 % of
   "none, same path" and fewer CPU-s/Gbit than iptables. Extra rows: eBPF in
   DSR mode, the same path and eBPF with the client's MTU at 1,450 (the
   segment size the tunnel leaves; "vs MSS" compares against that baseline),
   the same path and eBPF on an underlay of 9,000-byte MTU (room for VXLAN, so
   no smaller segments; "vs path" there is against that lab's same path), and
   a NodePort whose backend is on node-0 (against "none, local pod").
3. Control plane: the first ``Dataplane.apply`` of 10,000 services × 10
   endpoints on a started data plane (target ≤ 2 s), then single-EndpointSet
   transactions (median of 20; target ≤ 2 ms).

Every configuration gets a fresh lab (a filling conntrack table skews later
runs), configurations are alternated within each repeat, and medians are
reported.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import hashlib
import io
import ipaddress
import json
import os
import pstats
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import _tools
import dataplane
from dataplane.backends.registry import backend_class
from dataplane.calc import Compiler
from dataplane.errors import DataplaneError
from dataplane.lab import Lab, LabSpec
from dataplane.model import (
    DesiredState,
    Endpoint,
    EndpointPort,
    EndpointSet,
    NodeSettings,
    Service,
    ServicePort,
    StateObject,
)
from dataplane.scenarios.cluster import base_objects

NONE = "none"
COLUMNS = (NONE, "iptables", "ebpf")
SPEC = LabSpec.uniform(2, 2, fabric_clients=1)
CLIENT_POD = "default/pod-0-0"  # on node-0, whose data plane translates the ClusterIP
SERVER_POD = "default/pod-1-0"  # nginx, on node-1
IPERF_POD = "default/pod-1-1"  # iperf3 server, on node-1
LOCAL_IPERF_POD = "default/pod-0-1"  # iperf3 server for the local-backend rows, on node-0
EXTERNAL = "client-0"  # on the node subnet; routes pod CIDRs via their nodes
INGRESS_NODE = "node-0"
HTTP_PORT = 80
NODE_PORT = 30201
ENDPOINTS_PER_SERVICE = 10
TARGETS = {"connections_ratio": 0.90, "throughput_ratio": 0.95, "full_sync_s": 2.0}
TARGET_UPDATE_MS = 2.0
MEASUREMENTS = ("connections", "throughput", "control")
EBPF_MTU_ROW = "ebpf, client MTU 1450"
NONE_SAME_PATH = "none, same path"  # the baseline the throughput target is judged against
DIAGNOSTIC_CLIENT_MTU = 1450  # 1500 - 50 bytes of VXLAN: no fragmentation on the uplink
JUMBO_UNDERLAY_MTU = 9000
"""The nodes' uplinks in the underlay rows: room for VXLAN's 50 bytes, as RFC
7348 asks of an underlay (and clouds give: 9,001 on AWS), so the tunnel needs
no smaller segments. The client stays at 1,500."""
NONE_TUNNEL_MSS = f"none, same path, client MTU {DIAGNOSTIC_CLIENT_MTU}"
"""The same path at the segment size the tunnel leaves the client (its SYN's
MSS is clamped to what fits 1,500 bytes after VXLAN's 50): what the tunnel's
smaller segments cost without any data plane."""
T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """How long and how often; ``--quick`` shrinks everything to a smoke run."""

    scales: tuple[int, ...] = (10, 1_000, 10_000)
    repeat: int = 3
    duration: float = 5.0
    latency_samples: int = 2_000
    throughput_seconds: float = 8.0
    control_services: int = 10_000
    updates: int = 20
    profile: Path | None = None
    measure: tuple[str, ...] = MEASUREMENTS
    rows: tuple[str, ...] | None = None  # throughput rows by label (None: all)
    congestion: str = _tools.CONGESTION_CONTROL  # the iperf3 sender's

    @classmethod
    def quick(cls) -> Settings:
        return cls((10,), 1, 1.0, 200, 1.0, 500, 5)


# --------------------------------------------------------------------------- desired state


def _vip(index: int) -> str:
    return str(ipaddress.IPv4Address("10.96.0.0") + 1 + index)


def _decoy_endpoints(lab: Lab, index: int, variant: int = 0) -> list[Endpoint]:
    """Ten endpoints spread over both nodes' pod CIDRs, never a real pod's address.

    ``variant`` shifts the first endpoint's address: an EndpointSet change that
    keeps the service (what a rollout or a readiness flip produces).
    """
    nodes = list(lab.nodes.values())
    out = []
    for e in range(ENDPOINTS_PER_SERVICE):
        node = nodes[e % len(nodes)]
        net = ipaddress.IPv4Network(node.pod_cidr)
        host = 10 + (index * ENDPOINTS_PER_SERVICE + e + (variant if e == 0 else 0)) % 240
        out.append(Endpoint([str(net[host])], node=node.name))
    return out


def decoy(lab: Lab, index: int, variant: int = 0) -> tuple[Service, EndpointSet]:
    name = f"svc-{index:05d}"
    return (
        Service(
            "bench", name, [ServicePort(HTTP_PORT, target_port=8080)], cluster_ips=[_vip(index)]
        ),
        EndpointSet("bench", name, [EndpointPort(8080)], _decoy_endpoints(lab, index, variant)),
    )


def desired(lab: Lab, services: int, iperf_pod: str = IPERF_POD) -> list[StateObject]:
    """The lab's nodes and pods, ``services - 2`` decoys, the ClusterIP target and the NodePort.

    The target ClusterIP is the last service created and sorts last by name, so
    a layout that matches services in order meets it after all the others.
    """
    server = lab.pods[SERVER_POD]
    iperf = lab.pods[iperf_pod]
    objs: list[StateObject] = list(base_objects(lab.plan))
    for index in range(max(0, services - 2)):
        objs.extend(decoy(lab, index))
    objs += [
        Service(
            "bench",
            "zz-nodeport",
            [ServicePort(_tools.IPERF3_PORT, node_port=NODE_PORT)],
            type="NodePort",
            cluster_ips=[_vip(65_000)],
        ),
        EndpointSet(
            "bench",
            "zz-nodeport",
            [EndpointPort(_tools.IPERF3_PORT)],
            [Endpoint([iperf.ip], node=iperf.node)],
        ),
        Service("bench", "zz-target", [ServicePort(HTTP_PORT)], cluster_ips=[target_vip()]),
        EndpointSet(
            "bench",
            "zz-target",
            [EndpointPort(HTTP_PORT)],
            [Endpoint([server.ip], node=server.node)],
        ),
    ]
    return objs


def target_vip() -> str:
    return _vip(65_001)


# --------------------------------------------------------------------------- data planes


def unavailable(column: str) -> str | None:
    """Why this column cannot run here (None: it can)."""
    if column == NONE:
        return None
    try:
        return backend_class(column).unavailable_reason()
    except DataplaneError as exc:
        return str(exc)


@dataclass
class Programmed:
    """The data plane of every node of one lab, and how long each first apply took."""

    planes: dict[str, Any] = field(default_factory=dict)
    apply_s: dict[str, float] = field(default_factory=dict)


def program(lab: Lab, column: str, objs: Sequence[StateObject]) -> Programmed:
    """Start ``column``'s data plane on every node (as in a cluster) and apply ``objs``."""
    out = Programmed()
    if column == NONE:
        return out
    state = DesiredState(objs)
    for name in lab.nodes:
        plane = lab.dataplane(name, backend=column, resync_period=0).start()
        started = time.perf_counter()
        plane.apply(state)
        out.apply_s[name] = time.perf_counter() - started
        out.planes[name] = plane
    return out


_PREFIXES: list[str] = []


@contextmanager
def fresh_lab() -> Iterator[Lab]:
    """A new lab per configuration; its prefix is kept to prove teardown at the end."""
    with Lab(SPEC) as lab:
        _PREFIXES.append(lab.prefix)
        yield lab


def leftovers() -> list[str]:
    """Namespaces of this run's labs that still exist (should be none)."""
    try:
        names = os.listdir("/run/netns")
    except FileNotFoundError:
        return []
    return sorted(n for n in names if any(n.startswith(p + "-") for p in _PREFIXES))


# --------------------------------------------------------------------------- measurements


def connections(column: str, services: int, s: Settings) -> dict[str, Any]:
    """One configuration of measurement 1, in a lab of its own.

    Latency is sampled before wrk runs, so it meets an empty conntrack table.
    After wrk, node-0's data plane does one full resync: with the eBPF backend
    that also scans and expires conntrack, now holding ~2 entries per connection.
    """
    with fresh_lab() as lab:
        programmed = program(lab, column, desired(lab, services))
        with _tools.nginx(lab, SERVER_POD, HTTP_PORT) as address:
            dest = address if column == NONE else target_vip()
            samples = _tools.connect_latency(lab, CLIENT_POD, dest, HTTP_PORT, s.latency_samples)
            run = _tools.wrk(lab, CLIENT_POD, f"http://{dest}/", s.duration)
        resync_s = None
        if INGRESS_NODE in programmed.planes:
            started = time.perf_counter()
            programmed.planes[INGRESS_NODE].resync()
            resync_s = time.perf_counter() - started
    return {
        "connections_per_s": run.requests_per_s,
        "socket_errors": run.socket_errors,
        "connect_us": {
            "p50": _tools.percentile(samples, 50),
            "p99": _tools.percentile(samples, 99),
        },
        "wrk_request_us": run.latency_us,
        "apply_s": programmed.apply_s,
        "resync_after_load_s": resync_s,
    }


@dataclass(frozen=True)
class Row:
    """One throughput configuration: a data plane and how the client reaches the iperf3 pod.

    ``same_path`` ("none" only): the client routes the pod's address via
    node-0, which forwards it to node-1 with plain IP forwarding and no NAT,
    the same two hops a NodePort to a remote pod takes. ``local``: the
    NodePort's backend (or, for "none", the pod reached) is on node-0.
    ``client_mtu`` lowers the external client's MTU (a diagnostic).
    ``underlay_mtu``: the nodes' uplinks (both ends) get this MTU before the
    data plane starts; "vs path" then compares with the same path in such a lab.
    """

    label: str
    column: str
    client_mtu: int | None = None
    dsr: bool = False
    local: bool = False
    same_path: bool = False
    underlay_mtu: int | None = None


def same_path_label(underlay_mtu: int | None) -> str:
    """The "none, same path" row of a lab whose underlay has this MTU."""
    return (
        NONE_SAME_PATH if underlay_mtu is None else f"{NONE_SAME_PATH}, underlay MTU {underlay_mtu}"
    )


def throughput_rows(active: Sequence[str]) -> list[Row]:
    """The throughput rows whose data plane can run here, in report order."""
    rows = [
        Row(NONE, NONE),
        Row(NONE_SAME_PATH, NONE, same_path=True),
        Row(NONE_TUNNEL_MSS, NONE, same_path=True, client_mtu=DIAGNOSTIC_CLIENT_MTU),
        Row(
            same_path_label(JUMBO_UNDERLAY_MTU),
            NONE,
            same_path=True,
            underlay_mtu=JUMBO_UNDERLAY_MTU,
        ),
        Row("iptables", "iptables"),
        Row("ebpf", "ebpf"),
        Row("ebpf, dsr", "ebpf", dsr=True),
        Row(EBPF_MTU_ROW, "ebpf", client_mtu=DIAGNOSTIC_CLIENT_MTU),
        Row(f"ebpf, underlay MTU {JUMBO_UNDERLAY_MTU}", "ebpf", underlay_mtu=JUMBO_UNDERLAY_MTU),
        Row(
            f"ebpf, dsr, underlay MTU {JUMBO_UNDERLAY_MTU}",
            "ebpf",
            dsr=True,
            underlay_mtu=JUMBO_UNDERLAY_MTU,
        ),
        Row("none, local pod", NONE, local=True),
        Row("iptables, local backend", "iptables", local=True),
        Row("ebpf, local backend", "ebpf", local=True),
    ]
    return [row for row in rows if row.column in active]


def _in_lab(lab: Lab, host: str, argv: list[str]) -> str:
    process = lab.spawn(host, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate(timeout=10)
    if process.returncode != 0:
        raise _tools.ToolError(f"{' '.join(argv)} in {host}: {err.decode().strip()}")
    return out.decode()


def set_underlay_mtu(lab: Lab, mtu: int) -> None:
    """Every node's uplink, and its port on the fabric's bridge, at ``mtu``."""
    for node in lab.plan.nodes:
        for netns, link in ((lab.plan.fabric_netns, node.bridge_port), (node.netns, node.uplink)):
            subprocess.run(["ip", "-n", netns, "link", "set", link, "mtu", str(mtu)], check=True)


def _link_stats(lab: Lab, host: str) -> dict[str, int]:
    """``eth0``'s rx/tx packets and bytes in ``host`` (GSO/GRO packets count once)."""
    link = json.loads(_in_lab(lab, host, ["ip", "-j", "-s", "link", "show", "dev", "eth0"]))[0]
    stats = link["stats64"]
    return {f"{d}_{k}": stats[d][k] for d in ("rx", "tx") for k in ("packets", "bytes")}


def throughput(row: Row, s: Settings) -> dict[str, Any]:
    """One configuration of measurement 2: iperf3 through the NodePort, CPU of the machine.

    Also records the average size of the packets node-1's (for a local
    backend: node-0's) uplink received: GSO/GRO packets count once, so a
    value well above the MTU shows segments stayed large end to end.
    """
    with fresh_lab() as lab:
        iperf_pod = LOCAL_IPERF_POD if row.local else IPERF_POD
        objs = desired(lab, 10, iperf_pod)
        if row.dsr:
            objs.append(NodeSettings(external_service_mode="dsr"))
        if row.underlay_mtu is not None:
            set_underlay_mtu(lab, row.underlay_mtu)
        program(lab, row.column, objs)
        if row.client_mtu is not None:
            _in_lab(lab, EXTERNAL, ["ip", "link", "set", "eth0", "mtu", str(row.client_mtu)])
        pod = lab.pods[iperf_pod]
        if row.same_path:
            # node-0 would otherwise redirect the client (ICMP) straight to node-1.
            _in_lab(lab, INGRESS_NODE, ["sysctl", "-qw", "net.ipv4.conf.all.send_redirects=0"])
            _in_lab(lab, INGRESS_NODE, ["sysctl", "-qw", "net.ipv4.conf.eth0.send_redirects=0"])
            lab.add_route(EXTERNAL, f"{pod.ip}/32", INGRESS_NODE)
        dest, port = (
            (pod.ip, _tools.IPERF3_PORT)
            if row.column == NONE
            else (lab.nodes[INGRESS_NODE].ip, NODE_PORT)
        )
        ingress, backend_node = INGRESS_NODE, pod.node
        with _tools.iperf3_server(lab, iperf_pod, pod.ip):
            links0 = {h: _link_stats(lab, h) for h in (ingress, backend_node)}
            cpu0, wall0 = _tools.cpu_busy_seconds(), time.perf_counter()
            report = _tools.iperf3(lab, EXTERNAL, dest, s.throughput_seconds, port, s.congestion)
            cpu, wall = _tools.cpu_busy_seconds() - cpu0, time.perf_counter() - wall0
            links = {
                h: {k: v - links0[h][k] for k, v in _link_stats(lab, h).items()}
                for h in (ingress, backend_node)
            }
    received = report["end"]["sum_received"]
    gbit = received["bytes"] * 8 / 1e9
    rx = links[backend_node]
    return {
        "gbit_per_s": received["bits_per_second"] / 1e9,
        "cpu_s": cpu,
        "wall_s": wall,
        "cpu_s_per_gbit": cpu / gbit if gbit else None,
        "retransmits": report["end"].get("sum_sent", {}).get("retransmits"),
        "congestion": report["end"].get("sender_tcp_congestion"),
        "backend_node_rx_bytes_per_packet": rx["rx_bytes"] / rx["rx_packets"]
        if rx["rx_packets"]
        else None,
        "links": links,
    }


def control_plane(column: str, s: Settings) -> dict[str, Any]:
    """Measurement 3 on node-0: the first full apply, then one-EndpointSet transactions."""
    with fresh_lab() as lab:
        objs = desired(lab, s.control_services)
        state = DesiredState(objs)
        started = time.perf_counter()
        Compiler(INGRESS_NODE, preserve_source=True).compile(state)
        compile_s = time.perf_counter() - started
        plane = lab.dataplane(INGRESS_NODE, backend=column, resync_period=0).start()
        profiler = cProfile.Profile() if s.profile else None
        cpu0, started = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        plane.apply(state)
        if profiler:
            profiler.disable()
        full_s, full_cpu = time.perf_counter() - started, time.process_time() - cpu0
        if profiler and s.profile:
            profiler.dump_stats(str(s.profile))
        updates = []
        for i in range(s.updates):
            _svc, eps = decoy(lab, s.control_services // 2, variant=1 + i % 2)
            started = time.perf_counter()
            with plane.transaction() as tx:
                tx.upsert(eps)
            updates.append((time.perf_counter() - started) * 1e3)
        status = plane.status()
    return {
        "services": s.control_services,
        "endpoints_per_service": ENDPOINTS_PER_SERVICE,
        "full_sync_s": full_s,
        "full_sync_cpu_s": full_cpu,
        "calc_compile_s": compile_s,
        "endpoint_change_ms": {
            "median": statistics.median(updates),
            "max": max(updates),
            "all": updates,
        },
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "last_error": status.last_error,
    }


# --------------------------------------------------------------------------- orchestration


def _attempt(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one configuration once the machine is quiet; a failure is recorded, the run goes on.

    ``busy_cores_before`` is what other processes used just before: a high
    value marks a run that shared the CPUs with someone else's work.
    """
    busy = _tools.wait_for_quiet()
    try:
        result = fn()
    except (DataplaneError, _tools.ToolError) as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"}
    return {**result, "busy_cores_before": busy}


def _rotated(items: Sequence[T], by: int) -> list[T]:
    """Alternate the order per repeat so no column always runs first (or after another)."""
    k = by % len(items)
    return [*items[k:], *items[:k]]


def _median(runs: list[dict[str, Any]], *path: str) -> float | None:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int | float):
            values.append(float(value))
    return statistics.median(values) if values else None


def run(s: Settings, log: Callable[[str], None]) -> dict[str, Any]:
    """Every configuration, alternated: per repeat, each scale, each column in rotated order."""
    columns = {c: unavailable(c) for c in COLUMNS}
    active = [c for c, reason in columns.items() if reason is None]
    tools = {
        "connections": _tools.missing("wrk", "nginx"),
        "throughput": _tools.missing("iperf3"),
    }
    tput_rows = [row for row in throughput_rows(active) if s.rows is None or row.label in s.rows]
    raw_conn: dict[tuple[str, int], list[dict[str, Any]]] = {}
    raw_tput: dict[str, list[dict[str, Any]]] = {}
    for r in range(s.repeat):
        if tools["connections"] is None and "connections" in s.measure:
            for i, scale in enumerate(s.scales):
                for column in _rotated(active, r + i):
                    log(f"repeat {r + 1}/{s.repeat}: connections, {scale} services, {column}")
                    result = _attempt(functools.partial(connections, column, scale, s))
                    raw_conn.setdefault((column, scale), []).append(result)
        if tools["throughput"] is None and "throughput" in s.measure:
            for row in _rotated(tput_rows, r):
                log(f"repeat {r + 1}/{s.repeat}: throughput, {row.label}")
                result = _attempt(functools.partial(throughput, row, s))
                raw_tput.setdefault(row.label, []).append(result)
    control = {}
    for column in active:
        if column != NONE and "control" in s.measure:
            log(f"control plane, {s.control_services} services, {column}")
            control[column] = _attempt(functools.partial(control_plane, column, s))
    result = summarise(s, columns, tools, raw_conn, raw_tput, control)
    order = [row.label for row in tput_rows]
    result["throughput"].sort(key=lambda row: order.index(row["row"]))
    result["leftover_namespaces"] = leftovers()
    return result


def summarise(
    s: Settings,
    columns: dict[str, str | None],
    tools: dict[str, str | None],
    raw_conn: dict[tuple[str, int], list[dict[str, Any]]],
    raw_tput: dict[str, list[dict[str, Any]]],
    control: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """Medians per configuration and ratios against the "none" column of the same scale."""
    conn_rows = []
    for scale in s.scales:
        base = _median(raw_conn.get((NONE, scale), []), "connections_per_s")
        for column in COLUMNS:
            runs = raw_conn.get((column, scale))
            if runs is None:
                continue
            rate = _median(runs, "connections_per_s")
            conn_rows.append(
                {
                    "services": scale,
                    "column": column,
                    "connections_per_s": rate,
                    "vs_none": rate / base if rate and base else None,
                    "connect_p50_us": _median(runs, "connect_us", "p50"),
                    "connect_p99_us": _median(runs, "connect_us", "p99"),
                    "resync_after_load_s": _median(runs, "resync_after_load_s"),
                    "runs": runs,
                }
            )
    base_tput = _median(raw_tput.get(NONE, []), "gbit_per_s")
    base_mss = _median(raw_tput.get(NONE_TUNNEL_MSS, []), "gbit_per_s")
    underlay = {row.label: row.underlay_mtu for row in throughput_rows(COLUMNS)}
    tput_rows = []
    for label, runs in raw_tput.items():
        gbit = _median(runs, "gbit_per_s")
        base_path = _median(raw_tput.get(same_path_label(underlay.get(label)), []), "gbit_per_s")
        tput_rows.append(
            {
                "row": label,
                "gbit_per_s": gbit,
                "vs_none": gbit / base_tput if gbit and base_tput else None,
                "vs_same_path": gbit / base_path if gbit and base_path else None,
                # the MSS baseline is of the default underlay's lab
                "vs_tunnel_mss": gbit / base_mss
                if gbit and base_mss and underlay.get(label) is None
                else None,
                "cpu_s_per_gbit": _median(runs, "cpu_s_per_gbit"),
                "retransmits": _median(runs, "retransmits"),
                "rx_bytes_per_packet": _median(runs, "backend_node_rx_bytes_per_packet"),
                "runs": runs,
            }
        )
    return {
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(s).items()},
        "machine": {"cpus": os.cpu_count(), "kernel": os.uname().release},
        "source": provenance(),
        "skipped": {
            **{c: reason for c, reason in columns.items() if reason},
            **{m: reason for m, reason in tools.items() if reason},
        },
        "targets": {**TARGETS, "endpoint_change_ms": TARGET_UPDATE_MS},
        "connections": conn_rows,
        "throughput": tput_rows,
        "control_plane": control,
    }


def provenance() -> dict[str, str | None]:
    """Which code was measured: the tree changes under the benchmark while others work."""
    package = Path(dataplane.__file__).parent
    obj = package / "backends" / "ebpf" / "objects" / "dataplane.o"
    head = None
    with suppress(OSError, subprocess.CalledProcessError):
        head = subprocess.run(
            ["git", "-C", str(package), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    return {
        "package": str(package),
        "git_head": head,
        "ebpf_object_sha256": hashlib.sha256(obj.read_bytes()).hexdigest()
        if obj.exists()
        else None,
    }


# --------------------------------------------------------------------------- output


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _errors(row: dict[str, Any]) -> str:
    errors = [r["error"] for r in row["runs"] if "error" in r]
    return f"  errors: {errors}" if errors else ""


def table(result: dict[str, Any]) -> str:
    """The result as plain-text tables (medians; ratios against the "none" column)."""
    lines = [
        "New connections/s (wrk, Connection: close) and connect() latency, "
        "pod (node-0) -> ClusterIP -> nginx pod (node-1)",
        f"{'services':>8}  {'data plane':<10} {'conn/s':>8} {'vs none':>7} "
        f"{'p50 µs':>7} {'p99 µs':>7} {'resync s':>8}",
    ]
    for row in result["connections"]:
        lines.append(
            f"{row['services']:>8}  {row['column']:<10} "
            f"{_fmt(row['connections_per_s'], ',.0f'):>8} {_fmt(row['vs_none'], '.0%'):>7} "
            f"{_fmt(row['connect_p50_us'], '.1f'):>7} {_fmt(row['connect_p99_us'], '.1f'):>7} "
            f"{_fmt(row['resync_after_load_s'], '.2f'):>8}" + _errors(row)
        )
    lines += [
        "",
        f"Single-stream iperf3 (sender: {result['settings']['congestion']}), external client "
        "-> NodePort (node-0) -> pod (node-1); 'none' goes straight to the pod,",
        "'none, same path' via node-0 (plain forwarding); 'local' rows: the pod is on node-0;",
        "'vs path': against 'none, same path' in the same lab (underlay MTU rows: of that MTU);",
        f"'vs MSS': against '{NONE_TUNNEL_MSS}' (the same path at the tunnel's segment size);",
        "B/pkt: bytes per packet the backend's node received on its uplink (GSO/GRO stay large)",
        f"{'data plane':<36} {'Gbit/s':>7} {'vs none':>7} {'vs path':>7} {'vs MSS':>7} "
        f"{'CPU-s/Gbit':>10} {'retrans':>8} {'B/pkt':>6}",
    ]
    for row in result["throughput"]:
        lines.append(
            f"{row['row']:<36} {_fmt(row['gbit_per_s'], '.2f'):>7} "
            f"{_fmt(row['vs_none'], '.0%'):>7} {_fmt(row['vs_same_path'], '.0%'):>7} "
            f"{_fmt(row.get('vs_tunnel_mss'), '.0%'):>7} "
            f"{_fmt(row['cpu_s_per_gbit'], '.3f'):>10} "
            f"{_fmt(row['retransmits'], '.0f'):>8} {_fmt(row['rx_bytes_per_packet'], '.0f'):>6}"
            + _errors(row)
        )
    for column, cp in result["control_plane"].items():
        lines.append("")
        if "error" in cp:
            lines.append(f"Control plane ({column}): {cp['error']}")
            continue
        change = cp["endpoint_change_ms"]
        lines += [
            f"Control plane ({column}), {cp['services']:,} services x "
            f"{cp['endpoints_per_service']} endpoints, node-0:",
            f"  first full apply {cp['full_sync_s']:.2f} s (process CPU "
            f"{cp['full_sync_cpu_s']:.2f} s; calc compile alone {cp['calc_compile_s']:.2f} s)"
            f"  target <= {TARGETS['full_sync_s']} s",
            f"  one EndpointSet  median {change['median']:.2f} ms, max {change['max']:.2f} ms"
            f" ({len(change['all'])} transactions)  target <= {TARGET_UPDATE_MS} ms",
            f"  max RSS of the benchmark process {cp['max_rss_mb']:.0f} MB",
        ]
    lines.append("")
    for what, reason in result["skipped"].items():
        lines.append(f"skipped {what}: {reason}")
    left = result.get("leftover_namespaces")
    lines.append(f"lab namespaces left behind: {left if left else 'none'}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="also write the full result here")
    parser.add_argument("--quick", action="store_true", help="smoke run of a few seconds")
    parser.add_argument("--repeat", type=int, help="fresh-lab runs per configuration (3)")
    parser.add_argument("--duration", type=float, help="seconds of wrk per run (5)")
    parser.add_argument("--scales", help="comma-separated service counts (10,1000,10000)")
    parser.add_argument("--profile", type=Path, help="cProfile the full sync into this file")
    parser.add_argument(
        "--measure", help=f"comma-separated subset of {','.join(MEASUREMENTS)} (all)"
    )
    parser.add_argument("--rows", help="semicolon-separated throughput row labels (all)")
    parser.add_argument("--seconds", type=float, help="seconds of iperf3 per run (8)")
    parser.add_argument(
        "--congestion",
        help=f"the iperf3 sender's TCP congestion control ({_tools.CONGESTION_CONTROL})",
    )
    args = parser.parse_args(argv)
    s = Settings.quick() if args.quick else Settings()
    overrides: dict[str, Any] = {}
    if args.repeat:
        overrides["repeat"] = args.repeat
    if args.duration:
        overrides["duration"] = args.duration
    if args.scales:
        overrides["scales"] = tuple(int(v) for v in args.scales.split(","))
    if args.profile:
        overrides["profile"] = args.profile
    if args.measure:
        overrides["measure"] = tuple(args.measure.split(","))
    if args.seconds:
        overrides["throughput_seconds"] = args.seconds
    if args.rows:
        overrides["rows"] = tuple(args.rows.split(";"))
    if args.congestion:
        overrides["congestion"] = args.congestion
    s = Settings(**{**vars(s), **overrides})
    if os.geteuid() != 0:
        print("needs root: every measurement runs in lab network namespaces", file=sys.stderr)
        return 2
    started = time.perf_counter()
    result = run(
        s,
        lambda msg: print(
            f"[{time.perf_counter() - started:6.1f}s] {msg}", file=sys.stderr, flush=True
        ),
    )
    result["elapsed_s"] = time.perf_counter() - started
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if s.profile:
        out = io.StringIO()
        pstats.Stats(str(s.profile), stream=out).sort_stats("cumulative").print_stats(25)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())

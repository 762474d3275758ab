"""Service dispatch: no data plane vs. kube-proxy's linear layout vs. the iptables backend.

Run as root (everything happens inside lab namespaces; see docs/lab.md)::

    .venv/bin/python bench/iptables_dispatch.py [--flavour nft|legacy]
        [--nat auto|nftables|iptables] [--repeat 3]
    .venv/bin/python bench/iptables_dispatch.py --quick   # smoke run
    .venv/bin/python bench/iptables_dispatch.py --control-plane-only [--quick]

1. New TCP connections/s (``wrk -H 'Connection: close'`` against nginx) and
   first-packet latency (a blocking ``connect()``, SYN → SYN/ACK) from a pod
   on node-0 to a ClusterIP whose endpoint is nginx in a pod on node-1, with
   10 / 1,000 / 10,000 ClusterIP services programmed on node-0:
   (a) "none": straight to the pod address, no rules at all;
   (b) "linear": kube-proxy's iptables layout, rendered here (KUBE-SERVICES
       with one rule per service, the measured service in the middle, i.e.
       the average walk);
   (c) "backend": this project's iptables backend (dispatch tree).
   Target: (c) keeps ≥ 80 % of (a)'s rate at 10,000 services.
2. Control plane: ``start()`` and a full sync of 10,000 services × 10 endpoints
   into a fresh namespace (target ≤ 5 s), one endpoint change (median of 5;
   target ≤ 100 ms), a restart (a second instance: ``start()`` + full apply of
   the same IR, which must write nothing) and ``cleanup()``, for each flavour,
   with services NATed by iptables and by the nftables table (``iptables_nat``).

Every configuration gets a fresh lab (a filling conntrack table skews later
runs), configurations are alternated within each repeat, medians reported.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import _tools
from dataplane.backends.iptables import IptablesBackend
from dataplane.backends.iptables._exec import Runner
from dataplane.backends.iptables.flavour import Flavour
from dataplane.calc.ir import (
    Backend,
    DataplaneIR,
    Frontend,
    FrontendKind,
    IRDelta,
    IRSettings,
    Route,
    SourceClass,
)
from dataplane.engine.config import DataplaneConfig
from dataplane.lab import Lab, LabSpec
from dataplane.model import EndpointToHostAction, ExternalServiceMode, Protocol

CONFIGS = ("none", "linear", "backend")
SERVICE_NET = ipaddress.ip_network("10.96.0.0/16")
POD_NET = ipaddress.ip_network("10.100.0.0/16")
PORT = 80


def vips(count: int) -> list[ipaddress.IPv4Address]:
    """``count`` distinct random ClusterIPs (seeded: every configuration gets the same)."""
    rng = random.Random(count)
    hosts = rng.sample(range(1, SERVICE_NET.num_addresses - 1), count)
    return [ipaddress.IPv4Address(int(SERVICE_NET.network_address) + h) for h in hosts]


def fake_endpoints(index: int, count: int) -> list[ipaddress.IPv4Address]:
    """Endpoint addresses of the services nobody connects to (inside the pod CIDRs)."""
    base = int(POD_NET.network_address) + 2 * 256 + index * count
    return [ipaddress.IPv4Address(base + i) for i in range(count)]


_KUBE_FILTER = "\n".join(
    [
        "*filter",
        ":KUBE-EXTERNAL-SERVICES - [0:0]",
        ":KUBE-NODEPORTS - [0:0]",
        ":KUBE-SERVICES - [0:0]",
        ":KUBE-FORWARD - [0:0]",
        ":KUBE-PROXY-FIREWALL - [0:0]",
        ":KUBE-FIREWALL - [0:0]",
        "-A INPUT -m conntrack --ctstate NEW -j KUBE-PROXY-FIREWALL",
        "-A INPUT -j KUBE-NODEPORTS",
        "-A INPUT -m conntrack --ctstate NEW -j KUBE-EXTERNAL-SERVICES",
        "-A INPUT -j KUBE-FIREWALL",
        "-A FORWARD -m conntrack --ctstate NEW -j KUBE-PROXY-FIREWALL",
        "-A FORWARD -j KUBE-FORWARD",
        "-A FORWARD -m conntrack --ctstate NEW -j KUBE-SERVICES",
        "-A FORWARD -m conntrack --ctstate NEW -j KUBE-EXTERNAL-SERVICES",
        "-A OUTPUT -m conntrack --ctstate NEW -j KUBE-PROXY-FIREWALL",
        "-A OUTPUT -m conntrack --ctstate NEW -j KUBE-SERVICES",
        "-A OUTPUT -j KUBE-FIREWALL",
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
        "-A KUBE-FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT",
        "-A KUBE-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A KUBE-FIREWALL -d 127.0.0.0/8 ! -s 127.0.0.0/8"
        " -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
        "COMMIT",
        "",
        "",
    ]
)


def linear_layout(services: list[tuple[ipaddress.IPv4Address, list[str]]]) -> str:
    """kube-proxy's layout (pkg/proxy/iptables, see docs/iptables.md): the fixed filter
    chains every packet meets, and nat KUBE-SERVICES → SVC → SEP with one rule per service."""
    chains = [
        ":KUBE-SERVICES - [0:0]",
        ":KUBE-MARK-MASQ - [0:0]",
        ":KUBE-POSTROUTING - [0:0]",
        ":KUBE-NODEPORTS - [0:0]",
    ]
    rules = [
        "-A PREROUTING -j KUBE-SERVICES",
        "-A OUTPUT -j KUBE-SERVICES",
        "-A POSTROUTING -j KUBE-POSTROUTING",
        "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
        "-A KUBE-POSTROUTING -j MASQUERADE --random-fully",
    ]
    for i, (vip, endpoints) in enumerate(services):
        svc = f"KUBE-SVC-{i:016d}"
        chains.append(f":{svc} - [0:0]")
        rules.append(
            f'-A KUBE-SERVICES -d {vip}/32 -p tcp -m comment --comment "ns/svc{i}:p cluster IP"'
            f" -m tcp --dport {PORT} -j {svc}"
        )
        rules.append(
            f"-A {svc} ! -s {POD_NET} -d {vip}/32 -p tcp -m tcp --dport {PORT} -j KUBE-MARK-MASQ"
        )
        for j, endpoint in enumerate(endpoints):
            sep = f"KUBE-SEP-{i:012d}{j:04d}"
            chains.append(f":{sep} - [0:0]")
            left = len(endpoints) - j
            stat = f"-m statistic --mode random --probability {1 / left:.11f} " if left > 1 else ""
            rules.append(f"-A {svc} {stat}-j {sep}")
            rules.append(f"-A {sep} -s {endpoint.split(':')[0]}/32 -j KUBE-MARK-MASQ")
            rules.append(f"-A {sep} -p tcp -m tcp -j DNAT --to-destination {endpoint}")
    rules.append("-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")
    return _KUBE_FILTER + "\n".join(["*nat", *chains, *rules, "COMMIT", ""])


def settings(node_ip: str) -> IRSettings:
    return IRSettings(
        node="node-0",
        local_addresses=(ipaddress.IPv4Address(node_ip),),
        cluster_cidrs=(POD_NET,),
        failsafe_inbound=(),
        failsafe_outbound=(),
        external_service_mode=ExternalServiceMode.TUNNEL,
        endpoint_to_host_action=EndpointToHostAction.ACCEPT,
        host_interface_pattern="^eth",
        workload_interface_prefix="dpw",
    )


def frontend(
    vip: ipaddress.IPv4Address, backends: list[ipaddress.IPv4Address], port: int, name: str
) -> Frontend:
    bs = tuple(Backend(b, port, None, False) for b in backends)
    routes = (Route(SourceClass.POD, bs, False), Route(SourceClass.ANY, bs, True))
    return Frontend(vip, Protocol.TCP, PORT, FrontendKind.CLUSTER_IP, name, routes)


def service_ir(node_ip: str, count: int, target: str | None, per_service: int) -> DataplaneIR:
    """``count`` ClusterIPs; the middle one goes to ``target`` (nginx), the rest nowhere."""
    addresses = vips(count)
    frontends = {}
    for i, vip in enumerate(addresses):
        if target is not None and i == count // 2:
            fe = frontend(vip, [ipaddress.IPv4Address(target)], PORT, "bench/target")
        else:
            fe = frontend(vip, fake_endpoints(i, per_service), 8080, f"bench/svc{i}")
        frontends[fe.key] = fe
    return DataplaneIR(settings=settings(node_ip), frontends=frontends)


@contextmanager
def configured(config: str, count: int, flavour: str, nat: str) -> Iterator[tuple[Lab, str]]:
    """A fresh lab with node-0 programmed as ``config``; yields it and the URL host."""
    with Lab(LabSpec.uniform(2, 1, fabric_clients=0)) as lab:
        node, target = lab.nodes["node-0"], lab.pods["default/pod-1-0"].ip
        host = target
        if config == "linear":
            addresses = vips(count)
            services = [
                (
                    vip,
                    [f"{target}:{PORT}"]
                    if i == count // 2
                    else [f"{a}:8080" for a in fake_endpoints(i, 1)],
                )
                for i, vip in enumerate(addresses)
            ]
            Runner(node.netns).restore(Flavour(flavour).restore, linear_layout(services))
            host = str(addresses[count // 2])
        elif config == "backend":
            backend = IptablesBackend(
                DataplaneConfig(
                    backend="iptables",
                    node_name="node-0",
                    netns=node.netns,
                    instance=f"{lab.prefix}-n0",
                    options={"iptables_flavour": flavour, "iptables_nat": nat},
                )
            )
            backend.start()
            backend.apply(IRDelta(ir=service_ir(node.ip, count, target, 1), full=True))
            host = str(vips(count)[count // 2])
        yield lab, host


def measure(
    config: str, count: int, flavour: str, nat: str, seconds: float, probes: int
) -> dict[str, float]:
    with (
        configured(config, count, flavour, nat) as (lab, host),
        _tools.nginx(lab, "default/pod-1-0", PORT),
    ):
        client = "default/pod-0-0"
        _tools.connect_latency(lab, client, host, PORT, 50)  # warm up caches and ARP
        latency = _tools.connect_latency(lab, client, host, PORT, probes)
        rate = _tools.wrk(lab, client, f"http://{host}:{PORT}/", seconds)
    return {
        "conn_per_s": rate.requests_per_s,
        "p50_us": _tools.percentile(latency, 50),
        "p99_us": _tools.percentile(latency, 99),
    }


def sync_times(
    flavour: str, nat: str, services: int, endpoints: int, changes: int
) -> dict[str, float]:
    """Start and full sync of ``services`` × ``endpoints`` into a fresh node, single endpoint
    changes, then a restart (a second instance starts and applies the same IR)."""
    with Lab(LabSpec.uniform(1, 1, fabric_clients=0)) as lab:
        node = lab.nodes["node-0"]
        config = DataplaneConfig(
            backend="iptables",
            node_name="node-0",
            netns=node.netns,
            instance=f"{lab.prefix}-n0",
            options={"iptables_flavour": flavour, "iptables_nat": nat},
        )
        backend = IptablesBackend(config)
        ir = service_ir(node.ip, services, None, endpoints)
        started = time.perf_counter()
        backend.start()
        backend.apply(IRDelta(ir=ir, full=True))
        full = time.perf_counter() - started
        timings = []
        frontends = dict(ir.frontends)
        for n in range(changes):
            key = list(frontends)[n * 97 % len(frontends)]
            old = frontends[key]
            moved = [b.address for b in old.routes[0].backends[1:]]
            moved.append(ipaddress.IPv4Address(int(POD_NET.broadcast_address) - 1 - n))
            fe = frontend(old.address, moved, 8080, old.service)
            frontends[key] = fe
            ir = DataplaneIR(settings=ir.settings, frontends=dict(frontends))
            started = time.perf_counter()
            backend.apply(IRDelta(ir=ir, frontends_upserted=(fe,)))
            timings.append(time.perf_counter() - started)
        started = time.perf_counter()
        successor = IptablesBackend(config)
        successor.start()
        successor.apply(IRDelta(ir=ir, full=True))
        restart = time.perf_counter() - started
        rules = successor.dump()["rules"]
        started = time.perf_counter()
        successor.cleanup()
        cleanup = time.perf_counter() - started
    return {
        "full_s": full,
        "change_ms": statistics.median(timings) * 1e3,
        "restart_s": restart,
        "cleanup_s": cleanup,
        "rules": rules,
    }


def data_plane(args: argparse.Namespace) -> None:
    """Part 1: connections/s and first-packet latency per configuration and scale."""
    scales = [int(s) for s in args.scales.split(",")]
    if args.quick:
        scales, args.repeat, args.duration, args.probes = [10, 100], 1, 1.0, 100
    results: dict[tuple[int, str], list[dict[str, float]]] = {}
    for round_ in range(args.repeat):
        for count in scales:
            order = CONFIGS[round_ % 3 :] + CONFIGS[: round_ % 3]  # alternate who goes first
            for config in order:
                r = measure(config, count, args.flavour, args.nat, args.duration, args.probes)
                results.setdefault((count, config), []).append(r)
                print(f"round {round_} {count:>6} {config:<8} {r}", file=sys.stderr, flush=True)
    print(
        f"\nflavour {args.flavour}, nat {args.nat}; medians of {args.repeat};"
        " rate relative to 'none'\n"
    )
    print(f"{'services':>8} {'config':<8} {'conn/s':>9} {'ratio':>6} {'p50 µs':>8} {'p99 µs':>8}")
    for count in scales:
        base = statistics.median(r["conn_per_s"] for r in results[(count, "none")])
        for config in CONFIGS:
            rs = results[(count, config)]
            rate = statistics.median(r["conn_per_s"] for r in rs)
            p50 = statistics.median(r["p50_us"] for r in rs)
            p99 = statistics.median(r["p99_us"] for r in rs)
            print(
                f"{count:>8} {config:<8} {rate:>9.0f} {rate / base:>6.2f} {p50:>8.1f} {p99:>8.1f}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flavour", choices=("nft", "legacy"), default="nft")
    parser.add_argument("--nat", choices=("auto", "iptables", "nftables"), default="auto")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--scales", default="10,1000,10000")
    parser.add_argument("--quick", action="store_true", help="tiny run: does the script work")
    parser.add_argument(
        "--control-plane-only", action="store_true", help="only part 2: sync and update times"
    )
    args = parser.parse_args()
    tools = (
        ("ipset", "conntrack")
        if args.control_plane_only
        else ("wrk", "nginx", "ipset", "conntrack")
    )
    reason = _tools.missing(*tools, Flavour(args.flavour).restore)
    if reason:
        print(
            f"cannot run: {reason}; wrk and nginx measure the kernel, not Python", file=sys.stderr
        )
        return 2
    if not args.control_plane_only:
        data_plane(args)
    services, endpoints = (100, 10) if args.quick else (10_000, 10)
    print(f"\nsync of {services} services x {endpoints} endpoints (fresh namespace)\n")
    print(
        f"{'flavour':<8} {'nat':<9} {'full sync s':>11} {'1 change ms':>11} {'restart s':>9}"
        f" {'cleanup s':>9} {'rules':>8}"
    )
    for flavour in ("legacy", "nft"):
        for nat in ("iptables", "nftables"):
            s = sync_times(flavour, nat, services, endpoints, 5)
            print(
                f"{flavour:<8} {nat:<9} {s['full_s']:>11.2f} {s['change_ms']:>11.1f}"
                f" {s['restart_s']:>9.2f} {s['cleanup_s']:>9.2f} {s['rules']:>8.0f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What each path through the eBPF programs costs per packet, without the network's noise.

Run as root (everything happens inside lab namespaces; see docs/lab.md)::

    .venv/bin/python bench/ebpf_paths.py [--calls 20000] [--rounds 5] [--json out.json]
    .venv/bin/python bench/ebpf_paths.py --objects a.o,b.o   # A/B two builds of bpf/
    .venv/bin/python bench/ebpf_paths.py --quick              # smoke run

End-to-end rates (``bench/ebpf_services.py``) move by several per cent from run
to run on a small machine, more than most single changes to the programs are
worth. This benchmark times the programs themselves: the two-node lab of
``ebpf_services.py`` with its services programmed, then hand-made packets of
the connection-rate benchmark's flows (a pod on node-0 to a ClusterIP whose
backend is on node-1, and the plain pod-to-pod flows around it) run through
the real attached programs with ``BPF_PROG_TEST_RUN``, as if they arrived on
the interface whose hook it is. Maps and helpers are real; a redirect only
sets the verdict, so no packet leaves and the next path starts from the same
state. Each path runs ``--calls`` times, one packet per call (a NAT rewrites
its packet, so a repeated run would time another path), in ``--rounds``
rounds; the median of the kernel's own timing per round, then the median of
the rounds, is reported, with the verdict as a check. Where a flow's entries
land in the maps differs from lab to lab and moves some rows by up to
~100 ns, so every build gets ``--labs`` labs; all stay up, the builds
alternate within every round, measured from one pinned CPU, and the table
gives the median over labs and rounds.

Reading the numbers: every call includes the test-run harness (about 100 to
150 ns here, the same for every path and build), and the cache is hot (the
same flow every call), so this ranks code paths and compares builds; what
traffic pays includes cache misses on top (``bench/ebpf_services.py``). The
"new flow" rows send a SYN with a fresh source port every call, so each one
creates conntrack entries as a real connection does.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import _tools
import ebpf_services as es
from dataplane.backends.ebpf import DEFAULT_VXLAN_PORT, _libbpf, _netns, loader
from dataplane.lab import Lab
from dataplane.lab.packets import TCP_SYN, tcp, vxlan

# "ok": passed to the stack, as TC_ACT_OK or as TC_ACT_UNSPEC (-1; the hook's
# later programs may still run, see dp_exit in bpf/dataplane.c)
TC_VERDICTS = {0: "ok", 0xFFFFFFFF: "ok", 2: "shot", 7: "redirect"}
CLIENT_PORT = 40_000
MEASURE_CPU = (os.cpu_count() or 1) - 1


@dataclass(frozen=True)
class Hop:
    """One path: a program of a node, the interface its hook is on, and its packets."""

    label: str
    node: str
    program: str
    interface: str  # in the node's namespace
    packets: Callable[[int], bytes]  # call number -> packet
    expect: str  # the verdict the path ends in


def paths(lab: Lab) -> list[Hop]:
    """The flows of the connection-rate benchmark, hop by hop, and the tunnel's packets."""
    n0, n1 = lab.nodes["node-0"], lab.nodes["node-1"]
    client, server = lab.pods[es.CLIENT_POD], lab.pods[es.SERVER_POD]
    vip, port = es.target_vip(), es.HTTP_PORT
    c, s = client.ip, server.ip
    plain_port = CLIENT_PORT + 1
    external, iperf = lab.clients[es.EXTERNAL].ip, lab.pods[es.IPERF_POD].ip
    to_node_port = tcp(external, CLIENT_PORT, n0.ip, es.NODE_PORT)
    tunnelled = tcp(external, CLIENT_PORT, iperf, _tools.IPERF3_PORT)
    reply = tcp(iperf, _tools.IPERF3_PORT, external, CLIENT_PORT)
    vx = DEFAULT_VXLAN_PORT  # the lab's data planes keep the default ebpf_vxlan_port
    return [
        Hop("pod -> ClusterIP, established (DNAT)", "node-0", "dp_from_wep",
              client.interface, lambda _: tcp(c, CLIENT_PORT, vip, port), "redirect"),
        Hop("its reply into the pod (reverse DNAT)", "node-0", "dp_from_hep",
              n0.uplink, lambda _: tcp(s, port, c, CLIENT_PORT), "redirect"),
        Hop("pod -> remote pod, leaving the pod", "node-0", "dp_from_wep",
              client.interface, lambda _: tcp(c, plain_port, s, port), "redirect"),
        Hop("pod -> remote pod, out of the uplink", "node-0", "dp_to_hep",
              n0.uplink, lambda _: tcp(c, plain_port, s, port), "ok"),
        Hop("pod -> remote pod, into the pod", "node-1", "dp_from_hep",
              n1.uplink, lambda _: tcp(c, plain_port, s, port), "redirect"),
        Hop("its reply, leaving the pod", "node-1", "dp_from_wep",
              server.interface, lambda _: tcp(s, port, c, plain_port), "redirect"),
        Hop("client -> NodePort, DNAT + VXLAN to node-1", "node-0", "dp_from_hep",
              n0.uplink, lambda _: to_node_port, "redirect"),
        Hop("NodePort tunnel packet, out of the uplink", "node-0", "dp_to_hep",
              n0.uplink, lambda _: vxlan(n0.ip, n1.ip, vx, es.NODE_PORT, tunnelled), "ok"),
        Hop("NodePort tunnel packet, decapsulated into the pod", "node-1", "dp_from_hep",
              n1.uplink, lambda _: vxlan(n0.ip, n1.ip, vx, es.NODE_PORT, tunnelled), "redirect"),
        Hop("its reply, into the tunnel back (node-1)", "node-1", "dp_from_wep",
              lab.pods[es.IPERF_POD].interface, lambda _: reply, "redirect"),
        Hop("its reply, decapsulated, reverse DNAT to the client", "node-0", "dp_from_hep",
              n0.uplink, lambda _: vxlan(n1.ip, n0.ip, vx, 0, reply), "redirect"),
        Hop("new flow: pod -> ClusterIP SYN (DNAT)", "node-0", "dp_from_wep",
              client.interface, lambda i: tcp(c, 1024 + i % 60000, vip, port, TCP_SYN),
              "redirect"),
        Hop("new flow: pod -> remote pod SYN, into the pod", "node-1", "dp_from_hep",
              n1.uplink, lambda i: tcp(c, 1024 + i % 60000, s, port, TCP_SYN), "redirect"),
    ]  # fmt: skip


@dataclass
class Build:
    """One build of the programs, loaded in a lab of its own that stays up for the run."""

    obj: Path
    lab: Lab
    fds: dict[str, dict[str, int]]  # node -> program -> fd
    hops: list[Hop]
    times: dict[str, list[float]]  # hop label -> median of each round


def start(stack: ExitStack, obj: Path, services: int) -> Build:
    loader.OBJECT = obj
    lab = stack.enter_context(es.fresh_lab())
    planes = es.program(lab, "ebpf", es.desired(lab, services)).planes
    fds = {node: dict(plane.backend.program_fds()) for node, plane in planes.items()}
    return Build(obj, lab, fds, paths(lab), {})


def time_hop(build: Build, hop: Hop, calls: range) -> None:
    """One round of ``hop``: its median goes to ``build.times``."""
    netns = build.lab.nodes[hop.node].netns
    ifindex = _netns.links(netns)[hop.interface]
    fd = build.fds[hop.node][hop.program]
    packets = [hop.packets(i) for i in calls]

    def run() -> tuple[list[int], int]:
        os.sched_setaffinity(0, {MEASURE_CPU})  # this thread only: one core's caches
        times, verdict = [], -1
        for packet in packets:
            result = _libbpf.prog_test_run(fd, packet, ifindex)
            times.append(result.duration_ns)
            verdict = result.retval
        return times, verdict

    times, verdict = _netns.run_in_netns(netns, run)
    seen = TC_VERDICTS.get(verdict, str(verdict))
    if seen != hop.expect:
        raise SystemExit(f"{hop.label}: verdict {seen}, expected {hop.expect}")
    build.times.setdefault(hop.label, []).append(statistics.median(times))


def measure(
    objects: Sequence[Path], services: int, calls: int, rounds: int, labs: int
) -> list[Build]:
    """Every hop of every build in ``labs`` labs each, round after round, alternating."""
    with ExitStack() as stack:
        builds = [start(stack, obj, services) for _ in range(labs) for obj in objects]
        per_round = calls // rounds
        for r in range(rounds):
            for index in range(len(builds[0].hops)):
                for build in builds[r % len(builds) :] + builds[: r % len(builds)]:
                    time_hop(build, build.hops[index], range(r * per_round, (r + 1) * per_round))
        return builds


def combined(builds: Sequence[Build]) -> dict[Path, dict[str, float]]:
    """Per build of the programs: each hop's median over its labs' round medians."""
    out: dict[Path, dict[str, list[float]]] = {}
    for build in builds:
        for label, times in build.times.items():
            out.setdefault(build.obj, {}).setdefault(label, []).extend(times)
    return {obj: {k: statistics.median(v) for k, v in hops.items()} for obj, hops in out.items()}


def table(builds: Sequence[Build]) -> Iterator[str]:
    labels = [hop.label for hop in builds[0].hops]
    results = combined(builds)
    width = max(len(label) for label in labels)
    yield f"{'path (ns per packet: median of round medians)':<{width}}" + "".join(
        f"{obj.stem[:14]:>16}" for obj in results
    )
    for label in labels:
        cells = (f"{hops[label]:>16.0f}" for hops in results.values())
        yield f"{label:<{width}}" + "".join(cells)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", help="comma-separated builds of bpf/ to compare")
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=20_000, help="per path and build")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--labs", type=int, default=2, help="labs per build (placement varies)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--quick", action="store_true", help="10 services, 200 calls")
    args = parser.parse_args(argv)
    if args.quick:
        args.services, args.calls, args.rounds, args.labs = 10, 200, 2, 1
    reason = es.unavailable("ebpf")
    if reason:
        print(f"ebpf unavailable: {reason}", file=sys.stderr)
        return 1
    objects = [Path(o) for o in args.objects.split(",")] if args.objects else [loader.OBJECT]
    builds = measure(objects, args.services, args.calls, args.rounds, args.labs)
    print(
        f"{args.services:,} services, {args.calls:,} calls per path and lab in {args.rounds} "
        f"rounds, {args.labs} labs per build"
    )
    for line in table(builds):
        print(line)
    if args.json:
        results = {str(obj): hops for obj, hops in combined(builds).items()}
        args.json.write_text(json.dumps(results, indent=1))
    left = es.leftovers()
    print(f"lab namespaces left behind: {', '.join(left) or 'none'}")
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

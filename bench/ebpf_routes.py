"""What reading ``dp_route`` costs at cluster scale: one route lookup per other
node and per remote pod CIDR, in a throwaway namespace whose routing table
holds a route to each.

Run as root (a namespace of its own, deleted afterwards)::

    .venv/bin/python bench/ebpf_routes.py [--nodes 1000] [--repeat 5] [--json out.json]

Two ways to ask, in the same run: pyroute2's ``route("get")`` one address at
a time (the baseline, what the backend did before) and the backend's own
batched rtnetlink (``_rtnl.route_get``). Both must give the same answers. The
backend pays this at every full sync, and after a route change for the
addresses inside the changed destinations (none, for the per-pod routes a
CNI adds: ``tests/kernel/test_ebpf_services.py``).
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from dataplane.backends.ebpf import _netns, _rtnl
from dataplane.backends.ebpf._rtnl import RouteOut


@contextmanager
def routed_namespace(nodes: int) -> Iterator[tuple[str, list[str]]]:
    """A namespace with an uplink and, per node, a route to its pod CIDR via
    its address; yields the name and the addresses the backend would probe."""
    name = f"dpbr{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        batch = [
            "link add up0 type veth peer name up1",
            "link set up0 up",
            "link set up1 up",
            "addr add 10.0.0.1/16 dev up0",
        ]
        node_addrs = [f"10.0.{1 + i // 250}.{1 + i % 250}" for i in range(nodes)]
        probes = [f"10.{100 + i // 256}.{i % 256}.1" for i in range(nodes)]
        batch += [
            f"route add 10.{100 + i // 256}.{i % 256}.0/24 via {gw}"
            for i, gw in enumerate(node_addrs)
        ]
        subprocess.run(
            ["ip", "-n", name, "-batch", "-"], input="\n".join(batch), text=True, check=True
        )
        yield name, probes + node_addrs
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def pyroute2_lookups(addrs: list[str]) -> dict[str, RouteOut]:
    out = {}
    with IPRoute() as ipr:
        for addr in addrs:
            try:
                found = ipr.route("get", dst=addr)
            except NetlinkError:
                continue
            oif = found[0].get("RTA_OIF") if found else None
            if oif:
                out[addr] = RouteOut(int(oif), found[0].get("RTA_GATEWAY"))
    return out


def timed(
    netns: str, fn: Callable[[list[str]], dict[str, RouteOut]], addrs: list[str], repeat: int
) -> tuple[float, dict[str, RouteOut]]:
    times, answer = [], {}
    for _ in range(repeat):
        start = time.perf_counter()
        answer = _netns.run_in_netns(netns, lambda: fn(addrs))
        times.append(time.perf_counter() - start)
    return statistics.median(times), answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    with routed_namespace(args.nodes) as (netns, addrs):
        base_s, base = timed(netns, pyroute2_lookups, addrs, args.repeat)
        ours_s, ours = timed(netns, _rtnl.route_get, addrs, args.repeat)
    if ours != base or len(ours) != len(addrs):
        print(f"answers differ: {len(ours)} against {len(base)} of {len(addrs)}", file=sys.stderr)
        return 1
    result = {
        "nodes": args.nodes,
        "lookups": len(addrs),
        "pyroute2_ms": round(base_s * 1e3, 1),
        "batched_ms": round(ours_s * 1e3, 1),
        "speedup": round(base_s / ours_s, 1),
    }
    print(f"{len(addrs):,} route lookups ({args.nodes:,} nodes), median of {args.repeat}:")
    print(f"  pyroute2, one at a time  {result['pyroute2_ms']:8.1f} ms")
    print(f"  batched rtnetlink        {result['batched_ms']:8.1f} ms  ({result['speedup']}x)")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

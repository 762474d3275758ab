"""Benchmark calc at scale: full compile, one endpoint change, one pod label change, memory.

10,000 services × 10 endpoints, 5,000 workloads (50 namespaces, 2 nodes),
1,000 namespaced policies with selector-based rules. Targets (issue 2):
full compile ≤ 3 s, endpoint change ≤ 5 ms, label change ≤ 10 ms, RSS ≤ 600 MB.

    .venv/bin/python bench/calc.py [--services N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

from dataplane.calc import Compiler
from dataplane.model import (
    DesiredState,
    Endpoint,
    EndpointPort,
    EndpointSet,
    EntityMatch,
    Namespace,
    Node,
    Policy,
    Profile,
    Rule,
    Service,
    ServicePort,
    StateObject,
    WorkloadEndpoint,
)

NAMESPACES = 50


def pod_ip(i: int) -> str:
    return f"10.{100 + (i >> 16) % 100}.{(i >> 8) & 255}.{i & 255}"


def build(services: int, workloads: int, policies: int) -> list[StateObject]:
    objs: list[StateObject] = [
        Node("n1", ["10.99.0.11"], ["10.100.0.0/16"]),
        Node("n2", ["10.99.0.12"], ["10.101.0.0/16"]),
    ]
    for n in range(NAMESPACES):
        objs.append(Namespace(f"ns{n}", {"team": f"t{n % 5}"}))
        objs.append(Profile(f"kns.ns{n}", [Rule("Allow")], [Rule("Allow")]))
    for i in range(workloads):
        objs.append(
            WorkloadEndpoint(
                f"ns{i % NAMESPACES}",
                f"pod{i}",
                "n1" if i % 2 == 0 else "n2",
                f"dpw{i:011x}",
                [pod_ip(i)],
                labels={"app": f"app{i % 20}", "tier": f"t{i % 3}"},
                profiles=[f"kns.ns{i % NAMESPACES}"],
            )
        )
    for s in range(services):
        eps = [
            Endpoint([pod_ip((s * 10 + e) % workloads)], node="n1" if e % 2 == 0 else "n2")
            for e in range(10)
        ]
        objs.append(
            Service(
                f"ns{s % NAMESPACES}",
                f"svc{s}",
                [ServicePort(80, target_port=8080)],
                cluster_ips=[f"10.96.{s >> 8}.{s & 255}"],
            )
        )
        objs.append(EndpointSet(f"ns{s % NAMESPACES}", f"svc{s}", [EndpointPort(8080)], eps))
    for p in range(policies):
        objs.append(
            Policy(
                f"pol{p}",
                f"ns{p % NAMESPACES}",
                order=p % 7,
                selector=f'app == "app{p % 20}"',
                ingress=[
                    Rule(
                        "Allow",
                        "TCP",
                        source=EntityMatch(selector=f'tier == "t{p % 3}"'),
                        destination=EntityMatch(ports=[8080]),
                    ),
                    Rule("Allow", source=EntityMatch(namespace_selector=f'team == "t{p % 5}"')),
                ],
            )
        )
    return objs


def timed(fn, repeat: int = 1) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=10_000)
    ap.add_argument("--workloads", type=int, default=5_000)
    ap.add_argument("--policies", type=int, default=1_000)
    ap.add_argument("--json")
    args = ap.parse_args()
    objs = build(args.services, args.workloads, args.policies)
    state = DesiredState(objs)
    compiler = Compiler("n1", preserve_source=False)
    full = timed(lambda: compiler.compile(state))[0]

    eps_key = next(o.key for o in objs if isinstance(o, EndpointSet))
    eps = state.get(eps_key)
    assert isinstance(eps, EndpointSet)
    ep_times = []
    for i in range(20):
        changed = EndpointSet(
            eps.namespace,
            eps.name,
            eps.ports,
            [*eps.endpoints[:-1], Endpoint([pod_ip(i)], node="n2", ready=i % 2 == 0)],
        )
        state = state.changed([changed])
        ep_times += timed(lambda s=state: compiler.update(s, [eps_key]))

    pod = next(o for o in objs if isinstance(o, WorkloadEndpoint) and o.node == "n1")
    label_times = []
    for i in range(20):
        relabeled = WorkloadEndpoint(
            pod.namespace,
            pod.name,
            pod.node,
            pod.interface,
            pod.addresses,
            labels={"app": f"app{i % 20}", "tier": f"t{i % 3}"},
            profiles=pod.profiles,
        )
        state = state.changed([relabeled])
        label_times += timed(lambda s=state: compiler.update(s, [pod.key]))

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "services": args.services,
        "endpoints_per_service": 10,
        "workloads": args.workloads,
        "policies": args.policies,
        "frontends": len(compiler.ir.frontends),
        "ip_sets": len(compiler.ir.ip_sets),
        "full_compile_s": round(full, 3),
        "endpoint_change_ms_median": round(statistics.median(ep_times) * 1000, 3),
        "label_change_ms_median": round(statistics.median(label_times) * 1000, 3),
        "peak_rss_mb": round(rss_mb, 1),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()

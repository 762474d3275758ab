"""Policy cost: connections/s through a policed endpoint, eBPF vs iptables, and update latency.

Run as root (everything happens inside lab namespaces; see docs/lab.md)::

    .venv/bin/python bench/ebpf_policy.py [--json out.json] [--repeat 3] [--duration 5]
    .venv/bin/python bench/ebpf_policy.py --quick      # smoke run: checks the script works

1. New TCP connections/s (``wrk -t1 -c32 -H 'Connection: close'`` against
   nginx) from a pod on node-0 to nginx in a pod on node-1 whose ingress is
   policed by 0, 100 or 1,000 rules. Rule ``i`` allows TCP to port
   ``10000 + i`` from a 10,000-member IP set (a selector matching the client
   and 9,999 workloads elsewhere), so a first packet walks every rule; the
   last allows TCP port 80 from that set.
   "0 rules" is no policy (the namespace's allow-all profile). Every new
   connection pays the walk; established packets do not (verdicts are kept in
   conntrack). Target: eBPF with 1,000 rules ≥ 80 % of eBPF with none.
2. Update latency with 1,000 policies selecting one pod (one rule each): one
   rule changed, and one IP-set member changed (a client pod's label, which
   a selector set follows), as ``Dataplane.transaction()`` end to end and as
   the backend's ``apply`` alone. Medians of ``--updates``. Target for eBPF:
   an IP-set member change ≤ 2 ms.

iptables runs only if ``backend_class("iptables").unavailable_reason()`` is
None. Every configuration gets a fresh lab (conntrack fills up), configurations
alternate within each repeat, medians are reported.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import attrs

import _tools
from dataplane.backends.registry import backend_class
from dataplane.errors import DataplaneError
from dataplane.lab import Lab, LabSpec
from dataplane.model import (
    DesiredState,
    EntityMatch,
    Policy,
    Rule,
    StateObject,
    WorkloadEndpoint,
)
from dataplane.scenarios.cluster import base_objects

SPEC = LabSpec.uniform(2, 2, fabric_clients=1)
CLIENT_POD = "default/pod-0-0"
SERVER_POD = "default/pod-1-0"
HTTP_PORT = 80
SET_SIZE = 10_000
RULE_COUNTS = (0, 100, 1000)
UPDATE_POLICIES = 1000
CLIENTS = {"bench-client": "yes"}
TARGETS = {"rules_1000_ratio": 0.80, "ipset_member_change_ms": 2.0}
_PREFIXES: list[str] = []


@dataclass(frozen=True)
class Settings:
    repeat: int = 3
    duration: float = 5.0
    updates: int = 20
    rule_counts: tuple[int, ...] = RULE_COUNTS
    policies: int = UPDATE_POLICIES

    @classmethod
    def quick(cls) -> Settings:
        return cls(repeat=1, duration=1.0, updates=3, rule_counts=(0, 100), policies=50)


def backends() -> dict[str, str | None]:
    """Backend → why it cannot run (None: it runs)."""
    out: dict[str, str | None] = {}
    for name in ("ebpf", "iptables"):
        try:
            out[name] = backend_class(name).unavailable_reason()
        except DataplaneError as exc:
            out[name] = str(exc)
    return out


def crowd() -> list[StateObject]:
    """9,999 workloads elsewhere labelled like the client: with it, a 10,000-member set.

    A selector set rather than a 10,000-CIDR list: calc resolves a selector
    once, while every rule naming a CIDR list would parse the whole list.
    """
    hosts = ipaddress.ip_network("172.16.0.0/16").hosts()
    return [
        WorkloadEndpoint(
            "default", f"crowd-{i}", "elsewhere", f"cr{i}", (str(next(hosts)),), labels=CLIENTS
        )
        for i in range(SET_SIZE - 1)
    ]


def policed(lab: Lab, rules: int) -> list[StateObject]:
    """The server pod's ingress: ``rules`` non-matching rules, then the allow that matches."""
    if not rules:
        return []
    clients = EntityMatch(selector='bench-client == "yes"')
    ingress = [
        Rule("Allow", "TCP", source=clients, destination=EntityMatch(ports=[p]))
        for p in range(10000, 10000 + rules - 1)
    ]
    ingress.append(Rule("Allow", "TCP", source=clients, destination=EntityMatch(ports=[HTTP_PORT])))
    name = lab.pods[SERVER_POD].name
    return [Policy("bench", "default", selector=f'bench == "{name}"', ingress=ingress)]


def with_labels(lab: Lab, objs: Sequence[StateObject]) -> list[StateObject]:
    """Base objects with the server pod labelled so policies can select it alone,
    and the client pod labelled as a member of the big set."""
    server, client = lab.pods[SERVER_POD].name, lab.pods[CLIENT_POD].name
    out: list[StateObject] = []
    for o in objs:
        if isinstance(o, WorkloadEndpoint) and o.name == server:
            o = attrs.evolve(o, labels={**o.labels, "bench": server})
        elif isinstance(o, WorkloadEndpoint) and o.name == client:
            o = attrs.evolve(o, labels={**o.labels, **CLIENTS})
        out.append(o)
    return out


@contextmanager
def fresh(backend: str) -> Iterator[tuple[Lab, dict[str, Any]]]:
    with Lab(SPEC) as lab:
        _PREFIXES.append(lab.prefix)
        planes: dict[str, Any] = {}
        try:
            for name in lab.nodes:
                planes[name] = lab.dataplane(name, backend=backend, resync_period=0).start()
            yield lab, planes
        finally:
            for dp in planes.values():
                dp.cleanup()
                dp.close()


def connections(backend: str, rules: int, s: Settings) -> dict[str, Any]:
    with fresh(backend) as (lab, planes):
        state = DesiredState(
            [*with_labels(lab, base_objects(lab.plan)), *crowd(), *policed(lab, rules)]
        )
        started = time.perf_counter()
        for dp in planes.values():
            dp.apply(state)
        apply_s = time.perf_counter() - started
        with _tools.nginx(lab, SERVER_POD, HTTP_PORT) as address:
            result = _tools.wrk(lab, CLIENT_POD, f"http://{address}/", s.duration)
        if not result.requests_per_s:
            raise _tools.ToolError(f"{backend}, {rules} rules: no connection got through")
        return {
            "conn_per_s": result.requests_per_s,
            "errors": result.socket_errors,
            "apply_s": apply_s,
        }


def update_latency(backend: str, s: Settings) -> dict[str, Any]:
    """Medians (ms) of one rule change and one IP-set member change at ``s.policies``."""
    with fresh(backend) as (lab, planes):
        dp = planes[lab.pods[SERVER_POD].node]
        name = lab.pods[SERVER_POD].name
        pols = [
            Policy(
                f"p{i:04d}",
                "default",
                selector=f'bench == "{name}"',
                ingress=[
                    Rule(
                        "Allow",
                        "TCP",
                        source=EntityMatch(selector='role == "client"'),
                        destination=EntityMatch(ports=[10000 + i]),
                    )
                ],
            )
            for i in range(s.policies)
        ]
        base = [*with_labels(lab, base_objects(lab.plan)), *crowd()]
        dp.apply(DesiredState([*base, *pols]))
        client = next(o for o in base if isinstance(o, WorkloadEndpoint) and o.name != name)
        backend_ms: list[float] = []
        real_apply = dp.backend.apply

        def timed_apply(delta: Any) -> None:
            t = time.perf_counter()
            real_apply(delta)
            backend_ms.append((time.perf_counter() - t) * 1e3)

        dp.backend.apply = timed_apply
        rule_ms, member_ms = [], []
        rule_backend, member_backend = [], []
        for n in range(s.updates):
            changed = attrs.evolve(
                pols[0],
                ingress=[
                    attrs.evolve(pols[0].ingress[0], destination=EntityMatch(ports=[20000 + n]))
                ],
            )
            backend_ms.clear()
            t = time.perf_counter()
            with dp.transaction() as tx:
                tx.upsert(changed)
            rule_ms.append((time.perf_counter() - t) * 1e3)
            rule_backend.append(sum(backend_ms))
            labels = {**client.labels, "role": "client"} if n % 2 == 0 else dict(client.labels)
            backend_ms.clear()
            t = time.perf_counter()
            with dp.transaction() as tx:
                tx.upsert(attrs.evolve(client, labels=labels))
            member_ms.append((time.perf_counter() - t) * 1e3)
            member_backend.append(sum(backend_ms))
        dp.backend.apply = real_apply
        return {
            "rule_change_ms": statistics.median(rule_ms),
            "rule_change_backend_ms": statistics.median(rule_backend),
            "ipset_member_change_ms": statistics.median(member_ms),
            "ipset_member_change_backend_ms": statistics.median(member_backend),
        }


def leftovers() -> list[str]:
    try:
        names = os.listdir("/run/netns")
    except FileNotFoundError:
        return []
    return sorted(n for n in names if any(n.startswith(p + "-") for p in _PREFIXES))


def run(s: Settings) -> dict[str, Any]:
    reasons = backends()
    columns = [b for b, why in reasons.items() if why is None]
    samples: dict[tuple[str, int], list[float]] = {}
    applies: dict[tuple[str, int], list[float]] = {}
    for rep in range(s.repeat):
        configs = [(b, n) for n in s.rule_counts for b in columns]
        if rep % 2:
            configs.reverse()  # alternate the order between repeats
        for b, n in configs:
            r = connections(b, n, s)
            samples.setdefault((b, n), []).append(r["conn_per_s"])
            applies.setdefault((b, n), []).append(r["apply_s"])
    conn = {
        b: {
            str(n): {
                "median": statistics.median(samples[(b, n)]),
                "all": samples[(b, n)],
                "apply_s": statistics.median(applies[(b, n)]),
            }
            for n in s.rule_counts
        }
        for b in columns
    }
    updates = {b: update_latency(b, s) for b in columns}
    return {
        "skipped": {b: why for b, why in reasons.items() if why is not None},
        "settings": s.__dict__,
        "connections": conn,
        "updates": updates,
        "targets": TARGETS,
        "leftover_namespaces": leftovers(),
    }


def table(result: dict[str, Any], s: Settings) -> str:
    lines = ["connections/s (median), ratio to the same backend with 0 rules"]
    head = f"{'backend':<10}" + "".join(f"{n:>8} rules" + " " * 8 for n in s.rule_counts)
    lines.append(head)
    for b, by_n in result["connections"].items():
        none = by_n[str(s.rule_counts[0])]["median"]
        cells = "".join(
            f"{by_n[str(n)]['median']:>14,.0f} ({by_n[str(n)]['median'] / none:4.0%})"
            for n in s.rule_counts
        )
        lines.append(f"{b:<10}{cells}")
    lines.append("")
    lines.append(f"update latency at {s.policies} policies, ms (median): end to end / backend")
    for b, u in result["updates"].items():
        lines.append(
            f"{b:<10} rule change {u['rule_change_ms']:8.2f} / {u['rule_change_backend_ms']:6.2f}"
            f"   IP-set member change {u['ipset_member_change_ms']:8.2f}"
            f" / {u['ipset_member_change_backend_ms']:6.2f}"
        )
    for b, why in result["skipped"].items():
        lines.append(f"{b}: skipped ({why})")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (lab namespaces)", file=sys.stderr)
        return 2
    reason = _tools.missing("wrk", "nginx")
    if reason:
        print(reason, file=sys.stderr)
        return 2
    s = (
        Settings.quick()
        if args.quick
        else Settings(repeat=args.repeat, duration=args.duration, updates=args.updates)
    )
    result = run(s)
    print(table(result, s))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)
    return 1 if result["leftover_namespaces"] else 0


if __name__ == "__main__":
    sys.exit(main())

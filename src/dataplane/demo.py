"""``dataplane demo``: a lab cluster, a kernel backend, real traffic, a table.

It builds the standard two-node lab in network namespaces, programs every
node with the chosen backend (eBPF by default, when this machine can run
it), sends real connections and prints what happened next to what the
reference model predicts. Everything it creates is removed at the end.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, TextIO

from dataplane.backends.registry import backend_class
from dataplane.errors import DataplaneError
from dataplane.model import EntityMatch, Policy, Rule
from dataplane.scenarios.cluster import STANDARD_SPEC, reference_plan
from dataplane.scenarios.reference import ReferenceCluster
from dataplane.scenarios.types import REFUSED, TIMEOUT, Probe, Scenario, connected

if TYPE_CHECKING:
    from dataplane.scenarios.run import ProbeReport

VIP = "10.96.0.10"
WEB = ("default/web-1", "default/web-2")


def _objects(f: dict[str, str]) -> list[object]:
    from dataplane.model import Endpoint, EndpointPort, EndpointSet, Service, ServicePort

    eps = [Endpoint([f[p]], node="n1" if p.endswith("1") else "n2") for p in WEB]
    return [
        Service(
            "default",
            "web",
            [ServicePort(80, target_port=8080, node_port=30080)],
            type="NodePort",
            cluster_ips=[VIP],
        ),
        EndpointSet("default", "web", [EndpointPort(8080)], eps),
        Service("default", "empty", [ServicePort(80)], cluster_ips=["10.96.0.11"]),
        EndpointSet("default", "empty", [EndpointPort(8080)], []),
        Policy(
            "db-from-cli",
            "prod",
            selector='app == "db"',
            ingress=[Rule("Allow", source=EntityMatch(selector='app == "cli"'))],
        ),
    ]


DEMO = Scenario(
    "demo",
    _objects,  # type: ignore[arg-type]
    (
        Probe("default/cli-1", VIP, 80, connected(*WEB, source="client")),
        Probe(
            "ext",
            "n1",
            30080,
            connected(*WEB, source="node"),
            overrides={"source_ip_preservation": connected(*WEB, source="client")},
        ),
        Probe(
            "far",
            "n2",
            30080,
            connected(*WEB, source="node"),
            overrides={"source_ip_preservation": connected(*WEB, source="client")},
        ),
        Probe("default/cli-1", "10.96.0.11", 80, REFUSED),
        Probe("prod/cli-2", "prod/db-1", 8080, connected("prod/db-1")),
        Probe("default/web-1", "prod/db-1", 8080, TIMEOUT),
    ),
)


def _pick_backend(requested: str | None) -> tuple[str | None, str]:
    if requested:
        return requested, "requested"
    if os.geteuid() != 0:
        return None, "not root: no lab, reference model only"
    for name in ("ebpf", "iptables"):
        try:
            reason = backend_class(name).unavailable_reason()
        except (ImportError, DataplaneError) as exc:
            reason = str(exc)
        if reason is None:
            return name, "available"
    return None, "no kernel backend available here: reference model only"


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))


def run(backend: str | None = None, out: TextIO = sys.stdout) -> int:
    chosen, why = _pick_backend(backend)
    from dataplane.backends.fake import FULL_CAPABILITIES

    caps = backend_class(chosen).capabilities if chosen else FULL_CAPABILITIES
    reference = ReferenceCluster(reference_plan(), caps)
    reference.apply(DEMO)
    rows = [["probe", "expected", "reference", "observed", "answered by", "source seen", ""]]
    failures = 0
    reports = _lab_reports(chosen) if chosen else None
    for i, probe in enumerate(DEMO.probes):
        exp = probe.expectation(caps)
        ref = reference.observe(probe)
        observed = answered = seen = "-"
        mark = ""
        if reports is not None:
            rep = reports[i]
            observed, answered = rep.result.outcome, rep.answered_by or "-"
            seen = rep.result.seen_source or "-"
            mark = "ok" if rep.ok else "MISMATCH"
            failures += not rep.ok
        rows.append(
            [
                str(probe),
                exp.outcome.value + (f" ({exp.source})" if exp.source else ""),
                ref.outcome.value,
                observed,
                answered,
                seen,
                mark,
            ]
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    print(f"dataplane demo: backend {chosen or 'none'} ({why})", file=out)
    for row in rows:
        print(_row(row, widths), file=out)
    return 1 if failures else 0


def _lab_reports(backend: str) -> list[ProbeReport]:
    from dataplane.lab.lab import Lab
    from dataplane.scenarios.run import LabCluster

    with Lab(STANDARD_SPEC) as lab:
        cluster = LabCluster(lab, backend)
        try:
            return cluster.run(DEMO)
        finally:
            cluster.cleanup()

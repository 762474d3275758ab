"""``dataplane demo``: a lab cluster, a kernel backend, real traffic, a table.

It builds the standard two-node lab in network namespaces, programs every
node with the chosen backend (eBPF by default, when this machine can run
it), sends real connections and prints what happened next to what the
reference model predicts. Everything it creates is removed at the end.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from dataplane.backends.base import Capabilities
from dataplane.backends.fake import FULL_CAPABILITIES
from dataplane.backends.registry import backend_class
from dataplane.errors import DataplaneError
from dataplane.model import (
    Endpoint,
    EndpointPort,
    EndpointSet,
    EntityMatch,
    Policy,
    Rule,
    Service,
    ServicePort,
    StateObject,
)
from dataplane.scenarios.cluster import STANDARD_SPEC, reference_plan
from dataplane.scenarios.reference import ReferenceCluster
from dataplane.scenarios.types import REFUSED, TIMEOUT, Probe, Scenario, connected

if TYPE_CHECKING:
    from dataplane.scenarios.run import LabCluster

VIP = "10.96.0.10"
WEB = ("default/web-1", "default/web-2")
PRESERVED = {"source_ip_preservation": connected(*WEB, source="client")}


def _services(f: dict[str, str]) -> Sequence[StateObject]:
    eps = [Endpoint([f[p]], node="n1" if p.endswith("1") else "n2") for p in WEB]
    web_port = ServicePort(80, target_port=8080, node_port=30080)
    return [
        Service("default", "web", [web_port], type="NodePort", cluster_ips=[VIP]),
        EndpointSet("default", "web", [EndpointPort(8080)], eps),
        Service("default", "empty", [ServicePort(80)], cluster_ips=["10.96.0.11"]),
        EndpointSet("default", "empty", [EndpointPort(8080)], []),
    ]


def _policy(f: dict[str, str]) -> Sequence[StateObject]:
    only_cli = Rule("Allow", source=EntityMatch(selector='app == "cli"'))
    return [
        *_services(f),
        Policy("db-from-cli", "prod", selector='app == "db"', ingress=[only_cli]),
    ]


DEMOS = (
    Scenario(
        "services",
        _services,
        (
            Probe("default/cli-1", VIP, 80, connected(*WEB, source="client")),
            Probe("ext", "n1", 30080, connected(*WEB, source="node"), overrides=PRESERVED),
            Probe("far", "n2", 30080, connected(*WEB, source="node"), overrides=PRESERVED),
            Probe("default/cli-1", "10.96.0.11", 80, REFUSED),
        ),
    ),
    Scenario(
        "policy",
        _policy,
        (
            Probe("prod/cli-2", "prod/db-1", 8080, connected("prod/db-1")),
            Probe("default/web-1", "prod/db-1", 8080, TIMEOUT),
        ),
        requires=("policy",),
    ),
)

HEADER = ["probe", "expected", "reference", "observed", "answered by", "source seen", ""]


def _pick_backend(requested: str | None) -> tuple[str | None, str]:
    if requested:
        return requested, "requested"
    if os.geteuid() != 0:
        return None, "not root: no lab, reference model only"
    for name in ("ebpf", "iptables"):
        try:
            reason = backend_class(name).unavailable_reason()
        except DataplaneError as exc:
            reason = str(exc)
        if reason is None:
            return name, "available"
    return None, "no kernel backend available here: reference model only"


def _rows(scenario: Scenario, caps: Capabilities, lab: LabCluster | None) -> list[list[str]]:
    reference = ReferenceCluster(reference_plan(), caps)
    reference.apply(scenario)
    missing = [c for c in scenario.requires if not getattr(caps, c)]
    if lab is not None and not missing:
        reports = lab.run(scenario)
    rows = []
    for i, probe in enumerate(scenario.probes):
        exp = probe.expectation(caps)
        row = [
            str(probe),
            exp.outcome.value + (f" ({exp.source})" if exp.source else ""),
            reference.observe(probe).outcome.value,
            "-",
            "-",
            "-",
            "",
        ]
        if missing:
            row[6] = f"not run: backend lacks {', '.join(missing)}"
        elif lab is not None:
            rep = reports[i]
            row[3:] = [
                rep.result.outcome,
                rep.answered_by or "-",
                rep.result.seen_source or "-",
                "ok" if rep.ok else "MISMATCH",
            ]
        rows.append(row)
    return rows


def run(backend: str | None = None, out: TextIO = sys.stdout) -> int:
    """Print the table; exit status 1 if any real probe disagreed with the expectation."""
    chosen, why = _pick_backend(backend)
    caps = backend_class(chosen).capabilities if chosen else FULL_CAPABILITIES
    if chosen is None:
        rows = [row for s in DEMOS for row in _rows(s, caps, None)]
    else:
        rows = _lab_rows(chosen, caps)
    table = [HEADER, *rows]
    widths = [max(len(r[c]) for r in table) for c in range(len(HEADER))]
    print(f"dataplane demo: backend {chosen or 'none'} ({why})", file=out)
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)
    return 1 if any(r[6] == "MISMATCH" for r in rows) else 0


def _lab_rows(backend: str, caps: Capabilities) -> list[list[str]]:
    from dataplane.lab.lab import Lab
    from dataplane.scenarios.run import LabCluster

    with Lab(STANDARD_SPEC) as lab:
        cluster = LabCluster(lab, backend)
        try:
            return [row for s in DEMOS for row in _rows(s, caps, cluster)]
        finally:
            cluster.cleanup()

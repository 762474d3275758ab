"""A readable, JSON-serialisable rendering of an IR (``dataplane dump`` for fake)."""

from __future__ import annotations

from typing import Any

from dataplane.calc.ir import Chain, DataplaneIR, IRRule


def _rule(rule: IRRule) -> str:
    parts = [rule.action.value]
    if rule.protocol is not None:
        parts.append(f"proto={rule.protocol}")
    for name in ("src_sets", "not_src_sets", "dst_sets", "not_dst_sets"):
        value = getattr(rule, name)
        if value:
            parts.append(f"{name}={','.join(value)}")
    for name in ("src_ports", "dst_ports", "not_src_ports", "not_dst_ports"):
        pm = getattr(rule, name)
        if pm is not None:
            ports = [str(r) for r in pm.ranges] + list(pm.named_sets)
            parts.append(f"{name}={','.join(ports)}")
    return " ".join(parts)


def _chain(chain: Chain) -> dict[str, Any]:
    return {
        "tiers": [
            {
                "tier": t.name,
                "default": t.default_action.value,
                "policies": {p.name: [_rule(r) for r in p.rules] for p in t.policies},
            }
            for t in chain.tiers
        ],
        "profiles": {p.name: [_rule(r) for r in p.rules] for p in chain.profiles},
        "end": chain.end.value,
    }


def dump_ir(ir: DataplaneIR) -> dict[str, Any]:
    frontends: dict[str, Any] = {}
    for fe in sorted(ir.frontends.values(), key=lambda f: (f.service, str(f.address), f.port)):
        frontends.setdefault(fe.service, []).append(
            {
                "frontend": f"{fe.kind.value} {fe.address}:{fe.port}/{fe.protocol.name}",
                "routes": [
                    {
                        "sources": r.sources.value,
                        "masquerade": r.masquerade,
                        "backends": [f"{b.address}:{b.port}" for b in r.backends]
                        or r.if_empty.value,
                    }
                    for r in fe.routes
                ],
                "affinity_timeout": fe.affinity_timeout,
                "source_ranges": [str(r) for r in fe.source_ranges],
            }
        )
    return {
        "node": ir.settings.node,
        "services": frontends,
        "ip_sets": {
            s.id: {
                "description": s.description,
                "members": sorted(str(n) for n in s.nets)
                + sorted(f"{n},{p.name.lower()}:{port}" for n, p, port in s.ports),
            }
            for s in ir.ip_sets.values()
        },
        "workloads": {
            str(w.key): {
                "interface": w.interface,
                "ingress": _chain(w.ingress),
                "egress": _chain(w.egress),
            }
            for w in ir.workloads.values()
        },
        "host_endpoints": {
            str(h.key): {
                "interface": h.interface,
                **{
                    hook: _chain(getattr(h, hook))
                    for hook in (
                        "ingress",
                        "egress",
                        "forward_ingress",
                        "forward_egress",
                        "pre_dnat_ingress",
                        "untracked_ingress",
                        "untracked_egress",
                    )
                },
            }
            for h in ir.hosts.values()
        },
        "health_check_node_ports": sorted(ir.health_checks),
    }

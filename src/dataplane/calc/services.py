"""Kubernetes service semantics → frontends, in one place for every backend.

Follows kube-proxy (``pkg/proxy/topology.go`` CategorizeEndpoints and the
iptables proxier's masquerade rules), with one deliberate difference that a
capability switches on: when the backend preserves the source
(``CalcContext.preserve_source``), external traffic is never masqueraded.

Per service port this yields one frontend per cluster IP, per node address
(node port), per external IP and per load-balancer IP. Each frontend holds
ordered routes by source class; see :class:`dataplane.calc.ir.Route`.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from dataplane.calc.context import CalcContext
from dataplane.calc.ir import (
    Backend,
    Frontend,
    FrontendKind,
    HealthCheck,
    NoEndpoints,
    Route,
    SourceClass,
)
from dataplane.model import (
    EndpointSet,
    IPAddress,
    Service,
    ServicePort,
    ServiceType,
    SessionAffinity,
    TrafficPolicy,
)


@attrs.frozen
class EndpointCategories:
    """kube-proxy's CategorizeEndpoints result for one service port.

    ``cluster``: ready endpoints, or serving-and-terminating ones when none
    is ready. ``local``: the same rule applied to this node's endpoints only.
    """

    cluster: tuple[Backend, ...]
    local: tuple[Backend, ...]


def _order(b: Backend) -> tuple[int, int, int]:
    return (b.address.version, int(b.address), b.port)


def _resolve_port(svc_port: ServicePort, eps: EndpointSet) -> int | None:
    for ep_port in eps.ports:
        if ep_port.name == svc_port.name and ep_port.protocol == svc_port.protocol:
            return ep_port.port
    target = svc_port.effective_target
    return target if isinstance(target, int) else None


def categorize(svc_port: ServicePort, eps: EndpointSet | None, node: str) -> EndpointCategories:
    if eps is None:
        return EndpointCategories((), ())
    port = _resolve_port(svc_port, eps)
    if port is None:
        return EndpointCategories((), ())
    ready: list[Backend] = []
    fallback: list[Backend] = []
    for ep in eps.endpoints:
        is_local = ep.node == node
        for addr in ep.addresses:
            if ep.ready:
                ready.append(Backend(addr, port, ep.node, is_local))
            elif ep.is_serving and ep.terminating:
                fallback.append(Backend(addr, port, ep.node, is_local, terminating=True))
    cluster = tuple(sorted(ready or fallback, key=_order))
    local_ready = [b for b in ready if b.local]
    local = tuple(sorted(local_ready or [b for b in fallback if b.local], key=_order))
    return EndpointCategories(cluster, local)


def _same_family(backends: tuple[Backend, ...], address: IPAddress) -> tuple[Backend, ...]:
    return tuple(b for b in backends if b.address.version == address.version)


def _empty_action(chosen: tuple[Backend, ...], cats: EndpointCategories) -> NoEndpoints:
    """REJECT when the service has no endpoints at all; DROP when only non-local ones."""
    return NoEndpoints.DROP if not chosen and cats.cluster else NoEndpoints.REJECT


def _internal_routes(svc: Service, cats: EndpointCategories, ctx: CalcContext) -> tuple[Route, ...]:
    if svc.internal_traffic_policy is TrafficPolicy.LOCAL:
        backends, empty = cats.local, _empty_action(cats.local, cats)
    else:
        backends, empty = cats.cluster, NoEndpoints.REJECT
    if ctx.masquerade_all:
        return (Route(SourceClass.ANY, backends, True, empty),)
    if ctx.preserve_source:
        # The backend returns replies through its own NAT state (and tunnel), so
        # sources from outside the pod network need no SNAT either.
        return (Route(SourceClass.ANY, backends, False, empty),)
    return (
        Route(SourceClass.POD, backends, False, empty),
        Route(SourceClass.ANY, backends, True, empty),
    )


def _external_routes(svc: Service, cats: EndpointCategories, ctx: CalcContext) -> tuple[Route, ...]:
    masq = ctx.masquerade_all or not ctx.preserve_source
    if svc.external_traffic_policy is TrafficPolicy.CLUSTER:
        return (Route(SourceClass.ANY, cats.cluster, masq, NoEndpoints.REJECT),)
    # Local: pods and the node itself short-circuit to any endpoint (kube-proxy's
    # "pod traffic ... short-circuit" and src-type LOCAL rules); others only reach
    # local endpoints and keep their source address.
    return (
        Route(SourceClass.POD, cats.cluster, ctx.masquerade_all, NoEndpoints.REJECT),
        Route(SourceClass.HOST, cats.cluster, masq, NoEndpoints.REJECT),
        Route(SourceClass.ANY, cats.local, False, _empty_action(cats.local, cats)),
    )


def _family_routes(routes: tuple[Route, ...], address: IPAddress) -> tuple[Route, ...]:
    return tuple(attrs.evolve(r, backends=_same_family(r.backends, address)) for r in routes)


@attrs.frozen
class _PortFrontends:
    """Builds the frontends of one service port (shared fields filled once)."""

    svc: Service
    port: ServicePort
    label: str
    timeout: int | None

    def make(
        self, addr: IPAddress, number: int, kind: FrontendKind, routes: tuple[Route, ...]
    ) -> Frontend:
        ranges = self.svc.load_balancer_source_ranges if kind is FrontendKind.LOAD_BALANCER else ()
        return Frontend(
            address=addr,
            protocol=self.port.protocol,
            port=number,
            kind=kind,
            service=self.label,
            routes=_family_routes(routes, addr),
            affinity_timeout=self.timeout,
            source_ranges=tuple(r for r in ranges if r.version == addr.version),
        )


def service_frontends(
    svc: Service, eps: EndpointSet | None, ctx: CalcContext
) -> Iterator[Frontend]:
    """Every frontend of one service on this node."""
    timeout = svc.affinity_timeout if svc.session_affinity is SessionAffinity.CLIENT_IP else None
    families = {a.version for a in svc.cluster_ips} or {a.version for a in ctx.local_addresses}
    for port in svc.ports:
        cats = categorize(port, eps, ctx.node)
        name = f"{svc.namespace}/{svc.name}"
        pf = _PortFrontends(svc, port, f"{name}:{port.name}" if port.name else name, timeout)
        internal = _internal_routes(svc, cats, ctx)
        external = _external_routes(svc, cats, ctx)
        for addr in svc.cluster_ips:
            yield pf.make(addr, port.port, FrontendKind.CLUSTER_IP, internal)
        if port.node_port is not None and svc.type is not ServiceType.CLUSTER_IP:
            for addr in ctx.local_addresses:
                if addr.version in families:
                    yield pf.make(addr, port.node_port, FrontendKind.NODE_PORT, external)
        for addr in svc.external_ips:
            yield pf.make(addr, port.port, FrontendKind.EXTERNAL_IP, external)
        for addr in svc.load_balancer_ips:
            yield pf.make(addr, port.port, FrontendKind.LOAD_BALANCER, external)


def health_check(svc: Service, eps: EndpointSet | None, node: str) -> HealthCheck | None:
    if svc.health_check_node_port is None:
        return None
    local = 0
    if eps is not None:
        local = sum(1 for ep in eps.endpoints if ep.node == node and ep.ready)
    return HealthCheck(svc.health_check_node_port, f"{svc.namespace}/{svc.name}", local)

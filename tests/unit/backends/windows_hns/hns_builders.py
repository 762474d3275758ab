"""IR builders and transport wrappers shared by the windows-hns unit tests.

IR values are built by hand (calc is written in parallel; its output types
are exactly those of ``dataplane.calc.ir``).
"""

from __future__ import annotations

import ipaddress
import uuid
from collections import Counter
from collections.abc import Iterable
from typing import Any

from dataplane.backends.windows_hns.emulator import HcnEmulator
from dataplane.backends.windows_hns.hresult import RPC_S_SERVER_UNAVAILABLE, error_for
from dataplane.backends.windows_hns.transport import Handle, HcnTransport, Kind
from dataplane.calc import ir
from dataplane.model import (
    Action,
    EndpointToHostAction,
    ExternalServiceMode,
    ObjectKey,
    PortRange,
    Protocol,
    TierDefault,
)

NODE_IP = "192.168.0.10"
INSTANCE = "dp-test"


def addr(text: str) -> Any:
    return ipaddress.ip_address(text)


def net(text: str) -> Any:
    return ipaddress.ip_network(text)


def settings(*local: str) -> ir.IRSettings:
    return ir.IRSettings(
        node="node-a",
        local_addresses=tuple(addr(a) for a in (local or (NODE_IP,))),
        cluster_cidrs=(net("10.244.0.0/16"),),
        failsafe_inbound=(),
        failsafe_outbound=(),
        external_service_mode=ExternalServiceMode.TUNNEL,
        endpoint_to_host_action=EndpointToHostAction.DROP,
        host_interface_pattern="eth.*",
        workload_interface_prefix="cali",
    )


def backend(
    ip: str, port: int = 8080, *, local: bool = True, node: str | None = None
) -> ir.Backend:
    return ir.Backend(addr(ip), port, node or ("node-a" if local else "node-b"), local)


def route(
    *backends: ir.Backend,
    sources: ir.SourceClass = ir.SourceClass.ANY,
    masquerade: bool = False,
    if_empty: ir.NoEndpoints = ir.NoEndpoints.REJECT,
) -> ir.Route:
    return ir.Route(sources, tuple(backends), masquerade, if_empty)


def frontend(
    address: str,
    port: int,
    *routes: ir.Route,
    kind: ir.FrontendKind = ir.FrontendKind.CLUSTER_IP,
    protocol: Protocol = Protocol.TCP,
    service: str = "default/web:http",
    **extra: Any,
) -> ir.Frontend:
    return ir.Frontend(addr(address), protocol, port, kind, service, tuple(routes), **extra)


def rule(
    action: Action = Action.ALLOW,
    policy: str = "default/pol",
    index: int = 0,
    direction: ir.Direction = ir.Direction.INGRESS,
    **fields: Any,
) -> ir.IRRule:
    return ir.IRRule(action, ir.RuleRef(policy, direction, index), **fields)


def ports(*ranges: tuple[int, int] | int, named: tuple[str, ...] = ()) -> ir.PortMatch:
    return ir.PortMatch(
        tuple(PortRange(r, r) if isinstance(r, int) else PortRange(*r) for r in ranges), named
    )


def tier(
    name: str, *policies: ir.PolicyProgram, default: TierDefault = TierDefault.DENY
) -> ir.TierProgram:
    return ir.TierProgram(name, default, tuple(policies))


def policy(name: str, *rules: ir.IRRule) -> ir.PolicyProgram:
    return ir.PolicyProgram(name, tuple(rules))


def ip_set(set_id: str, *nets: str) -> ir.IpSet:
    return ir.IpSet(set_id, f"set {set_id}", frozenset(net(n) for n in nets))


def workload(
    name: str,
    ip: str,
    ingress: ir.Chain = ir.ALLOW_ALL,
    egress: ir.Chain = ir.ALLOW_ALL,
) -> ir.WorkloadProgram:
    key = ObjectKey("WorkloadEndpoint", "default", name)
    return ir.WorkloadProgram(key, f"cali{name}", (addr(ip),), ingress, egress)


def dataplane_ir(
    frontends: Iterable[ir.Frontend] = (),
    workloads: Iterable[ir.WorkloadProgram] = (),
    ip_sets: Iterable[ir.IpSet] = (),
    remote_nodes: Iterable[ir.RemoteNode] = (),
) -> ir.DataplaneIR:
    return ir.DataplaneIR(
        settings=settings(),
        frontends={f.key: f for f in frontends},
        ip_sets={s.id: s for s in ip_sets},
        workloads={w.key: w for w in workloads},
        remote_nodes={n.name: n for n in remote_nodes},
    )


def emulator(**kwargs: Any) -> HcnEmulator:
    return HcnEmulator(host_addresses=[NODE_IP], **kwargs)


class RecordingTransport:
    """Forwards to another transport and counts calls by (verb, kind)."""

    def __init__(self, inner: HcnTransport) -> None:
        self.inner = inner
        self.calls: Counter[tuple[str, str]] = Counter()

    def enumerate(self, kind: Kind, query: str) -> str:
        return self._call("enumerate", kind, query)

    def create(
        self, kind: Kind, guid: uuid.UUID, settings: str, network: Handle | None = None
    ) -> Handle:
        return self._call("create", kind, guid, settings, network)

    def open(self, kind: Kind, guid: uuid.UUID) -> Handle:
        return self._call("open", kind, guid)

    def modify(self, kind: Kind, handle: Handle, settings: str) -> None:
        self._call("modify", kind, handle, settings)

    def query_properties(self, kind: Kind, handle: Handle, query: str) -> str:
        return self._call("query_properties", kind, handle, query)

    def delete(self, kind: Kind, guid: uuid.UUID) -> None:
        self._call("delete", kind, guid)

    def close(self, kind: Kind, handle: Handle) -> None:
        self._call("close", kind, handle)

    def hns_version(self) -> tuple[int, int]:
        return self._call("hns_version", "-")

    def _call(self, verb: str, kind: str, *args: Any) -> Any:
        self.calls[(verb, kind)] += 1
        method = getattr(self.inner, verb)
        return method(kind, *args) if kind != "-" else method()


class FaultyTransport(RecordingTransport):
    """Fails the Nth call: before it reaches HNS, or after (the reply is lost).

    The error is HNS being unreachable (RPC_S_SERVER_UNAVAILABLE), which the
    backend must report as a TransientBackendError.
    """

    def __init__(self, inner: HcnTransport, fail_at: int, after: bool) -> None:
        super().__init__(inner)
        self.fail_at = fail_at
        self.after = after
        self.count = 0

    def _call(self, verb: str, kind: str, *args: Any) -> Any:
        self.count += 1
        if self.count == self.fail_at and not self.after:
            raise error_for(RPC_S_SERVER_UNAVAILABLE, f"{verb} {kind}")
        result = super()._call(verb, kind, *args)
        if self.count == self.fail_at:
            raise error_for(RPC_S_SERVER_UNAVAILABLE, f"{verb} {kind} (reply lost)")
        return result

"""HnsBackend: IR deltas → HCN load balancers, remote endpoints and endpoint ACLs.

Options (``DataplaneConfig.options``):

- ``hns_transport``: ``"dll"`` (default on Windows: computenetwork.dll) or
  ``"emulator"`` (the only choice elsewhere; it must be asked for, so a
  Linux agent never believes it programmed Windows).
- ``hns_emulator``: an :class:`~.emulator.HcnEmulator` to use (tests and the
  behaviour suite share one between backend instances); a fresh one if absent.
- ``hns_network``: name or GUID of the HNS network the pods attach to
  (required with the DLL; the emulator's own network by default).
- ``hns_source_vip`` / ``hns_source_vip6``: ``SourceVIP`` per family (default:
  the node's first address of that family, kube-proxy's choice on L2Bridge).
- ``hns_lb_modify_in_place``: the host supports modifying load balancers in
  place (HNS ``ModifyLoadbalancer``); otherwise they are deleted and recreated.

Every apply renders the complete IR (rendering is cheap; HNS calls are not)
and the reconciler turns the difference into calls.
"""

from __future__ import annotations

import ipaddress
import sys
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from dataplane.backends.base import Backend, Capabilities
from dataplane.backends.windows_hns import _hcn
from dataplane.backends.windows_hns.client import Document, HcnClient
from dataplane.backends.windows_hns.emulator import HcnEmulator
from dataplane.backends.windows_hns.identity import is_owned, is_owned_acl
from dataplane.backends.windows_hns.reconcile import Desired, Reconciler, network_guid
from dataplane.backends.windows_hns.render_acl import render_workload_acls
from dataplane.backends.windows_hns.render_lb import (
    adapt_to_features,
    render_load_balancers,
    render_remote_endpoints,
)
from dataplane.backends.windows_hns.transport import HcnTransport
from dataplane.calc.ir import DataplaneIR, IRDelta
from dataplane.errors import BackendError, ConfigError
from dataplane.model import IPAddress

if TYPE_CHECKING:
    from dataplane.engine.config import DataplaneConfig

LIMITATIONS = (
    "no REJECT: a service without endpoints gets no load balancer (connections time out)",
    "load balancer source ranges are not enforced",
    "one backend list per load balancer: per-source routes (pods/host vs external) cannot differ",
    "ClientIP affinity timeout is HNS's own, not configurable",
    "one target port per load balancer: backends with other target ports are left out",
    "SCTP services are not programmed (HNS load balancers carry TCP and UDP)",
    "negated matches (notNets, notSelector, notPorts, notProtocol) and ICMP type/code: "
    "Allow/Pass rules using them are left out, Deny rules are widened to ignore them",
    "named ports: Allow rules keep only their numeric ports, Deny rules match any port",
    "Log rules are skipped",
    "ACL protocols are ICMP, IGMP, TCP, UDP and ICMPv6 only; rules on others are left out",
    "host endpoint policy (including failsafes) is not enforced: HNS has no host firewall API",
    "masquerade_all: a pod's own service traffic is load-balanced at its port and never SNATed",
)


class HnsBackend(Backend):
    """Windows HNS through HCN v2 (or its emulator)."""

    name: ClassVar[str] = "windows-hns"
    capabilities: ClassVar[Capabilities] = Capabilities(
        host_endpoints=False,
        dsr=True,
        reject=False,
        source_ranges=False,
        named_ports=False,
        sctp=False,
        ipv6=True,
        masquerade=False,
        per_source_routes=False,
        negated_matches=False,
        limitations=LIMITATIONS,
    )

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if sys.platform == "win32":
            return None
        return (
            "windows-hns programs Windows HNS (computenetwork.dll); elsewhere only its "
            "emulator runs, and only when asked for with options hns_transport='emulator'"
        )

    def __init__(self, config: DataplaneConfig) -> None:
        super().__init__(config)
        choice = config.option("hns_transport", "dll" if sys.platform == "win32" else None)
        self.emulator: HcnEmulator | None = None
        if choice == "emulator":
            given = config.option("hns_emulator")
            if given is not None and not isinstance(given, HcnEmulator):
                raise ConfigError(f"hns_emulator must be an HcnEmulator, not {given!r}")
            self.emulator = given or HcnEmulator()
            emulator = self.emulator
            self._open: Callable[[], HcnTransport] = lambda: emulator
        elif choice == "dll" and sys.platform == "win32":
            self._open = _hcn.load
        else:
            raise ConfigError(
                f"hns_transport={choice!r} cannot work here: "
                f"{self.unavailable_reason() or 'use dll or emulator'}"
            )
        network = config.option("hns_network") or (self.emulator and self.emulator.network_id)
        if not network:
            raise ConfigError("windows-hns needs options hns_network (HNS network name or GUID)")
        self._network_name = str(network)
        self._source_vips = {
            v: ipaddress.ip_address(a)
            for v, key in ((4, "hns_source_vip"), (6, "hns_source_vip6"))
            if (a := config.option(key)) is not None
        }
        self._lb_modify = bool(config.option("hns_lb_modify_in_place", False))
        self._reconciler: Reconciler | None = None
        self._features: frozenset[str] = frozenset()
        self._warnings: tuple[str, ...] = ()

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect and list what exists: owned objects are adopted, not recreated."""
        reconciler = self._connect()
        reconciler.endpoints(refresh=True)
        reconciler.load_balancers(refresh=True)

    def apply(self, delta: IRDelta) -> None:
        if self._reconciler is None:
            raise BackendError("windows-hns: apply() before start()")
        reconciler = self._reconciler
        if delta.full:
            reconciler.invalidate()
        ir = delta.ir
        known = reconciler.endpoint_ids_by_address(include_owned=False)
        if _needed_local_addresses(ir) - set(known):
            reconciler.endpoints(refresh=True)  # pods attached since the last listing
            known = reconciler.endpoint_ids_by_address(include_owned=False)
        network = str(reconciler.network_id)
        remote = render_remote_endpoints(ir, known, network, self.config.instance_name)
        endpoint_ids = {**known, **{a: spec.guid for a, spec in remote.items()}}
        specs, warnings = render_load_balancers(
            ir.frontends.values(), endpoint_ids, self._source_vips_for(ir)
        )
        specs, feature_warnings = adapt_to_features(specs, self._features)
        acls, acl_warnings = self._render_acls(ir, known)
        hosts = [f"{key}: host endpoint policy is not enforced by HNS" for key in ir.hosts]
        self._warnings = tuple(sorted({*warnings, *feature_warnings, *acl_warnings, *hosts}))
        reconciler.apply(Desired(remote, tuple(specs), acls))

    def dump(self) -> Mapping[str, Any]:
        reconciler = self._reconciler or self._connect()
        instance = self.config.instance_name
        endpoints = reconciler.endpoints(refresh=True)
        acls = {
            str(guid): [
                p["Settings"] for p in doc.get("Policies") or [] if is_owned_acl(instance, p)
            ]
            for guid, doc in endpoints.items()
        }
        return {
            "network": str(reconciler.network_id),
            "features": sorted(self._features),
            "load_balancers": list(reconciler.load_balancers(refresh=True).values()),
            "remote_endpoints": [d for g, d in endpoints.items() if is_owned(instance, g)],
            "endpoint_acls": {guid: settings for guid, settings in acls.items() if settings},
            "warnings": list(self._warnings),
        }

    def cleanup(self) -> None:
        (self._reconciler or self._connect()).cleanup()
        self._warnings = ()

    def close(self) -> None:
        """HNS handles never outlive a call; only the cached view is dropped."""
        self._reconciler = None

    def warnings(self) -> tuple[str, ...]:
        return self._warnings

    # ------------------------------------------------------------ helpers

    def _connect(self) -> Reconciler:
        client = HcnClient(self._open())
        self._features = client.features()
        network = network_guid(client, self._network_name)
        self._reconciler = Reconciler(client, self.config.instance_name, network, self._lb_modify)
        return self._reconciler

    def _source_vips_for(self, ir: DataplaneIR) -> dict[int, IPAddress]:
        vips: dict[int, IPAddress] = {}
        for address in ir.settings.local_addresses:
            vips.setdefault(address.version, address)
        return {**vips, **self._source_vips}

    def _render_acls(
        self, ir: DataplaneIR, known: Mapping[IPAddress, str]
    ) -> tuple[dict[uuid.UUID, tuple[Document, ...]], list[str]]:
        acls: dict[uuid.UUID, tuple[Document, ...]] = {}
        warnings: list[str] = []
        for key, program in sorted(ir.workloads.items()):
            guid = next((known[a] for a in program.addresses if a in known), None)
            if guid is None:
                addresses = ", ".join(map(str, program.addresses))
                warnings.append(f"{key}: no HCN endpoint with address {addresses}; no policy yet")
                continue
            policies, rule_warnings = render_workload_acls(
                program, ir.ip_sets, self.config.instance_name
            )
            acls[uuid.UUID(guid)] = tuple(policies)
            warnings.extend(rule_warnings)
        return acls, warnings


def _policies(endpoint: Document) -> list[Document]:
    return list(endpoint.get("Policies") or [])


def _needed_local_addresses(ir: DataplaneIR) -> set[IPAddress]:
    """Addresses that must be local HCN endpoints: workloads and local backends."""
    needed = {a for program in ir.workloads.values() for a in program.addresses}
    needed.update(
        b.address
        for f in ir.frontends.values()
        for route in f.routes
        for b in route.backends
        if b.local
    )
    return needed

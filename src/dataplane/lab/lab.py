"""``Lab``: a small cluster of network namespaces on this machine.

A lab is built from a :class:`LabSpec` under a fresh prefix, runs one helper
process per host (echo servers plus probes), and is torn down completely by
:meth:`Lab.close`, which the context manager, the pytest fixture, ``atexit``
and SIGTERM all reach.  It never touches the machine's root network
namespace: see ``docs/lab.md``.
"""

from __future__ import annotations

import functools
import importlib
import ipaddress
import json
import logging
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from dataplane.lab import addressing, build, cleanup, guard, naming, netns, state
from dataplane.lab.agents import AgentPool, Call, Launch
from dataplane.lab.describe import describe
from dataplane.lab.errors import LabError
from dataplane.lab.handles import Capture, Connection
from dataplane.lab.plan import ClientInfo, Host, LabPlan, NodeInfo, PodInfo, RouterInfo, make_plan
from dataplane.lab.results import ProbeRequest, ProbeResult, Proto
from dataplane.lab.spec import LabSpec

_log = logging.getLogger(__name__)
_PROTOS = ("tcp", "udp", "sctp")
_REQUEST_SLACK_S = 5.0

HostRef = str | Host
"""A host key (``node-0``, ``client-0``, ``router``, ``default/pod-0-0``) or its info."""


class Lab:
    """A running lab.  Use ``with Lab(spec) as lab:`` (or ``start()``/``close()``)."""

    def __init__(self, spec: LabSpec | None = None, *, prefix: str | None = None) -> None:
        self.spec = spec if spec is not None else LabSpec.uniform()
        self.prefix = prefix if prefix is not None else naming.new_prefix()
        if not naming.is_prefix(self.prefix):
            raise ValueError(f"lab prefix {self.prefix!r} must be 'dpl' + 5 lowercase hex digits")
        self.plan: LabPlan = make_plan(self.spec, self.prefix)
        self._agents = AgentPool()
        self._spawned: list[subprocess.Popen[bytes]] = []
        self._dataplanes: list[Any] = []
        self._status = "new"

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> Lab:
        """Build the namespaces and start the helpers; on any failure tear down and re-raise."""
        if self._status != "new":
            raise LabError(f"lab {self.prefix} is {self._status}, it can only start once")
        reason = netns.unavailable_reason()
        if reason:
            raise LabError(reason)
        if state.read(self.prefix) is not None or cleanup.lab_namespaces(self.prefix):
            raise LabError(f"prefix {self.prefix} is in use on this machine")
        self._status = "starting"
        guard.track(self)
        try:
            state.write(state.owned_by_me(self.prefix, self.plan.namespaces(), self.spec.to_dict()))
            sockets = build.create_namespaces(self.plan)
            # helpers boot (bind 0.0.0.0 needs no addresses) while the links are wired
            try:
                self._agents.launch([self._launch(host) for host in self.plan.hosts()])
            except BaseException:
                build.release(sockets)
                raise
            build.wire(self.plan, sockets)
            self._agents.wait_ready()
        except BaseException:
            self.close()
            raise
        self._status = "running"
        return self

    def close(self) -> None:
        """Remove everything the lab made.  Idempotent; safe after a failed start."""
        if self._status in ("closed", "detached"):
            return
        never_started, self._status = self._status == "new", "closed"
        if never_started:
            return  # nothing is ours: the prefix may even be another lab's
        guard.untrack(self)
        try:
            for dataplane in self._dataplanes:
                close = getattr(dataplane, "close", None)
                if callable(close):
                    try:
                        close()
                    except Exception:
                        _log.exception("closing a node data plane of lab %s failed", self.prefix)
            self._agents.stop()
            for process in self._spawned:
                process.kill()
                process.wait()
        finally:
            cleanup.remove_lab(self.prefix, self.plan.namespaces())

    def detach(self) -> None:
        """Leave the lab running after this process exits (``dataplane lab up``):
        helpers keep serving echo, ``dataplane lab down`` removes it."""
        self._require_running()
        self._agents.detach()
        state.write(
            state.LabState(self.prefix, None, None, self.plan.namespaces(), self.spec.to_dict())
        )
        guard.untrack(self)
        self._status = "detached"

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _require_running(self) -> None:
        if self._status != "running":
            raise LabError(f"lab {self.prefix} is {self._status}, not running")

    def _launch(self, host: Host) -> Launch:
        node = host.name if isinstance(host, NodeInfo) else None
        if isinstance(host, PodInfo):
            node = host.node
        config = {
            "host": host.key,
            "node": node,
            "pod": host.key if isinstance(host, PodInfo) else None,
            "serve": [[port.protocol.lower(), port.port] for port in host.ports],
        }
        args = [json.dumps(config)]
        return Launch(
            key=host.key,
            argv=netns.python_argv(host.netns, "dataplane.lab.agent", args, die_with_parent=True),
            log=state.log_dir(self.prefix) / f"{host.netns}.log",
        )

    # -- the topology --------------------------------------------------------------

    @functools.cached_property
    def nodes(self) -> Mapping[str, NodeInfo]:
        return {node.name: node for node in self.plan.nodes}

    @functools.cached_property
    def pods(self) -> Mapping[str, PodInfo]:
        """Pods by ``namespace/name``."""
        return {pod.key: pod for node in self.plan.nodes for pod in node.pods}

    @functools.cached_property
    def clients(self) -> Mapping[str, ClientInfo]:
        return {client.name: client for client in self.plan.clients}

    @property
    def router(self) -> RouterInfo | None:
        return self.plan.router

    def host(self, ref: HostRef) -> Host:
        return self.plan.host(ref) if isinstance(ref, str) else ref

    def describe(self) -> list[dict[str, Any]]:
        """The lab as Kubernetes Node, Namespace and Pod objects (plain dicts)."""
        return describe(self.plan)

    @property
    def sctp_supported(self) -> bool:
        """Whether this kernel has SCTP (pods' SCTP echo ports are skipped otherwise)."""
        self._require_running()
        return bool(self._agents.hello(self.plan.nodes[0].key)["sctp"])

    # -- traffic -------------------------------------------------------------------

    def _address(self, ref: HostRef) -> str:
        if isinstance(ref, str):
            try:
                address = ipaddress.ip_address(ref)
            except ValueError:
                return self.plan.host(ref).ip
            if not (address.is_loopback or addressing.is_lab_address(ref)):
                raise LabError(f"{ref} is not a lab address: lab traffic stays inside the lab")
            return ref
        return ref.ip

    def _call(self, host: HostRef, cmd: str, request_timeout: float = 10.0, **args: Any) -> Any:
        self._require_running()
        return self._agents.call(Call(self.host(host).key, cmd, args), request_timeout)

    def probe(
        self,
        src_host: HostRef,
        dst_address: HostRef,
        dst_port: int,
        proto: Proto = "tcp",
        timeout: float = 1.0,
        *,
        sport: int | None = None,
    ) -> ProbeResult:
        """Open one real connection from ``src_host`` to ``dst_address:dst_port``
        (from source port ``sport``, if given: see :func:`probe.probe`)."""
        src = self.host(src_host).key
        request = ProbeRequest(src, self._address(dst_address), dst_port, proto, timeout, sport)
        return self.probe_many([request])[0]

    def probe_many(self, requests: Iterable[ProbeRequest]) -> list[ProbeResult]:
        """Run many probes at once (each helper runs its probes in parallel)."""
        self._require_running()
        batch = list(requests)
        calls = []
        for request in batch:
            if request.proto not in _PROTOS:
                raise LabError(f"probe protocol {request.proto!r} not in {_PROTOS}")
            args = {
                "dst": self._address(request.dst),
                "port": request.port,
                "proto": request.proto,
                "timeout": request.timeout,
            }
            if request.sport is not None:
                args["sport"] = request.sport
            calls.append(Call(self.host(request.src).key, "probe", args))
        timeout = max((r.timeout for r in batch), default=0.0) + _REQUEST_SLACK_S
        return [ProbeResult.from_wire(r) for r in self._agents.call_many(calls, timeout)]

    def open_connection(
        self,
        src_host: HostRef,
        dst_address: HostRef,
        dst_port: int,
        proto: Proto = "tcp",
        *,
        interval: float = 0.0,
        timeout: float = 1.0,
    ) -> Connection:
        """Open a long-lived connection; with ``interval`` > 0 it pings by itself."""
        key = self.host(src_host).key
        opened = self._call(
            key,
            "conn_open",
            request_timeout=timeout + _REQUEST_SLACK_S,
            dst=self._address(dst_address),
            port=dst_port,
            proto=proto,
            timeout=timeout,
            interval=interval,
        )
        return Connection(functools.partial(self._call, key), opened)

    def capture(
        self,
        host: HostRef,
        *,
        interface: str | None = None,
        proto: str | None = None,
        port: int | None = None,
        address: str | None = None,
    ) -> Capture:
        """Capture IPv4 packets in ``host`` (all interfaces unless one is named)."""
        filters = {"interface": interface, "proto": proto, "port": port, "address": address}
        return Capture(functools.partial(self._call, self.host(host).key), filters)

    def serve(self, host: HostRef, port: int, proto: Proto = "tcp") -> None:
        """Start one more echo listener in ``host`` (e.g. on a node for host-network tests)."""
        self._call(host, "serve", proto=proto, port=port)

    def spawn(self, host: HostRef, argv: Sequence[str], **popen: Any) -> subprocess.Popen[bytes]:
        """Run a program inside ``host``'s namespace; it is killed at teardown."""
        self._require_running()
        command = netns.command_argv(self.host(host).netns, argv, die_with_parent=True)
        process: subprocess.Popen[bytes] = subprocess.Popen(
            command, start_new_session=True, **popen
        )
        self._spawned.append(process)
        return process

    def add_route(self, host: HostRef, dst: str, via: HostRef) -> None:
        """Add a route in ``host`` (e.g. the service VIP range towards a node)."""
        self._require_running()
        build.add_route(self.host(host).netns, dst, self._address(via))

    # -- data planes ---------------------------------------------------------------

    def dataplane(self, node_name: str, backend: str = "fake", **config: Any) -> Any:
        """A ``dataplane.Dataplane`` for ``node_name``, working inside that node's
        namespace; closed (if it has ``close()``) when the lab closes.

        Unless ``instance`` is given it is ``<prefix>-n<index>``, so the instance's
        pins land under ``/sys/fs/bpf/dataplane/<prefix>*``, where teardown and
        ``dataplane lab clean`` find them.
        """
        self._require_running()
        node = self.nodes[node_name]
        config.setdefault("instance", f"{self.prefix}-n{node.index}")
        package: Any = importlib.import_module("dataplane")
        instance = package.Dataplane(
            package.DataplaneConfig(
                backend=backend, node_name=node_name, netns=node.netns, **config
            )
        )
        self._dataplanes.append(instance)
        return instance

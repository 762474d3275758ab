"""The Backend contract: one verb, ``apply(delta)``, plus lifecycle.

A backend translates IR deltas (see :mod:`dataplane.calc.ir`) into kernel
objects. It never re-derives Kubernetes or policy semantics: those are
decided in ``calc``. It owns only objects that carry its instance prefix and
recognises them after a restart (``start()`` adopts them).

Failure contract: ``apply`` either succeeds or raises a
:class:`~dataplane.errors.BackendError`; after a failure the engine calls
``apply`` again with ``full=True``, which must converge whatever state the
failed call left behind.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from dataplane.calc.ir import IRDelta

if TYPE_CHECKING:
    from dataplane.engine.config import DataplaneConfig


@attrs.frozen
class Capabilities:
    """What a backend can do; scenarios and calc consult these, never the backend name.

    ``source_ip_preservation``: external traffic reaches a backend on another
    node without SNAT (so calc does not ask for masquerade there).
    ``masquerade``: the backend can SNAT where calc asks for it (needed for
    ``masquerade_all``). ``node_local_nodeport``: a process on the node reaches
    a NodePort on the node's own address (kube-proxy does it in nat OUTPUT;
    eBPF at TC never sees that loopback traffic). ``per_source_routes``: a
    frontend can send pods, the node and outsiders to different backends
    (externalTrafficPolicy Local's short-circuit). ``negated_matches``: rules
    with notNets / notSelector / notProtocol are enforced as written.
    ``limitations``: documented things this backend cannot express; they are
    also reported by ``Dataplane.status()``.
    """

    services: bool = True
    policy: bool = True
    host_endpoints: bool = True
    dsr: bool = False
    source_ip_preservation: bool = False
    reject: bool = True
    source_ranges: bool = True
    session_affinity: bool = True
    named_ports: bool = True
    sctp: bool = True
    ipv6: bool = False
    masquerade: bool = True
    node_local_nodeport: bool = True
    per_source_routes: bool = True
    negated_matches: bool = True
    limitations: tuple[str, ...] = ()


class Backend(abc.ABC):
    """Base class of every backend. Subclasses set ``name`` and ``capabilities``."""

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def __init__(self, config: DataplaneConfig) -> None:
        self.config = config

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why this backend cannot run on this host, or None if it can (used by ``auto``)."""
        return None

    @abc.abstractmethod
    def start(self) -> None:
        """Prepare the kernel (load, attach) and adopt objects of a previous run."""

    @abc.abstractmethod
    def apply(self, delta: IRDelta) -> None:
        """Make the kernel match ``delta.ir`` (incrementally unless ``delta.full``)."""

    @abc.abstractmethod
    def dump(self) -> Mapping[str, Any]:
        """What is installed, grouped for humans (``dataplane dump``); JSON-serialisable."""

    @abc.abstractmethod
    def cleanup(self) -> None:
        """Remove every kernel object this instance owns; safe to call twice."""

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release process resources (fds, sockets) but leave the kernel programmed."""

    def warnings(self) -> tuple[str, ...]:
        """Current warnings (e.g. constructs this backend cannot express) for ``status()``."""
        return ()

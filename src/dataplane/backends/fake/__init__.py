"""The fake backend: the reference model, and a test double for embedders.

It programs nothing. It keeps the IR it was given, records every delta, can
be told to fail (to test an agent's error handling), and answers
:meth:`FakeBackend.trace` with :func:`dataplane.calc.trace.trace` — the
executable definition the kernel backends are tested against.

An embedder's unit test::

    dp = Dataplane(DataplaneConfig(backend="fake", node_name="n1"))
    with dp:
        dp.apply(state)
        fake = dp.backend
        result = fake.trace(Packet(src="10.0.0.5", dst="10.96.0.10", dst_port=80))
        assert result.verdict is Verdict.ALLOW
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dataplane.backends.base import Backend, Capabilities
from dataplane.backends.fake.dump import dump_ir
from dataplane.calc.evaluate import Packet, TraceResult
from dataplane.calc.ir import DataplaneIR, IRDelta
from dataplane.calc.trace import trace
from dataplane.engine.config import DataplaneConfig
from dataplane.errors import BackendError, ConfigError

__all__ = ["FakeBackend"]

FULL_CAPABILITIES = Capabilities(dsr=True, source_ip_preservation=False)


class FakeBackend(Backend):
    """In-memory backend. ``options["mimic"]`` copies another backend's capabilities."""

    name = "fake"
    capabilities = FULL_CAPABILITIES

    def __init__(self, config: DataplaneConfig, capabilities: Capabilities | None = None) -> None:
        super().__init__(config)
        mimic = config.option("mimic")
        if capabilities is None and mimic:
            from dataplane.backends.registry import backend_class

            if mimic == "fake":
                raise ConfigError("fake cannot mimic itself")
            capabilities = backend_class(str(mimic)).capabilities
        self.capabilities = capabilities or FULL_CAPABILITIES  # type: ignore[misc]
        self.deltas: list[IRDelta] = []
        self.ir: DataplaneIR | None = None
        self.started = False
        self.cleaned = False
        self._faults: list[Callable[[IRDelta], None]] = []

    def start(self) -> None:
        self.started = True

    def apply(self, delta: IRDelta) -> None:
        if self._faults:
            fault = self._faults.pop(0)
            fault(delta)
        self.deltas.append(delta)
        self.ir = delta.ir
        self.cleaned = False

    def fail_next(self, count: int = 1, error: BackendError | None = None) -> None:
        """Make the next ``count`` applies raise ``error`` (a BackendError by default)."""
        exc = error or BackendError("injected failure")

        def fault(_: IRDelta) -> None:
            raise exc

        self._faults.extend([fault] * count)

    def trace(self, packet: Packet) -> TraceResult:
        """What the data plane should do with ``packet`` (see :mod:`dataplane.calc.trace`)."""
        if self.ir is None:
            raise BackendError("nothing applied yet")
        return trace(self.ir, packet)

    def dump(self) -> Mapping[str, Any]:
        return dump_ir(self.ir) if self.ir is not None else {}

    def cleanup(self) -> None:
        self.ir = None
        self.cleaned = True

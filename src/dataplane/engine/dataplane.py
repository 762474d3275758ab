"""Dataplane: the engine an agent talks to.

It owns the desired state, compiles it (incrementally) into IR deltas and
hands them to the backend. The rules it keeps:

* validation happens before anything reaches the backend; a bad input
  changes nothing;
* a failed backend apply never counts as applied: the error is recorded in
  ``status()``, re-raised to the caller, and a background loop retries with a
  full resync (exponential backoff) until the kernel matches again;
* a periodic full resync repairs drift made behind the engine's back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from types import TracebackType

from dataplane.backends.base import Backend
from dataplane.backends.registry import backend_class
from dataplane.calc.compiler import Compiler
from dataplane.calc.ir import IRDelta
from dataplane.engine.config import DataplaneConfig
from dataplane.engine.status import Status
from dataplane.engine.transaction import Transaction
from dataplane.errors import BackendError, ConfigError
from dataplane.model import DesiredState, ObjectKey, StateObject

log = logging.getLogger(__name__)


class Dataplane:
    """Programs one node (or one network namespace) through one backend."""

    def __init__(
        self, config: DataplaneConfig | None = None, *, backend: Backend | None = None
    ) -> None:
        self.config = config or DataplaneConfig.from_env()
        self._backend = backend
        self._lock = threading.RLock()
        self._state = DesiredState()
        self._compiler: Compiler | None = None
        self._generation = 0
        self._applied = 0
        self._last_error: str | None = None
        self._failures = 0
        self._needs_full = True
        self._last_full: float | None = None
        self._started = False
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle
    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = backend_class(self.config.backend)(self.config)
        return self._backend

    def start(self) -> Dataplane:
        """Load/attach the backend and adopt what a previous run installed."""
        with self._lock:
            if self._started:
                return self
            backend = self.backend
            backend.start()
            self._compiler = Compiler(
                self.config.node_name,
                preserve_source=backend.capabilities.source_ip_preservation,
            )
            self._started = True
            if self.config.resync_period > 0:
                self._thread = threading.Thread(
                    target=self._loop, name=f"dataplane-{self.config.instance_name}", daemon=True
                )
                self._thread.start()
        return self

    def close(self) -> None:
        """Stop background work and release resources; the kernel stays programmed."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        with self._lock:
            if self._backend is not None:
                self._backend.close()
            self._started = False

    def cleanup(self) -> None:
        """Remove everything this instance installed."""
        with self._lock:
            self.backend.cleanup()
            self._applied = 0
            self._needs_full = True

    def __enter__(self) -> Dataplane:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------ changes
    @property
    def state(self) -> DesiredState:
        return self._state

    def apply(self, state: DesiredState | Iterable[StateObject]) -> None:
        """Make ``state`` the whole desired state (declarative, idempotent)."""
        new = state if isinstance(state, DesiredState) else DesiredState(state)
        with self._lock:
            ups, dels = new.diff(self._state)
            self._install(new, [o.key for o in ups] + dels)

    def transaction(self) -> Transaction:
        return Transaction(self)

    def resync(self) -> None:
        """Recompile from scratch and apply in full (repairs any drift)."""
        with self._lock:
            self._require_started()
            self._needs_full = True
            self._push_full()

    def _commit(self, upserts: Iterable[StateObject], deletes: Iterable[ObjectKey]) -> None:
        with self._lock:
            ups = list(upserts)
            dels = list(deletes)
            new = self._state.changed(ups, dels)
            self._install(new, [o.key for o in ups] + dels)

    def _install(self, new: DesiredState, changed: list[ObjectKey]) -> None:
        self._require_started()
        if not changed and not self._needs_full:
            return
        self._state = new
        self._generation += 1
        if self._needs_full:
            self._push_full()
            return
        assert self._compiler is not None
        self._push(self._compiler.update(new, changed))

    # ------------------------------------------------------------ backend
    def _push_full(self) -> None:
        assert self._compiler is not None
        self._push(self._compiler.compile(self._state))

    def _push(self, delta: IRDelta) -> None:
        try:
            self.backend.apply(delta)
        except BackendError as exc:
            self._last_error = f"{type(exc).__name__}: {exc}"
            self._failures += 1
            self._needs_full = True
            self._wake.set()
            log.warning("backend apply failed (%s); will retry with a full resync", exc)
            raise
        self._applied = self._generation
        self._last_error = None
        self._failures = 0
        if delta.full:
            self._needs_full = False
            self._last_full = time.monotonic()

    def _require_started(self) -> None:
        if not self._started:
            raise ConfigError("Dataplane.start() (or `with Dataplane(...)`) must come first")

    def _loop(self) -> None:
        """Retry failed applies with backoff; resync every ``resync_period``."""
        cfg = self.config
        while not self._stop.is_set():
            if self._failures:
                delay = min(cfg.retry_max, cfg.retry_initial * 2 ** (self._failures - 1))
            else:
                delay = cfg.resync_period
            woken = self._wake.wait(delay)
            self._wake.clear()
            if self._stop.is_set():
                return
            if woken:
                continue  # a failure or close() woke us: recompute the delay (backoff)
            with self._lock:
                due = self._last_full is None or (
                    time.monotonic() - self._last_full >= cfg.resync_period
                )
                if not (self._needs_full and self._failures) and not due:
                    continue
                try:
                    self._push_full()
                except BackendError:
                    continue

    # ------------------------------------------------------------ status
    def status(self) -> Status:
        with self._lock:
            backend = self.backend
            return Status(
                backend=backend.name,
                node=self.config.node_name,
                netns=self.config.netns,
                capabilities=backend.capabilities,
                counts=self._state.counts(),
                generation=self._generation,
                applied_generation=self._applied,
                last_error=self._last_error,
                consecutive_failures=self._failures,
                last_full_sync=self._last_full,
                warnings=backend.capabilities.limitations + backend.warnings(),
            )

"""What ``Dataplane.status()`` reports: a snapshot an agent can log or export."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from dataplane.backends.base import Capabilities


@attrs.frozen
class Status:
    """The engine's view of its data plane at one moment.

    ``in_sync`` is true when the last desired state was applied without
    error; otherwise ``last_error`` says why and the engine is retrying.
    """

    backend: str
    node: str
    netns: str | None
    capabilities: Capabilities
    counts: Mapping[str, int]
    generation: int  # bumps with every accepted desired state
    applied_generation: int  # the generation the kernel reflects
    last_error: str | None
    consecutive_failures: int
    last_full_sync: float | None  # time.monotonic() of the last successful full sync
    warnings: tuple[str, ...]

    @property
    def in_sync(self) -> bool:
        return self.generation == self.applied_generation and self.last_error is None

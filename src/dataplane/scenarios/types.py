"""The scenario vocabulary."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from dataplane.backends.base import Capabilities
from dataplane.model import StateObject


class Outcome(enum.Enum):
    CONNECTED = "connected"
    REFUSED = "refused"  # REJECT: TCP RST / ICMP unreachable
    TIMEOUT = "timeout"  # dropped or denied


def _to_names(value: Any) -> frozenset[str] | None:
    return None if value is None else frozenset(value)


@attrs.frozen
class Expect:
    """What a probe should observe.

    ``backends``: the pods (``namespace/name``) that may answer; the
    reference checks it is exactly the reachable set, a real probe that the
    pod which answered is one of them. ``source``: what the server sees as
    the client address — ``"client"`` (unchanged) or ``"node"`` (SNAT to the
    node the packet entered); None when it does not matter.
    """

    outcome: Outcome
    backends: frozenset[str] | None = attrs.field(default=None, converter=_to_names)
    source: str | None = None


def connected(*backends: str, source: str | None = None) -> Expect:
    return Expect(Outcome.CONNECTED, backends or None, source)


REFUSED = Expect(Outcome.REFUSED)
TIMEOUT = Expect(Outcome.TIMEOUT)


@attrs.frozen
class Probe:
    """One connection attempt: from a lab host to an address (or host) and port.

    ``src``/``dst`` name lab hosts (``default/web-1``, ``n1``, ``ext``) or
    give an address. ``via`` names the node an external client's packet is
    routed to (for service VIPs that are not node addresses). ``overrides``
    change the expectation for backends with a capability (e.g.
    ``{"source_ip_preservation": connected(source="client")}``) or without one
    (``{"!reject": TIMEOUT}``).
    """

    src: str
    dst: str
    port: int
    expect: Expect
    protocol: str = "tcp"
    via: str | None = None
    overrides: dict[str, Expect] = attrs.field(factory=dict)

    def expectation(self, caps: Capabilities) -> Expect:
        """The expectation for a backend with ``caps``: the first override whose
        capability it has (``"dsr"``) or lacks (``"!reject"``) wins."""
        for cap, exp in self.overrides.items():
            wanted = not cap.startswith("!")
            if bool(getattr(caps, cap.lstrip("!"))) == wanted:
                return exp
        return self.expect

    def __str__(self) -> str:
        return f"{self.src}->{self.dst}:{self.port}/{self.protocol}"


def _to_probes(values: Sequence[Probe]) -> tuple[Probe, ...]:
    return tuple(values)


@attrs.frozen
class Scenario:
    """A named desired state and the probes that check it.

    ``objects`` is a function of the cluster facts (addresses of the lab
    hosts), so a scenario can name node IPs without hard-coding them.
    ``requires``: capabilities a backend must have for the scenario to apply;
    backends without them skip it explicitly.
    """

    name: str
    objects: Callable[[dict[str, str]], Sequence[StateObject]]
    probes: tuple[Probe, ...] = attrs.field(converter=_to_probes)
    requires: tuple[str, ...] = ()

"""What probes, long-lived connections and captures report back, as attrs values.

The helper processes speak plain JSON; these classes are the typed view the
lab hands to tests.  Unknown wire fields are ignored and missing ones default,
so helper and lab can evolve one field at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

Outcome = Literal["connected", "refused", "timeout", "unreachable"]
Proto = Literal["tcp", "udp", "sctp"]


def _from_wire(cls: Any, data: Mapping[str, Any]) -> Any:
    names = {field.name for field in attrs.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@attrs.frozen
class ProbeRequest:
    """One probe for :meth:`Lab.probe_many`: ``src`` is a host key, ``dst`` an address.

    ``sport``: the client's source port (``None``: the kernel picks one).
    """

    src: str
    dst: str
    port: int
    proto: Proto = "tcp"
    timeout: float = 1.0
    sport: int | None = None


@attrs.frozen
class ProbeResult:
    """How one connection attempt went, seen from both ends.

    ``seen_*`` is what the echo server saw (its peer and its local address:
    source NAT and destination NAT are read here); ``reply_*`` is where the
    answer came from as the client saw it (for UDP the datagram's source,
    for TCP/SCTP the connected peer); ``local_*`` is the client's own socket.
    """

    outcome: Outcome
    seen_source: str | None = None
    seen_sport: int | None = None
    server_node: str | None = None
    server_pod: str | None = None
    rtt_s: float = 0.0
    reply_source: str | None = None
    reply_sport: int | None = None
    seen_dest: str | None = None
    seen_dport: int | None = None
    server_host: str | None = None
    local_address: str | None = None
    local_port: int | None = None
    error: str | None = None

    @property
    def connected(self) -> bool:
        return self.outcome == "connected"

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> ProbeResult:
        result: ProbeResult = _from_wire(cls, data)
        return result


@attrs.frozen
class ConnectionStatus:
    """State of a long-lived connection: did every ping come back?"""

    open: bool
    pings: int
    failures: int
    last_error: str | None
    local_address: str | None
    local_port: int | None
    server_host: str | None
    seen_source: str | None

    @property
    def healthy(self) -> bool:
        return self.open and self.failures == 0

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> ConnectionStatus:
        result: ConnectionStatus = _from_wire(cls, data)
        return result


@attrs.frozen
class CapturedPacket:
    """One IPv4 packet seen on an interface of the capturing host."""

    interface: str
    outgoing: bool
    src_mac: str
    dst_mac: str
    src: str
    dst: str
    proto: str
    sport: int | None
    dport: int | None
    tcp_flags: str | None
    time_s: float
    ttl: int

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> CapturedPacket:
        result: CapturedPacket = _from_wire(cls, data)
        return result

"""Packet capture inside a lab namespace with an ``AF_PACKET`` socket.

Probes see what the application sees; a capture shows the path.  Direct
server return over TCP is the case in point: the client's kernel only accepts
a reply that carries the address it connected to, so DSR is not visible in a
TCP probe.  It is visible on the wire: the reply arrives at the client with the
*backend node's* source MAC instead of the load-balancing node's, and it never
crosses the load-balancing node's uplink.  A capture records, per IPv4 packet,
the interface, direction, MACs, addresses, ports and TCP flags.  Stdlib only.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Any

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
_PACKET_OUTGOING = 4
_PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 132: "sctp"}

Packet = dict[str, Any]


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def parse(frame: bytes) -> Packet | None:
    """Decode an Ethernet frame carrying IPv4; None for anything else."""
    if len(frame) < 34 or struct.unpack_from("!H", frame, 12)[0] != ETH_P_IP:
        return None
    header_len = (frame[14] & 0x0F) * 4
    number = frame[23]
    packet: Packet = {
        "dst_mac": _mac(frame[0:6]),
        "src_mac": _mac(frame[6:12]),
        "src": socket.inet_ntoa(frame[26:30]),
        "dst": socket.inet_ntoa(frame[30:34]),
        "proto": _PROTOCOLS.get(number, str(number)),
        "ttl": frame[22],
        "sport": None,
        "dport": None,
        "tcp_flags": None,
    }
    l4 = 14 + header_len
    if number in (6, 17, 132) and len(frame) >= l4 + 4:
        packet["sport"], packet["dport"] = struct.unpack_from("!HH", frame, l4)
    if number == 6 and len(frame) >= l4 + 14:
        packet["tcp_flags"] = _tcp_flags(frame[l4 + 13])
    return packet


def _tcp_flags(bits: int) -> str:
    return "".join(name for bit, name in enumerate("FSRPAU") if bits & (1 << bit))


class Capture:
    """Record matching IPv4 packets on one interface (or all) until stopped."""

    def __init__(
        self,
        interface: str | None,
        proto: str | None,
        port: int | None,
        address: str | None,
    ) -> None:
        self._filter = (proto, port, address)
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        if interface:
            self._sock.bind((interface, 0))
        self._sock.settimeout(0.05)
        self._packets: list[Packet] = []
        self._stopped = threading.Event()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _matches(self, packet: Packet) -> bool:
        proto, port, address = self._filter
        return (
            (proto is None or packet["proto"] == proto)
            and (port is None or port in (packet["sport"], packet["dport"]))
            and (address is None or address in (packet["src"], packet["dst"]))
        )

    def _run(self) -> None:
        while True:
            stopping = self._stopped.is_set()
            if stopping:
                self._sock.setblocking(False)  # drain what is queued, then end
            try:
                frame, meta = self._sock.recvfrom(65535)
            except (TimeoutError, BlockingIOError):
                if stopping:
                    return
                continue
            packet = parse(frame)
            if packet is not None and self._matches(packet):
                packet["interface"] = meta[0]
                packet["outgoing"] = meta[2] == _PACKET_OUTGOING
                packet["time_s"] = time.monotonic() - self._started
                self._packets.append(packet)

    def stop(self) -> list[Packet]:
        """Stop capturing (after draining what is queued) and return the packets."""
        self._stopped.set()
        self._thread.join()
        self._sock.close()
        return self._packets

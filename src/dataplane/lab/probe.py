"""Client side of the echo protocol, run inside the source host's helper process.

A probe is one real connection (or datagram exchange) from the namespace the
helper lives in.  Its outcome is what an application would see:

``connected``    the echo server answered (its JSON line is in the result)
``refused``      RST / ICMP port-unreachable / SCTP ABORT (``ECONNREFUSED``,
                 ``ECONNRESET``)
``unreachable``  no route, ICMP host/net unreachable or prohibited, or a local
                 firewall rejecting the send (``EHOSTUNREACH``, ``ENETUNREACH``,
                 ``EPERM``, ``EACCES``)
``timeout``      nothing came back in time (a drop somewhere)

UDP uses an unconnected socket with ``IP_RECVERR``: ICMP errors are still
reported, and a reply from an address other than the one asked (direct server
return without reverse NAT) is received and shows up in ``reply_source``.
Stdlib only.
"""

from __future__ import annotations

import errno
import json
import socket
import struct
import threading
import time
from typing import Any

from dataplane.lab.echo import IP_PKTINFO, PKTINFO, SOL_IP, transport

IP_RECVERR = 11  # <linux/in.h>; not exported by Python's socket module

_REFUSED = {errno.ECONNREFUSED, errno.ECONNRESET}
_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EPERM, errno.EACCES}

Result = dict[str, Any]


def _classify(exc: OSError) -> str:
    if isinstance(exc, TimeoutError) or exc.errno == errno.ETIMEDOUT:
        return "timeout"
    if exc.errno in _REFUSED:
        return "refused"
    if exc.errno in _UNREACHABLE:
        return "unreachable"
    raise exc


def _read_line(sock: socket.socket, deadline: float) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionResetError(errno.ECONNRESET, "closed before the echo line")
        data += chunk
    return data


def _result(outcome: str, started: float, sock: socket.socket, **fields: Any) -> Result:
    """Common fields; ``local_*`` is the client socket (an unbound UDP socket has no
    address until a reply names it, so callers may pass ``local_address``)."""
    try:
        address, port = sock.getsockname()
    except OSError:
        address, port = None, None
    result: Result = {
        "outcome": outcome,
        "rtt_s": time.monotonic() - started,
        "local_address": None if address == "0.0.0.0" else address,
        "local_port": port or None,
    }
    result.update(fields)
    return result


def _pktinfo_address(ancdata: list[tuple[int, int, bytes]]) -> str | None:
    """The destination address of a received datagram, i.e. our own address."""
    for level, kind, payload in ancdata:
        if level == SOL_IP and kind == IP_PKTINFO:
            return socket.inet_ntoa(PKTINFO.unpack(payload[: PKTINFO.size])[2])
    return None


def _from_hello(hello: dict[str, Any]) -> Result:
    return {
        "seen_source": hello["src"],
        "seen_sport": hello["sport"],
        "seen_dest": hello["dst"],
        "seen_dport": hello["dport"],
        "server_host": hello.get("host"),
        "server_node": hello.get("node"),
        "server_pod": hello.get("pod"),
    }


_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends a reset


def probe(dst: str, port: int, proto: str, timeout: float, sport: int | None = None) -> Result:
    """One connection attempt to ``dst:port``; never raises for network outcomes.

    ``sport``: send from this source port, so that probes can reuse one
    tuple as a client that opens many connections does. Such a TCP probe
    ends its connection with a reset (no TIME_WAIT), so the next one can
    take the port at once.
    """
    sock_type, number = transport(proto)
    started = time.monotonic()
    deadline = started + timeout
    with socket.socket(socket.AF_INET, sock_type, number) as sock:
        sock.settimeout(timeout)
        try:
            if sport is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
                sock.bind(("0.0.0.0", sport))
            if sock_type == socket.SOCK_DGRAM:
                sock.setsockopt(SOL_IP, IP_RECVERR, 1)
                sock.setsockopt(SOL_IP, IP_PKTINFO, 1)
                sock.sendto(b"probe", (dst, port))
                while True:
                    sock.settimeout(max(deadline - time.monotonic(), 0.001))
                    data, ancdata, _flags, peer = sock.recvmsg(
                        65536, socket.CMSG_SPACE(PKTINFO.size)
                    )
                    try:
                        hello = json.loads(data)
                        break
                    except ValueError:
                        continue  # not an echo reply: keep waiting until the deadline
                local = _pktinfo_address(ancdata)
            else:
                sock.connect((dst, port))
                peer = sock.getpeername()
                local = sock.getsockname()[0]
                hello = json.loads(_read_line(sock, deadline))
        except OSError as exc:
            return _result(_classify(exc), started, sock, error=str(exc))
        return _result(
            "connected",
            started,
            sock,
            local_address=local,
            reply_source=peer[0],
            reply_sport=peer[1],
            **_from_hello(hello),
        )


class LongConnection:
    """A connection kept open to prove it survives data plane changes.

    ``ping`` sends a numbered line and expects it back unchanged (for UDP: in
    the echo reply from the same server port).  With ``interval`` > 0 a thread
    pings periodically; any failure is counted and remembered.
    """

    def __init__(self, dst: str, port: int, proto: str, timeout: float, interval: float) -> None:
        self._proto = proto
        self._dst = (dst, port)
        self._timeout = timeout
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._pings = 0
        self._failures = 0
        self._last_error: str | None = None
        sock_type, number = transport(proto)
        self._sock = socket.socket(socket.AF_INET, sock_type, number)
        self._sock.settimeout(timeout)
        try:
            if sock_type == socket.SOCK_STREAM:
                self._sock.connect(self._dst)
                self.hello = json.loads(_read_line(self._sock, time.monotonic() + timeout))
            else:
                self.hello = self._exchange(b"hello")
        except OSError:
            self._sock.close()
            raise
        self.open = True
        if interval > 0:
            threading.Thread(target=self._keep_pinging, args=(interval,), daemon=True).start()

    def _exchange(self, payload: bytes) -> dict[str, Any]:
        """UDP: send ``payload``, return the echo reply that carries it back."""
        self._sock.sendto(payload, self._dst)
        deadline = time.monotonic() + self._timeout
        while True:
            self._sock.settimeout(max(deadline - time.monotonic(), 0.001))
            data = self._sock.recv(65536)
            reply: dict[str, Any] = json.loads(data)
            if reply.get("echo") == payload.decode():
                return reply

    def ping(self) -> bool:
        with self._lock:
            if not self.open:
                return False
            self._pings += 1
            payload = f"ping {self._pings}\n".encode()
            try:
                if self._proto == "udp":
                    self._exchange(payload)
                else:
                    self._sock.sendall(payload)
                    echoed = _read_line(self._sock, time.monotonic() + self._timeout)
                    if echoed != payload:
                        raise ConnectionError(f"echo mismatch: {echoed!r} != {payload!r}")
            except (OSError, ValueError) as exc:
                self._failures += 1
                self._last_error = f"ping {self._pings}: {exc!r}"
                if self._proto != "udp":
                    self.open = False  # a byte stream is out of step after a failure
                return False
            return True

    def _keep_pinging(self, interval: float) -> None:
        while not self._stopped.wait(interval) and self.ping():
            pass

    def status(self) -> Result:
        with self._lock:
            local_address, local_port = self._sock.getsockname() if self.open else (None, None)
            if local_address == "0.0.0.0":
                local_address = None  # unconnected UDP: the address is chosen per datagram
            return {
                "open": self.open,
                "pings": self._pings,
                "failures": self._failures,
                "last_error": self._last_error,
                "local_address": local_address,
                "local_port": local_port,
                "server_host": self.hello.get("host"),
                "seen_source": self.hello.get("src"),
            }

    def close(self) -> None:
        self._stopped.set()
        with self._lock:
            self.open = False
            self._sock.close()

"""Echo servers that say who they saw: the heart of every lab assertion.

A TCP or SCTP server sends one JSON line as soon as it accepts a connection,
then echoes whatever it receives (long-lived connections ping through it).  A
UDP server answers every datagram with the same JSON line plus the payload.
The line names the peer address and port the server saw, the local address
and port it was reached on, and which host, node and pod it runs in::

    {"proto": "tcp", "src": "10.99.0.101", "sport": 40312, "dst": "10.100.1.2",
     "dport": 8080, "host": "default/pod-1-0", "node": "node-1", "pod": "default/pod-1-0"}

UDP replies leave from the address the datagram was sent to (``IP_PKTINFO``),
so a host with several addresses answers like a well-behaved UDP service.
Stdlib only: this runs inside the per-namespace helper process.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import struct
from collections.abc import Callable, Mapping

SOL_IP = socket.IPPROTO_IP
IP_PKTINFO = 8  # <linux/in.h>; not exported by Python's socket module
PKTINFO = struct.Struct("=i4s4s")  # struct in_pktinfo: ifindex, spec_dst, addr
_MAX_DATAGRAM = 65535

Identity = Mapping[str, str | None]
_Handler = Callable[[socket.socket], None]


def sctp_supported() -> bool:
    """Tell whether this kernel can make SCTP sockets (CONFIG_IP_SCTP)."""
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP).close()
    except OSError:
        return False
    return True


def transport(proto: str) -> tuple[int, int]:
    """Socket type and protocol number for ``tcp``, ``udp`` or ``sctp``."""
    return {
        "tcp": (socket.SOCK_STREAM, socket.IPPROTO_TCP),
        "udp": (socket.SOCK_DGRAM, socket.IPPROTO_UDP),
        "sctp": (socket.SOCK_STREAM, socket.IPPROTO_SCTP),
    }[proto]


class EchoServer:
    """All echo listeners of one namespace, served by one selector thread."""

    def __init__(self, identity: Identity) -> None:
        self._identity = dict(identity)
        # epoll: listeners registered from other threads are picked up by a running select()
        self._selector = selectors.EpollSelector()

    def listen(self, proto: str, port: int) -> None:
        """Open a listener on ``0.0.0.0:port``; raises OSError if the kernel cannot."""
        sock_type, number = transport(proto)
        sock = socket.socket(socket.AF_INET, sock_type, number)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
            if sock_type == socket.SOCK_STREAM:
                sock.listen(128)
                handler: _Handler = lambda s: self._accept(s, proto)  # noqa: E731
            else:
                sock.setsockopt(SOL_IP, IP_PKTINFO, 1)
                handler = self._answer_datagram
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self._selector.register(sock, selectors.EVENT_READ, handler)

    def serve_forever(self) -> None:
        while True:
            for key, _ in self._selector.select():
                handler: _Handler = key.data
                handler(key.fileobj)  # type: ignore[arg-type]

    def _hello(
        self, proto: str, peer: tuple[str, int], local: tuple[str, int]
    ) -> dict[str, object]:
        return {
            "proto": proto,
            "src": peer[0],
            "sport": peer[1],
            "dst": local[0],
            "dport": local[1],
            **self._identity,
        }

    def _accept(self, listener: socket.socket, proto: str) -> None:
        try:
            conn, peer = listener.accept()
        except OSError:
            return
        conn.settimeout(2.0)
        try:
            conn.sendall(_line(self._hello(proto, peer, conn.getsockname())))
        except OSError:
            conn.close()
            return
        self._selector.register(conn, selectors.EVENT_READ, self._echo)

    def _echo(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(65536)
            if data:
                conn.sendall(data)
                return
        except OSError:
            pass
        self._selector.unregister(conn)
        conn.close()

    def _answer_datagram(self, sock: socket.socket) -> None:
        try:
            data, ancdata, _flags, peer = sock.recvmsg(
                _MAX_DATAGRAM, socket.CMSG_SPACE(PKTINFO.size)
            )
        except OSError:
            return
        local_ip = sock.getsockname()[0]
        dest = b""
        for level, kind, payload in ancdata:
            if level == SOL_IP and kind == IP_PKTINFO:
                _ifindex, _spec_dst, dest = PKTINFO.unpack(payload[: PKTINFO.size])
                local_ip = socket.inet_ntoa(dest)
        hello = self._hello("udp", peer, (local_ip, sock.getsockname()[1]))
        hello["echo"] = data.decode(errors="replace")
        reply = _line(hello)
        control = [(SOL_IP, IP_PKTINFO, PKTINFO.pack(0, dest, bytes(4)))] if dest else []
        with contextlib.suppress(OSError):
            sock.sendmsg([reply], control, 0, peer)


def _line(message: Mapping[str, object]) -> bytes:
    return json.dumps(message).encode() + b"\n"

"""Notice when a namespace's IPv4 routes change, so ``dp_route`` follows them.

``dp_route`` caches, per remote pod CIDR and per other node, the interface
and gateway the routing table names, and the programs redirect by it
without a route lookup (``docs/ebpf.md``). A route that moved would
otherwise send traffic to the old gateway until the next full resync, which
may be minutes away. The watch is a netlink socket subscribed to the route
group *of the node's namespace* (opened there; a socket stays in the
namespace it was created in) and a thread that calls back after each burst
of changes: the callback re-reads every route it needs, so the messages
themselves are never parsed, and an overflowed socket (``ENOBUFS``) is just
one more change.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import threading
from collections.abc import Callable

from dataplane.backends.ebpf import _netns

log = logging.getLogger(__name__)

_NETLINK_ROUTE = 0
_RTMGRP_IPV4_ROUTE = 0x40
_CHANGE, _CLOSE, _QUIET = "change", "close", "quiet"
SETTLE_S = 0.05
"""How long a burst of changes may go on before the callback runs once for it
(a link going down withdraws its routes one message at a time)."""


class RouteWatch:
    """Calls ``changed()`` from its own thread after the IPv4 routes of
    ``netns`` (None: the caller's namespace) change; :meth:`close` stops it."""

    def __init__(self, netns: str | None, changed: Callable[[], None]) -> None:
        self._changed = changed
        self._sock = _netns.run_in_netns(netns, _subscribe)
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name=f"routewatch-{netns}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread (waiting for a callback that is running) and close the socket."""
        if self._thread.is_alive():
            os.write(self._wake_w, b"x")
            self._thread.join()
        self._sock.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _run(self) -> None:
        while self._next(None) == _CHANGE:
            while (event := self._next(SETTLE_S)) == _CHANGE:
                pass  # the burst goes on
            if event == _CLOSE:
                return
            try:
                self._changed()
            except Exception:  # the next change or full resync retries
                log.exception("refreshing after a route change failed")

    def _next(self, timeout: float | None) -> str:
        """What comes first within ``timeout``: a change (drained), close, or quiet."""
        ready, _, _ = select.select([self._sock.fileno(), self._wake_r], [], [], timeout)
        if self._wake_r in ready:
            return _CLOSE
        if not ready:
            return _QUIET
        self._drain()
        return _CHANGE

    def _drain(self) -> None:
        while True:
            try:
                self._sock.recv(65536, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError as exc:
                # ENOBUFS: overflow, messages lost, a change all the same. Any
                # other error is reported once (reading clears it) and counts as
                # a change too, rather than ending the watch.
                if exc.errno != errno.ENOBUFS:
                    log.warning("route watch: %s; re-reading routes", exc)
                    return


def _subscribe() -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, _NETLINK_ROUTE)
    try:
        sock.bind((0, _RTMGRP_IPV4_ROUTE))
    except OSError:
        sock.close()
        raise
    return sock

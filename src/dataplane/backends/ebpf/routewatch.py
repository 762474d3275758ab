"""Notice when a namespace's IPv4 routes change, so ``dp_route`` follows them.

``dp_route`` caches, per remote pod CIDR and per other node, the interface
and gateway the routing table names, and the programs redirect by it
without a route lookup (``docs/ebpf.md``). A route that moved would
otherwise send traffic to the old gateway until the next full resync, which
may be minutes away. The watch is a netlink socket subscribed to the route
group *of the node's namespace* (opened there; a socket stays in the
namespace it was created in) and a thread that calls back after each burst
of changes with the destinations that changed, so the callback re-reads only
the routes inside them: most route changes on a node are the per-pod routes
a CNI adds, which cover no other node. An overflowed socket (``ENOBUFS``)
lost messages, so it calls back with ``None``: everything may have changed.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import os
import select
import socket
import threading
from collections.abc import Callable

from dataplane.backends.ebpf import _netns, _rtnl

log = logging.getLogger(__name__)

Changed = frozenset[ipaddress.IPv4Network] | None
"""What a burst changed: route destinations, or ``None`` for anything."""
_CHANGE, _CLOSE, _QUIET = "change", "close", "quiet"
SETTLE_S = 0.05
"""How long a burst of changes may go on before the callback runs once for it
(a link going down withdraws its routes one message at a time)."""


class RouteWatch:
    """Calls ``changed(destinations)`` from its own thread after the IPv4
    routes of ``netns`` (None: the caller's namespace) change; :meth:`close`
    stops it."""

    def __init__(self, netns: str | None, changed: Callable[[Changed], None]) -> None:
        self._changed = changed
        self._burst: set[ipaddress.IPv4Network] | None = set()
        self._sock = _netns.run_in_netns(netns, lambda: _rtnl.open_socket(_rtnl.RTMGRP_IPV4_ROUTE))
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
            burst, self._burst = self._burst, set()
            try:
                self._changed(None if burst is None else frozenset(burst))
            except Exception:  # the next change (re-reading all) or full resync retries
                log.exception("refreshing after a route change failed")
                self._burst = None

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
                data = self._sock.recv(65536, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError as exc:
                # ENOBUFS: overflow, messages lost, so anything may have
                # changed. Any other error is reported once (reading clears
                # it) and counts the same, rather than ending the watch.
                self._burst = None
                if exc.errno != errno.ENOBUFS:
                    log.warning("route watch: %s; re-reading routes", exc)
                    return
                continue
            if self._burst is not None:
                self._burst |= _rtnl.route_prefixes(data)

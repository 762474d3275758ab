"""Last-resort teardown: labs still open at interpreter exit or on SIGTERM.

Context managers and fixtures close labs in the normal case.  This module
covers the rest: ``atexit`` closes whatever is still open, and SIGTERM is
turned into ``SystemExit`` so ``finally`` blocks and ``atexit`` run (the
default SIGTERM action kills the process without either).  A previously
installed Python handler is chained, not replaced.  SIGKILL cannot be
caught: for that, helpers die with their parent and ``dataplane lab clean``
removes the namespaces.

Forked children (pyroute2 forks to open sockets in namespaces) inherit the
handler and the atexit list; they must never tear down their parent's labs,
so both act only in the process that installed them.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, Protocol


class Closeable(Protocol):
    def close(self) -> None: ...


_log = logging.getLogger(__name__)
_open: list[Closeable] = []
_previous: Callable[[int, FrameType | None], Any] | int | None = None
_installed_in: int | None = None


def track(lab: Closeable) -> None:
    global _installed_in
    _open.append(lab)
    if _installed_in != os.getpid():
        atexit.register(close_all)
        _install_sigterm()
        _installed_in = os.getpid()


def untrack(lab: Closeable) -> None:
    if lab in _open:
        _open.remove(lab)


def close_all() -> None:
    """Close every tracked lab; one failing teardown does not stop the others."""
    if _installed_in != os.getpid():
        return
    while _open:
        lab = _open.pop()
        try:
            lab.close()
        except Exception:
            _log.exception("lab teardown failed: run `dataplane lab clean`")


def _install_sigterm() -> None:
    global _previous
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread; atexit still applies
    _previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    if _installed_in != os.getpid():
        os._exit(128 + signum)  # a forked child: die as SIGTERM would have made it
    close_all()
    if callable(_previous):
        _previous(signum, frame)
    elif _previous != signal.SIG_IGN:
        raise SystemExit(128 + signum)

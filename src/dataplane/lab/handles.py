"""Handles on things that live in a helper process: long-lived connections and captures."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

from dataplane.lab.results import CapturedPacket, ConnectionStatus

Caller = Callable[..., Any]
"""``call(cmd, **args)`` on the helper of the host that owns the handle."""


class Connection:
    """A connection held open by a helper; see :meth:`Lab.open_connection`."""

    def __init__(self, call: Caller, opened: dict[str, Any]) -> None:
        self._call = call
        self._id = int(opened["id"])
        self.initial = ConnectionStatus.from_wire(opened)
        self._closed = False

    def ping(self) -> bool:
        """Send one numbered line and wait for its echo; False if it did not come back."""
        return bool(self._call("conn_ping", id=self._id))

    def status(self) -> ConnectionStatus:
        return ConnectionStatus.from_wire(self._call("conn_status", id=self._id))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._call("conn_close", id=self._id)

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Capture:
    """A packet capture; use as a context manager, read ``packets`` afterwards."""

    def __init__(self, call: Caller, filters: dict[str, Any]) -> None:
        self._call = call
        self._filters = filters
        self._id: int | None = None
        self.packets: list[CapturedPacket] = []

    def __enter__(self) -> Capture:
        self._id = int(self._call("capture_start", **self._filters))
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._id is not None:
            raw = self._call("capture_stop", id=self._id)
            self.packets = [CapturedPacket.from_wire(p) for p in raw]
            self._id = None

"""The per-namespace helper process: echo servers plus a request loop.

One helper runs in every lab host namespace, started by the lab through
:func:`dataplane.lab.netns.python_argv`.  It serves the host's echo ports and
answers JSON-line requests on stdin (``{"id": n, "cmd": ..., "args": {...}}``)
with JSON lines on stdout (``{"id": n, "ok": true, "result": ...}``).  Each
request runs in its own thread so many probes can be in flight at once.  A
persistent helper makes a probe cost a pipe round trip instead of a Python
start-up.  Line 0 (``id`` 0) announces readiness once the listeners are bound.

When stdin closes the helper exits, unless it was told to ``detach`` (then
only its echo servers go on, until ``dataplane lab down`` kills it).
Stdlib only.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, BinaryIO

from dataplane.lab import netns
from dataplane.lab.capture import Capture
from dataplane.lab.echo import EchoServer, sctp_supported
from dataplane.lab.probe import LongConnection, probe


class Agent:
    def __init__(self, server: EchoServer, output: BinaryIO) -> None:
        self._server = server
        self._output = output
        self._write_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._connections: dict[int, LongConnection] = {}
        self._captures: dict[int, Capture] = {}
        self.detached = False
        self._commands: dict[str, Callable[..., Any]] = {
            "probe": probe,
            "serve": self._serve,
            "conn_open": self._conn_open,
            "conn_ping": lambda id: self._connections[id].ping(),
            "conn_status": lambda id: self._connections[id].status(),
            "conn_close": lambda id: self._connections.pop(id).close(),
            "capture_start": self._capture_start,
            "capture_stop": lambda id: self._captures.pop(id).stop(),
            "detach": self._detach,
        }

    def send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message).encode() + b"\n"
        with self._write_lock:
            self._output.write(line)
            self._output.flush()

    def handle(self, request: dict[str, Any]) -> None:
        try:
            result = self._commands[request["cmd"]](**request.get("args", {}))
        except Exception as exc:
            self.send({"id": request["id"], "ok": False, "error": f"{type(exc).__name__}: {exc}"})
        else:
            self.send({"id": request["id"], "ok": True, "result": result})

    def _serve(self, proto: str, port: int) -> None:
        self._server.listen(proto, port)

    def _conn_open(
        self, dst: str, port: int, proto: str, timeout: float, interval: float
    ) -> dict[str, Any]:
        ident = next(self._ids)
        self._connections[ident] = LongConnection(dst, port, proto, timeout, interval)
        return {"id": ident, **self._connections[ident].status()}

    def _capture_start(
        self, interface: str | None, proto: str | None, port: int | None, address: str | None
    ) -> int:
        ident = next(self._ids)
        self._captures[ident] = Capture(interface, proto, port, address)
        return ident

    def _detach(self) -> None:
        netns.clear_parent_death_signal()
        self.detached = True


def main(argv: list[str]) -> None:
    """``argv[0]`` is JSON: ``{"host": key, "node": ..., "pod": ..., "serve": [[proto, port]]}``
    (JSON rather than options: it is parsed with a module the helper loads anyway)."""
    config = json.loads(argv[0])
    server = EchoServer({"host": config["host"], "node": config["node"], "pod": config["pod"]})
    skipped = []
    for proto, port in config["serve"]:
        if proto == "sctp" and not sctp_supported():
            skipped.append(f"{proto}:{port}")
            continue
        server.listen(proto, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    agent = Agent(server, sys.stdout.buffer)
    agent.send(
        {
            "id": 0,
            "ok": True,
            "result": {"pid": os.getpid(), "sctp": sctp_supported(), "skipped": skipped},
        }
    )
    for line in sys.stdin.buffer:
        request = json.loads(line)
        if request["cmd"] == "detach":
            agent.handle(request)  # the parent-death signal is per thread: clear the main one's
        else:
            threading.Thread(target=agent.handle, args=(request,), daemon=True).start()
    if agent.detached:
        threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1:])

"""Parent side of the helper processes: start them, talk to them, stop them.

The pool is single-threaded on purpose: requests are written to the helpers'
stdin and the answers read back with a selector in the calling thread, so the
lab owner never runs background threads (pyroute2 forks to open namespace
sockets, and forking a threaded process is asking for deadlocks).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import selectors
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import attrs

from dataplane.lab.errors import LabError


@attrs.frozen
class Launch:
    """How to start the helper of one host."""

    key: str
    argv: Sequence[str]
    log: Path


@attrs.frozen
class Call:
    """One request to the helper of host ``key``."""

    key: str
    cmd: str
    args: dict[str, Any] = attrs.field(factory=dict)


class _Helper:
    def __init__(self, launch: Launch) -> None:
        self.key = launch.key
        self.log = launch.log
        with open(launch.log, "ab") as log:
            self.process = subprocess.Popen(
                launch.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,  # keep terminal signals (Ctrl-C) for the owner
            )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin: IO[bytes] = self.process.stdin
        self.stdout: IO[bytes] = self.process.stdout
        self.buffer = b""
        self.hello: dict[str, Any] = {}

    def failure(self, what: str) -> LabError:
        try:
            tail = self.log.read_text(errors="replace")[-2000:]
        except OSError:
            tail = ""
        status = self.process.poll()
        state = "running" if status is None else f"exited with {status}"
        return LabError(f"helper of {self.key} ({state}): {what}\n{tail}")


class AgentPool:
    """The helpers of one lab, by host key."""

    def __init__(self) -> None:
        self._helpers: dict[str, _Helper] = {}
        self._ids = itertools.count(1)
        self._selector = selectors.DefaultSelector()
        self._replies: dict[tuple[str, int], dict[str, Any]] = {}

    def launch(self, launches: Sequence[Launch]) -> None:
        """Start all helpers; they boot in parallel with whatever the caller does next."""
        for launch in launches:
            helper = _Helper(launch)
            self._helpers[launch.key] = helper
            os.set_blocking(helper.stdout.fileno(), False)
            self._selector.register(helper.stdout, selectors.EVENT_READ, helper)

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Wait until every helper has bound its echo ports and said so."""
        deadline = time.monotonic() + timeout
        for helper in self._helpers.values():
            if not helper.hello:
                helper.hello = self._wait(helper, 0, deadline)["result"]

    def hello(self, key: str) -> dict[str, Any]:
        """What the helper of ``key`` announced when it became ready."""
        return self._helpers[key].hello

    def call(self, call: Call, timeout: float = 10.0) -> Any:
        return self.call_many([call], timeout)[0]

    def call_many(self, calls: Sequence[Call], timeout: float = 10.0) -> list[Any]:
        """Send all requests, then collect the answers; the helpers work in parallel."""
        sent = []
        for call in calls:
            helper = self._helper(call.key)
            ident = next(self._ids)
            line = json.dumps({"id": ident, "cmd": call.cmd, "args": call.args}).encode()
            try:
                helper.stdin.write(line + b"\n")
                helper.stdin.flush()
            except OSError as exc:
                raise helper.failure(f"cannot send {call.cmd}: {exc}") from exc
            sent.append((helper, ident, call.cmd))
        deadline = time.monotonic() + timeout
        results = []
        for helper, ident, cmd in sent:
            reply = self._wait(helper, ident, deadline)
            if not reply["ok"]:
                raise LabError(f"{cmd} on {helper.key} failed: {reply['error']}")
            results.append(reply["result"])
        return results

    def _helper(self, key: str) -> _Helper:
        try:
            return self._helpers[key]
        except KeyError:
            raise LabError(f"no helper process for host {key!r}") from None

    def _wait(self, helper: _Helper, ident: int, deadline: float) -> dict[str, Any]:
        slot = (helper.key, ident)
        while slot not in self._replies:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise helper.failure(f"no answer to request {ident} in time")
            for key, _ in self._selector.select(min(remaining, 0.1)):
                self._read(key.data)
            if helper.process.poll() is not None and slot not in self._replies:
                self._read(helper)
                if slot not in self._replies:
                    raise helper.failure(f"died before answering request {ident}")
        return self._replies.pop(slot)

    def _read(self, helper: _Helper) -> None:
        try:
            chunk = os.read(helper.stdout.fileno(), 1 << 16)
        except BlockingIOError:
            return
        if not chunk:
            with contextlib.suppress(KeyError):
                self._selector.unregister(helper.stdout)
            return
        helper.buffer += chunk
        *lines, helper.buffer = helper.buffer.split(b"\n")
        for line in lines:
            message = json.loads(line)
            self._replies[(helper.key, message["id"])] = message

    def detach(self) -> None:
        """Hand the helpers over to nobody: they drop their parent-death signal and
        keep serving after their stdin closes (``dataplane lab up``)."""
        self.call_many([Call(key, "detach") for key in self._helpers])
        self._close_pipes()

    def stop(self) -> None:
        """Kill every helper and reap it."""
        for helper in self._helpers.values():
            if helper.process.poll() is None:
                helper.process.kill()
        for helper in self._helpers.values():
            helper.process.wait()
        self._close_pipes()

    def _close_pipes(self) -> None:
        for helper in self._helpers.values():
            for pipe in (helper.stdin, helper.stdout):
                with contextlib.suppress(OSError):
                    pipe.close()
        self._selector.close()
        self._helpers.clear()

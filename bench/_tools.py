"""Load generators run inside lab namespaces, shared by the benchmarks in ``bench/``.

The data plane's cost per packet or per connection is a few microseconds, so
the clients must not be Python (a Python client adds ~50 µs per connection and
hides it): ``wrk`` against ``nginx`` for new connections per second, ``iperf3``
for throughput. Everything is started with ``Lab.spawn``, so it runs inside a
lab namespace and dies with the lab. The one Python client here times a single
``connect()`` (SYN → SYN/ACK) per sample; its interpreter overhead sits outside
the timed call, so it adds ~1 µs to every sample, the same in every
configuration.

Clients run on CPU 0 and servers on CPU 1 (``taskset``, where there are two
CPUs or more): left to the scheduler, the two sometimes share a core and
sometimes not, which moved single runs by several per cent; pinned, each
has a core of its own (the softirq work of the packets it sends lands there
too), the same in every configuration.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataplane.lab import Lab, netns

CLIENT_CPU = 0
SERVER_CPU = 1


def on_cpu(cpu: int, argv: Sequence[str]) -> list[str]:
    """``argv`` pinned to ``cpu`` (unchanged on a one-CPU machine)."""
    if (os.cpu_count() or 1) <= cpu or not shutil.which("taskset"):
        return list(argv)
    return ["taskset", "-c", str(cpu), *argv]


NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{ listen {address}:{port} reuseport; location / {{ return 204; }} }}
}}
"""

IPERF3_PORT = 5201


class ToolError(RuntimeError):
    """A load generator or server did not start or gave no usable output."""


def missing(*tools: str) -> str | None:
    """Why the benchmark cannot run these tools (None if all are installed)."""
    absent = [tool for tool in tools if shutil.which(tool) is None]
    return (
        f"not installed: {', '.join(absent)} (apt-get install {' '.join(absent)})"
        if absent
        else None
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def nginx(lab: Lab, pod: str, port: int = 80) -> Iterator[str]:
    """nginx answering 204 on ``pod``'s address; yields that address once it listens.

    Each server gets its own directory: nginx writes its pid file only once it
    listens, which is how readiness is detected without a probe connection.
    """
    address = lab.pods[pod].ip
    with tempfile.TemporaryDirectory(prefix="dplnginx") as name:
        tmp = Path(name)
        conf = tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, address=address, port=port))
        server = lab.spawn(pod, on_cpu(SERVER_CPU, ["nginx", "-c", str(conf)]))
        try:
            deadline = time.monotonic() + 5
            while not (tmp / "nginx.pid").exists():
                if time.monotonic() > deadline or server.poll() is not None:
                    log = tmp / "error.log"
                    raise ToolError(
                        "nginx did not start: " + (log.read_text() if log.exists() else "")
                    )
                time.sleep(0.02)
            yield address
        finally:
            _stop(server)


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run reported; latencies are per request, in microseconds."""

    requests_per_s: float
    socket_errors: str | None
    latency_us: dict[str, float] = field(default_factory=dict)


_UNITS_US = {"us": 1.0, "ms": 1e3, "s": 1e6}


def wrk(
    lab: Lab,
    src: str,
    url: str,
    seconds: float,
    *,
    connections: int = 32,
    close: bool = True,
) -> WrkResult:
    """One ``wrk -t1`` run from ``src``; ``close`` makes every request a new connection.

    ``--latency`` percentiles are time from writing the request to the
    response, i.e. after ``connect()``: they include the server but not the
    handshake, and under load they are mostly queueing.
    """
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    if close:
        argv += ["-H", "Connection: close"]
    client = lab.spawn(
        src, on_cpu(CLIENT_CPU, [*argv, url]), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = client.communicate(timeout=seconds + 30)
    text = out.decode()
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if rate is None:
        raise ToolError(f"wrk gave no rate: {text.strip()} {err.decode().strip()}")
    errors = re.search(r"Socket errors:.*", text)
    latency = {
        f"p{pct}": float(value) * _UNITS_US[unit]
        for pct, value, unit in re.findall(r"^\s+(50|90|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    }
    return WrkResult(float(rate.group(1)), errors.group(0) if errors else None, latency)


@contextmanager
def iperf3_server(lab: Lab, host: str, address: str, port: int = IPERF3_PORT) -> Iterator[None]:
    """A one-shot ``iperf3 -s`` bound to ``address`` in ``host``."""
    server = lab.spawn(
        host,
        on_cpu(SERVER_CPU, ["iperf3", "-s", "-1", "-B", address, "-p", str(port)]),
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.3)  # iperf3 prints nothing machine-readable when it listens
        yield
    finally:
        _stop(server)


CONGESTION_CONTROL = "cubic"
"""The sender's TCP congestion control: cubic, Linux's default.  A machine may
default to another (this one: bbr).  BBR paces every burst with a
high-resolution timer, which in a VM costs the sending core a timer
interrupt each: that cost then dominates every row and hides most of the
data plane's own.  iperf3 applies ``-C`` only after connecting, and a socket
that connected with bbr keeps bbr's pacing, so the client's namespace
defaults to reno first (a namespace may always choose reno)."""


def iperf3(
    lab: Lab,
    src: str,
    address: str,
    seconds: float,
    port: int = IPERF3_PORT,
    congestion: str = CONGESTION_CONTROL,
) -> dict[str, Any]:
    """One single-stream ``iperf3 -c`` run from ``src``; the parsed ``-J`` report.

    ``congestion``: the sender's congestion control (see
    :data:`CONGESTION_CONTROL`); the report's ``end.sender_tcp_congestion``
    says which one ran.
    """
    netns.write_sysctls(lab.host(src).netns, {"net.ipv4.tcp_congestion_control": "reno"})
    argv = ["iperf3", "-c", address, "-p", str(port), "-t", f"{seconds:g}", "-J", "-C", congestion]
    client = lab.spawn(src, on_cpu(CLIENT_CPU, argv), stdout=subprocess.PIPE)
    out, _ = client.communicate(timeout=seconds + 30)
    try:
        report: dict[str, Any] = json.loads(out)
    except ValueError as exc:
        raise ToolError(f"iperf3 gave no report: {out[:200]!r}") from exc
    if "error" in report:
        raise ToolError(f"iperf3: {report['error']}")
    return report


def cpu_busy_seconds() -> float:
    """CPU-seconds the whole machine has spent not idle since boot (all cores).

    ``/proc/stat`` is not namespaced, so this includes softirq work done for
    every lab namespace, which is where a data plane's per-packet cost lands.
    """
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    busy = sum(fields[:8]) - idle  # user..steal; guest time is already in user
    return busy / os.sysconf("SC_CLK_TCK")


def busy_cores(seconds: float = 0.5) -> float:
    """How many cores the machine keeps busy over ``seconds`` (others' work, before a run)."""
    before = cpu_busy_seconds()
    time.sleep(seconds)
    return (cpu_busy_seconds() - before) / seconds


def wait_for_quiet(limit: float = 0.3, patience: float = 30.0) -> float:
    """Wait (up to ``patience`` s) until fewer than ``limit`` cores are busy; the last reading.

    Other people's tests on a two-core machine take CPU from the load generators
    and skew one configuration against another; waiting for a quiet moment and
    recording the reading lets noisy runs be recognised.
    """
    deadline = time.monotonic() + patience
    load = busy_cores()
    while load > limit and time.monotonic() < deadline:
        load = busy_cores()
    return load


# Runs inside the client's namespace with -I -S: no site, no dataplane import, fast start.
_CONNECT_PROBE = """
import socket, struct, sys, time
addr, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
linger = struct.pack("ii", 1, 0)
clock = time.perf_counter_ns
out = []
warm = socket.create_connection((addr, port), timeout=3)  # fail fast if unreachable
warm.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
warm.close()
for _ in range(count):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    t0 = clock()
    s.connect((addr, port))
    t1 = clock()
    s.close()
    out.append(t1 - t0)
sys.stdout.write(" ".join(map(str, out)))
"""


def connect_latency(lab: Lab, src: str, address: str, port: int, count: int) -> list[float]:
    """``count`` sequential blocking ``connect()`` times from ``src``, in microseconds.

    One sample is SYN out → SYN/ACK back, through whatever translates the first
    packet of a flow (the data plane's slow path). Each socket is closed with an
    RST (``SO_LINGER`` 0) so no TIME_WAIT or ephemeral-port pressure builds up.
    """
    probe = lab.spawn(
        src,
        on_cpu(
            CLIENT_CPU,
            [sys.executable, "-I", "-S", "-c", _CONNECT_PROBE, address, str(port), str(count)],
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = probe.communicate(timeout=60 + count / 100)
    if probe.returncode != 0:
        raise ToolError(f"connect probe failed: {err.decode().strip()[-300:]}")
    return [int(v) / 1e3 for v in out.split()]


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: every reported value was measured)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]

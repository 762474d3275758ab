"""Benchmark the lab itself: build/teardown time and the no-data-plane baselines.

Usage: ``python bench/lab.py [--output FILE] [--repeat 3] [--duration 5]`` (as root).

Reports, as JSON:
- build and teardown time of a 3-node lab with 10 pods per node (targets: 5 s / 3 s);
- probe round trips per second through the lab's helper processes;
- new TCP connections per second, client -> pod on a node and pod -> pod across
  nodes, with ``wrk`` (``Connection: close``: one connection per request) against
  ``nginx`` in the pod (Debian packages ``wrk`` and ``nginx-light``; skipped if absent);
- single-stream TCP throughput, client -> pod, with ``iperf3`` (skipped if absent).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dataplane.lab import Lab, LabSpec

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
    server {{ listen {address}:80 reuseport; location / {{ return 204; }} }}
}}
"""


def _timed_lab_cycles(spec: LabSpec, repeat: int) -> dict[str, Any]:
    builds, teardowns = [], []
    for _ in range(repeat):
        lab = Lab(spec)
        started = time.perf_counter()
        lab.start()
        builds.append(time.perf_counter() - started)
        assert lab.probe("client-0", "default/pod-2-9", 8080).connected
        started = time.perf_counter()
        lab.close()
        teardowns.append(time.perf_counter() - started)
    return {
        "topology": "3 nodes x 10 pods + 1 client",
        "build_s": {"min": min(builds), "median": statistics.median(builds), "all": builds},
        "teardown_s": {
            "min": min(teardowns),
            "median": statistics.median(teardowns),
            "all": teardowns,
        },
        "targets_s": {"build": 5.0, "teardown": 3.0},
    }


def _probe_rate(lab: Lab, seconds: float) -> dict[str, Any]:
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        assert lab.probe("client-0", "default/pod-1-0", 8080).connected
        count += 1
    return {"probes_per_s": count / (time.perf_counter() - started)}


def _missing(*tools: str) -> str | None:
    absent = [tool for tool in tools if shutil.which(tool) is None]
    return (
        f"not installed: {', '.join(absent)} (apt-get install {' '.join(absent)})"
        if absent
        else None
    )


def _connection_rate(lab: Lab, src: str, pod: str, seconds: int, tmp: Path) -> dict[str, Any]:
    address = lab.pods[pod].ip
    conf = tmp / f"nginx-{address}.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, address=address))
    server = lab.spawn(pod, ["nginx", "-c", str(conf)])
    try:
        deadline = time.monotonic() + 5
        while not (tmp / "nginx.pid").exists():  # written once nginx listens
            if time.monotonic() > deadline or server.poll() is not None:
                return {"skipped": "nginx did not start: " + (tmp / "error.log").read_text()}
            time.sleep(0.02)
        client = lab.spawn(
            src,
            [
                "wrk",
                "-t1",
                "-c32",
                f"-d{seconds}s",
                "-H",
                "Connection: close",
                f"http://{address}/",
            ],
            stdout=subprocess.PIPE,
        )
        out, _ = client.communicate(timeout=seconds + 30)
    finally:
        server.terminate()
        server.wait()
        (tmp / "nginx.pid").unlink(missing_ok=True)
    text = out.decode()
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    errors = re.search(r"Socket errors:.*", text)
    return {
        "path": f"{src} -> {pod} ({address})",
        "connections_per_s": float(rate.group(1)) if rate else None,
        "socket_errors": errors.group(0) if errors else None,
        "tool": "wrk -t1 -c32 -H 'Connection: close' against nginx (return 204)",
    }


def _throughput(lab: Lab, src: str, pod: str, seconds: int) -> dict[str, Any]:
    address = lab.pods[pod].ip
    server = lab.spawn(pod, ["iperf3", "-s", "-1", "-B", address], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        client = lab.spawn(
            src, ["iperf3", "-c", address, "-t", str(seconds), "-J"], stdout=subprocess.PIPE
        )
        out, _ = client.communicate(timeout=seconds + 30)
    finally:
        server.kill()
        server.wait()
    report = json.loads(out)
    if "error" in report:
        return {"skipped": report["error"]}
    received = report["end"]["sum_received"]["bits_per_second"]
    return {
        "path": f"{src} -> {pod} ({address})",
        "gbit_per_s": received / 1e9,
        "tool": f"iperf3 -c {address} -t {seconds} (single stream)",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", help="write the JSON here instead of stdout")
    parser.add_argument("--repeat", type=int, default=3, help="build/teardown cycles")
    parser.add_argument("--duration", type=int, default=5, help="seconds per traffic test")
    args = parser.parse_args()

    spec = LabSpec.uniform(3, 10, fabric_clients=1)
    result: dict[str, Any] = {"lab": _timed_lab_cycles(spec, args.repeat)}
    with Lab(spec) as lab, tempfile.TemporaryDirectory(prefix="dplbench") as tmp:
        result["probes"] = _probe_rate(lab, 2.0)
        reason = _missing("wrk", "nginx")
        result["new_connections"] = (
            {"skipped": reason}
            if reason
            else [
                _connection_rate(lab, "client-0", "default/pod-1-0", args.duration, Path(tmp)),
                _connection_rate(
                    lab, "default/pod-0-0", "default/pod-2-0", args.duration, Path(tmp)
                ),
            ]
        )
        reason = _missing("iperf3")
        result["throughput"] = (
            {"skipped": reason}
            if reason
            else _throughput(lab, "client-0", "default/pod-1-1", args.duration)
        )
    text = json.dumps(result, indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import _tools
from dataplane.lab import Lab, LabSpec


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


def _connection_rate(lab: Lab, src: str, pod: str, seconds: int) -> dict[str, Any]:
    try:
        with _tools.nginx(lab, pod) as address:
            result = _tools.wrk(lab, src, f"http://{address}/", seconds)
    except _tools.ToolError as exc:
        return {"skipped": str(exc)}
    return {
        "path": f"{src} -> {pod} ({address})",
        "connections_per_s": result.requests_per_s,
        "socket_errors": result.socket_errors,
        "tool": "wrk -t1 -c32 -H 'Connection: close' against nginx (return 204)",
    }


def _throughput(lab: Lab, src: str, pod: str, seconds: int) -> dict[str, Any]:
    address = lab.pods[pod].ip
    try:
        with _tools.iperf3_server(lab, pod, address):
            report = _tools.iperf3(lab, src, address, seconds)
    except _tools.ToolError as exc:
        return {"skipped": str(exc)}
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
    with Lab(spec) as lab:
        result["probes"] = _probe_rate(lab, 2.0)
        reason = _tools.missing("wrk", "nginx")
        result["new_connections"] = (
            {"skipped": reason}
            if reason
            else [
                _connection_rate(lab, "client-0", "default/pod-1-0", args.duration),
                _connection_rate(lab, "default/pod-0-0", "default/pod-2-0", args.duration),
            ]
        )
        reason = _tools.missing("iperf3")
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

"""The ``dataplane`` command: manifests in, readable results and exit codes out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataplane.cli.main import EXIT_BAD_INPUT, main

MANIFESTS = """
apiVersion: v1
kind: Node
metadata: {name: n1}
spec: {podCIDR: 10.100.0.0/24}
status: {addresses: [{type: InternalIP, address: 10.99.0.11}]}
---
apiVersion: v1
kind: Namespace
metadata: {name: default}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.10
  ports: [{port: 80, targetPort: 8080, nodePort: 30080, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-abc, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{port: 8080, protocol: TCP}]
endpoints:
- addresses: [10.100.0.5]
  nodeName: n1
  conditions: {ready: true}
"""


@pytest.fixture
def manifest(tmp_path: Path) -> str:
    path = tmp_path / "cluster.yaml"
    path.write_text(MANIFESTS)
    return str(path)


def test_trace_follows_a_service(manifest: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "trace",
            "-f",
            manifest,
            "--node",
            "n1",
            "--src",
            "10.98.0.10",
            "--dst",
            "10.99.0.11",
            "--port",
            "30080",
            "--interface",
            "eth0",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["verdict"] == "allow"
    assert out["dnat"] == ["10.100.0.5:8080"]
    assert out["masquerade"] is True


def test_trace_mimicking_ebpf_keeps_the_source(
    manifest: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from dataplane.backends.base import Capabilities
    from dataplane.backends.fake import FakeBackend
    from dataplane.backends.registry import register

    class Preserving(FakeBackend):
        capabilities = Capabilities(source_ip_preservation=True)

    register("preserving-test", Preserving)
    main(
        [
            "trace",
            "-f",
            manifest,
            "--node",
            "n1",
            "--src",
            "10.98.0.10",
            "--dst",
            "10.99.0.11",
            "--port",
            "30080",
            "--interface",
            "eth0",
            "--mimic",
            "preserving-test",
        ]
    )
    assert json.loads(capsys.readouterr().out)["masquerade"] is False


def test_apply_status_dump_cleanup_with_fake(
    manifest: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["apply", "-f", manifest, "--backend", "fake", "--node", "n1"]) == 0
    # Node, Namespace + its kns profile, Service, EndpointSet
    assert "applied 5 objects with backend fake" in capsys.readouterr().out
    assert main(["status", "--backend", "fake", "--node", "n1", "--output", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["backend"] == "fake" and status["capabilities"]["services"] is True
    assert main(["dump", "--backend", "fake", "--output", "json"]) == 0
    json.loads(capsys.readouterr().out)
    assert main(["cleanup", "--backend", "fake"]) == 0


def test_bad_manifest_exits_2_naming_object_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(MANIFESTS.replace("port: 80,", "port: 99999,"))
    code = main(["apply", "-f", str(bad), "--backend", "fake", "--node", "n1"])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert "Service default/web" in err and "port" in err


def test_unknown_backend_lists_the_known_ones(
    manifest: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["apply", "-f", manifest, "--backend", "nope", "--node", "n1"])
    err = capsys.readouterr().err
    assert code != 0
    assert "fake" in err and "iptables" in err

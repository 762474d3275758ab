"""The lab cleans up after itself: normal exit, exceptions, SIGTERM, SIGKILL + clean,
many cycles, and it never changes the machine's root network namespace."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dataplane.lab import Lab, LabError, LabSpec, NodeSpec, PodSpec, cli, naming, netns, state
from dataplane.lab.cleanup import BPF_PIN_DIR, lab_namespaces

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(
        netns.unavailable_reason() is not None, reason=str(netns.unavailable_reason())
    ),
]

TINY = LabSpec(nodes=(NodeSpec("n", pods=(PodSpec("p"),)),))


def _processes_mentioning(prefix: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if prefix.encode() in cmdline:
                found.append(int(entry))
    return found


def _assert_gone(prefix: str) -> None:
    assert lab_namespaces(prefix) == []
    assert state.read(prefix) is None
    assert not state.log_dir(prefix).exists()
    assert list(BPF_PIN_DIR.glob(f"{prefix}*")) == [] if BPF_PIN_DIR.is_dir() else True
    assert _processes_mentioning(prefix) == []


def _run(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


def _root_snapshot() -> dict[str, str]:
    """The root namespace's network configuration, minus counters and timestamps."""
    snapshot = {
        "links": _run(["ip", "-o", "link", "show"]),
        "addresses": _run(["ip", "-o", "addr", "show"]),
        "routes": _run(["ip", "route", "show", "table", "all"]),
        "routes6": _run(["ip", "-6", "route", "show", "table", "all"]),
        "rules": _run(["ip", "rule", "show"]),
        "qdiscs": _run(["tc", "qdisc", "show"]),
    }
    for tool in ("iptables-save", "iptables-legacy-save", "ip6tables-save"):
        dump = _run([tool])
        lines = [ln for ln in dump.splitlines() if not ln.startswith("#")]
        snapshot[tool] = re.sub(r"\[\d+:\d+\]", "[]", "\n".join(lines))
    for key in (
        "net/ipv4/ip_forward",
        "net/ipv4/conf/all/forwarding",
        "net/ipv4/conf/default/forwarding",
        "net/ipv4/conf/all/proxy_arp",
        "net/ipv4/conf/all/rp_filter",
        "net/ipv6/conf/all/forwarding",
    ):
        try:
            snapshot[key] = Path("/proc/sys", key).read_text()
        except OSError:
            snapshot[key] = "absent"
    return snapshot


def test_root_namespace_is_untouched_by_a_full_lab() -> None:
    before = _root_snapshot()
    spec = LabSpec.uniform(2, 2, fabric_clients=1, remote_clients=1)
    with Lab(spec) as lab:
        assert lab.probe("remote-0", "default/pod-1-1", 8080).connected
        assert lab.probe("client-0", "default/pod-0-0", 8080, "udp").connected
        with lab.capture("node-0"):
            lab.probe("default/pod-0-0", "default/pod-1-0", 8080)
        lab.add_route("client-0", "10.96.0.0/16", "node-0")
        during = _root_snapshot()
    after = _root_snapshot()
    assert during == before
    assert after == before


def test_exception_inside_the_lab_still_tears_down() -> None:
    with pytest.raises(RuntimeError, match="boom"), Lab(TINY) as lab:
        prefix = lab.prefix
        assert lab_namespaces(prefix)
        raise RuntimeError("boom")
    _assert_gone(prefix)


def test_twenty_up_down_cycles_leave_nothing_behind() -> None:
    links_before = _run(["ip", "-o", "link", "show"])
    prefixes = []
    started = time.monotonic()
    for _ in range(20):
        with Lab(TINY) as lab:
            assert lab.probe("n", "default/p", 8080).connected
            prefixes.append(lab.prefix)
    elapsed = time.monotonic() - started
    for prefix in prefixes:
        _assert_gone(prefix)
    assert _run(["ip", "-o", "link", "show"]) == links_before
    assert elapsed < 30, f"20 cycles took {elapsed:.1f}s"


def test_a_used_prefix_is_refused_without_touching_the_other_lab() -> None:
    with Lab(TINY) as lab:
        with pytest.raises(LabError, match="in use"):
            Lab(TINY, prefix=lab.prefix).start()
        assert lab.probe("n", "default/p", 8080).connected


def test_pins_of_the_lab_instance_are_removed() -> None:
    """Run a lab in a private mount namespace with its own bpffs, so the test needs
    no bpffs on the machine and leaves none behind."""
    script = textwrap.dedent(
        """
        from dataplane.lab import Lab, LabSpec, NodeSpec, PodSpec
        from dataplane.lab.cleanup import BPF_PIN_DIR
        with Lab(LabSpec(nodes=(NodeSpec("n"),))) as lab:
            (BPF_PIN_DIR / lab.prefix / "maps").mkdir(parents=True)
            (BPF_PIN_DIR / (lab.prefix + "-extra")).mkdir()
            (BPF_PIN_DIR / "someone-else").mkdir(exist_ok=True)
        print(sorted(p.name for p in BPF_PIN_DIR.iterdir()))
        (BPF_PIN_DIR / "someone-else").rmdir()
        with Lab(LabSpec(nodes=(NodeSpec("n"),))) as lab:
            (BPF_PIN_DIR / lab.prefix).mkdir()
        print(BPF_PIN_DIR.exists())  # the shared directory goes with the last pins
        """
    )
    result = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            'mount -t bpf bpf /sys/fs/bpf && exec "$0" -c "$1"',
            sys.executable,
            script,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "mount" in result.stderr and result.returncode != 0:
        pytest.skip(f"cannot mount a private bpffs here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["['someone-else']", "False"]


def _owner_script(body: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(body)]


def test_sigterm_to_the_owner_tears_the_lab_down() -> None:
    owner = subprocess.Popen(
        _owner_script(
            """
            import sys, time
            from dataplane.lab import Lab, LabSpec, NodeSpec, PodSpec
            lab = Lab(LabSpec(nodes=(NodeSpec("n", pods=(PodSpec("p"),)),))).start()
            print(lab.prefix, flush=True)
            time.sleep(60)
            """
        ),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert owner.stdout is not None
    prefix = owner.stdout.readline().strip()
    assert naming.is_prefix(prefix) and lab_namespaces(prefix)
    owner.send_signal(signal.SIGTERM)
    assert owner.wait(timeout=10) == 128 + signal.SIGTERM
    _assert_gone(prefix)


def test_sigkilled_lab_up_is_removed_by_clean(capsys: pytest.CaptureFixture[str]) -> None:
    prefix = naming.new_prefix()
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dataplane.lab",
            "up",
            "--prefix",
            prefix,
            "--nodes",
            "3",
            "--pods-per-node",
            "10",
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while not lab_namespaces(prefix) and time.monotonic() < deadline:
        time.sleep(0.002)
    up.kill()
    up.wait()
    leftover = state.read(prefix)
    assert leftover is not None and lab_namespaces(prefix), "the kill should land mid-build"
    assert not leftover.detached and not leftover.owner_alive()

    with Lab(TINY) as bystander:  # a live lab of another run must survive `clean`
        assert cli.main(["clean"]) == 0
        assert prefix in capsys.readouterr().out
        assert bystander.probe("n", "default/p", 8080).connected
    _assert_gone(prefix)


def test_cli_up_status_down() -> None:
    prefix = naming.new_prefix()
    up = subprocess.run(
        [
            sys.executable,
            "-m",
            "dataplane.lab",
            "up",
            "--prefix",
            prefix,
            "--nodes",
            "1",
            "--pods-per-node",
            "1",
            "--remote-clients",
            "0",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    try:
        assert f'"prefix": "{prefix}"' in up.stdout
        lab_state = state.read(prefix)
        assert lab_state is not None and lab_state.detached
        # the echo servers outlive `up`; talk to one with a plain process in the client
        client_ns = naming.netns_name(prefix, "client", "client-0")
        connect = "socket.create_connection(('10.100.0.2', 8080), 2)"
        reply = subprocess.run(
            netns.command_argv(
                client_ns,
                [sys.executable, "-c", f"import socket;print({connect}.recv(500))"],
                die_with_parent=True,
            ),
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert '"src": "10.99.0.101"' in reply.stdout, reply.stderr
        status = subprocess.run(
            [sys.executable, "-m", "dataplane.lab", "status"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert prefix in status.stdout
    finally:
        assert cli.main(["down", prefix]) == 0
    _assert_gone(prefix)

"""Pure parts of the lab's machinery: state files, cleanup targeting, wire decoding."""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

import pytest

from dataplane.lab import cleanup, state
from dataplane.lab.capture import parse
from dataplane.lab.results import ConnectionStatus, ProbeResult


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(state, "STATE_DIR", tmp_path / "state")
    monkeypatch.setattr(cleanup, "BPF_PIN_DIR", tmp_path / "bpf")
    monkeypatch.setattr(cleanup.netns, "names", lambda: [])
    return tmp_path


def test_state_round_trip_and_owner_liveness(state_dir: Path) -> None:
    mine = state.owned_by_me("dpl00001", ["dpl00001-fabric"], {"nodes": []})
    state.write(mine)
    assert state.read("dpl00001") == mine
    assert mine.owner_alive() and not mine.detached
    assert not cleanup.abandoned("dpl00001")

    crashed = state.LabState("dpl00002", os.getpid(), "not-my-start-time", [], {})
    state.write(crashed)
    assert not crashed.owner_alive()
    assert cleanup.abandoned("dpl00002")

    detached = state.LabState("dpl00003", None, None, [], {})
    state.write(detached)
    assert detached.detached and not cleanup.abandoned("dpl00003")
    assert cleanup.abandoned("dpl00004")  # no state file at all
    assert [s.prefix for s in state.all_states()] == ["dpl00001", "dpl00002", "dpl00003"]


def test_clean_removes_only_abandoned_labs_unless_asked(state_dir: Path) -> None:
    state.write(state.owned_by_me("dpl00001", [], {}))
    state.write(state.LabState("dpl00002", os.getpid(), "gone", [], {}))
    pins = state_dir / "bpf"
    (pins / "dpl00002" / "maps").mkdir(parents=True)
    (pins / "dpl00002" / "maps" / "services").write_text("")
    (pins / "dpl00001").mkdir()
    (pins / "unrelated").mkdir()

    assert cleanup.clean() == ["dpl00002"]
    assert state.read("dpl00002") is None and not (pins / "dpl00002").exists()
    assert state.read("dpl00001") is not None and (pins / "dpl00001").exists()
    assert (pins / "unrelated").exists()

    assert cleanup.clean(include_live=True) == ["dpl00001"]
    assert state.all_states() == [] and not (pins / "dpl00001").exists()


def test_probe_result_ignores_unknown_wire_fields() -> None:
    result = ProbeResult.from_wire({"outcome": "connected", "seen_source": "10.0.0.1", "new": 1})
    assert result.connected and result.seen_source == "10.0.0.1" and result.seen_sport is None
    status = ConnectionStatus.from_wire(
        {
            "open": True,
            "pings": 3,
            "failures": 0,
            "last_error": None,
            "local_address": "10.99.0.101",
            "local_port": 4000,
            "server_host": "default/p",
            "seen_source": "10.99.0.101",
        }
    )
    assert status.healthy


def _frame(proto: int, l4: bytes) -> bytes:
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(l4),
        0,
        0,
        64,
        proto,
        0,
        socket.inet_aton("10.99.0.101"),
        socket.inet_aton("10.100.1.2"),
    )
    return bytes.fromhex("eeeeeeeeeeee0200000000010800") + ip + l4


def test_capture_parses_tcp_and_udp_and_skips_the_rest() -> None:
    syn = struct.pack("!HHIIBBHHH", 40000, 8080, 0, 0, 0x50, 0x02, 0, 0, 0)
    packet = parse(_frame(6, syn))
    assert packet is not None
    assert (packet["src"], packet["dst"], packet["sport"], packet["dport"]) == (
        "10.99.0.101",
        "10.100.1.2",
        40000,
        8080,
    )
    assert packet["tcp_flags"] == "S"
    assert packet["dst_mac"] == "ee:ee:ee:ee:ee:ee"
    udp = parse(_frame(17, struct.pack("!HHHH", 5353, 53, 8, 0)))
    assert udp is not None and udp["proto"] == "udp" and udp["tcp_flags"] is None
    arp = bytes(12) + b"\x08\x06" + bytes(28)
    assert parse(arp) is None


def test_without_root_the_lab_says_why_and_touches_nothing(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataplane.lab import Lab, LabError, LabSpec, netns

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    reason = netns.unavailable_reason()
    assert reason is not None and "root" in reason
    with pytest.raises(LabError, match="root"):
        Lab(LabSpec.uniform(1, 1)).start()
    assert state.all_states() == []

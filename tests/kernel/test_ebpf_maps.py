"""The loader against the real kernel: pinned maps round-trip, are adopted, are cleaned up.

Everything lives under a per-run pin directory and a per-run throwaway
network namespace, removed by fixtures even when a test fails.
"""

from __future__ import annotations

import ctypes
import ipaddress
import json
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dataplane.backends.ebpf import EbpfBackend, loader
from dataplane.backends.ebpf.maps import (
    affinity,
    conntrack,
    counters,
    frontend,
    route,
    source_class,
)
from dataplane.backends.ebpf.maps._map import U32, pack_addr
from dataplane.engine.config import DataplaneConfig
from dataplane.errors import BackendError

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(
        EbpfBackend.unavailable_reason() is not None,
        reason=str(EbpfBackend.unavailable_reason()),
    ),
]

RUN = "dpt" + secrets.token_hex(3)


@pytest.fixture
def pin_dir() -> Iterator[Path]:
    path = Path("/sys/fs/bpf/dataplane") / f"{RUN}-{secrets.token_hex(2)}"
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_maps_round_trip_and_survive_reload(pin_dir: Path) -> None:
    loaded = loader.load(pin_dir, {"ebpf_conntrack_max": 4096}, conntrack.Timeouts())
    try:
        fe = loaded.map(frontend.SPEC)
        key = frontend.FrontendKey(pack_addr("10.96.0.1"), 443, 6, frontend.CLASS_ANY)
        fe.update(key, frontend.FrontendValue(1, 2, 3, 4, 5))
        got = fe.lookup(key)
        assert got is not None and (got.route_id, got.count, got.flags) == (1, 3, 5)

        classes = loaded.map(source_class.SPEC)  # LPM trie
        net = ipaddress.ip_network("10.100.0.0/16")
        classes.update(source_class.make_key(net), source_class.ClassValue(frontend.CLASS_POD))
        probe = source_class.Lpm4Key(32, pack_addr("10.100.7.9"))
        hit = classes.lookup(probe)
        assert hit is not None and hit.class_id == frontend.CLASS_POD

        aff = loaded.map(affinity.SPEC)  # LRU hash, batch update
        keys = [affinity.AffinityKey(pack_addr(f"10.0.0.{i}"), 1, 80, 6) for i in range(1, 5)]
        aff.update_many((k, affinity.AffinityValue(1, 2, 0, 8080)) for k in keys)
        assert len(aff.entries()) == 4

        per_cpu = loaded.map(counters.SPEC).lookup_percpu(U32(0))
        assert per_cpu and all(c.packets == 0 for c in per_cpu)
    finally:
        loaded.close()
    assert (pin_dir / "dp_fe").exists() and (pin_dir / "dp_ct").exists()

    again = loader.load(pin_dir, {"ebpf_conntrack_max": 8192}, conntrack.Timeouts())
    try:  # pinned maps are adopted as they are (their size wins) with their contents
        assert again.map(frontend.SPEC).lookup(key) is not None
        assert len(again.map(affinity.SPEC).entries()) == 4
    finally:
        again.close()


def _pin_old_map(path: Path, kind: str, key: int, value: int, flags: int = 0) -> None:
    """A map as an older version would have pinned it: same name, other sizes."""
    subprocess.run(
        [
            *("bpftool", "map", "create", str(path), "type", kind, "key", str(key)),
            *("value", str(value), "entries", "16", "name", path.name, "flags", str(flags)),
        ],
        check=True,
    )


def test_incompatible_pinned_map_is_an_error(pin_dir: Path) -> None:
    _pin_old_map(pin_dir / "dp_fe", "hash", 4, 4)
    with pytest.raises(BackendError, match="run cleanup"):
        loader.load(pin_dir, {}, conntrack.Timeouts())


def test_incompatible_pinned_map_rebuilt_at_sync_is_replaced(pin_dir: Path) -> None:
    """dp_route is rewritten at every full sync: an old layout's pin gives way."""
    _pin_old_map(pin_dir / "dp_route", "lpm_trie", 8, 4, flags=1)  # BPF_F_NO_PREALLOC
    loaded = loader.load(pin_dir, {}, conntrack.Timeouts())
    try:
        routes = loaded.map(route.SPEC)
        key = source_class.make_key(ipaddress.ip_network("10.100.1.0/24"))
        routes.update(key, route.RouteValue(2, pack_addr("10.99.0.12")))
        assert routes.lookup(key) is not None
    finally:
        loaded.close()
    out = subprocess.run(
        ["bpftool", "-j", "map", "show", "pinned", str(pin_dir / "dp_route")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out)["bytes_value"] == ctypes.sizeof(route.RouteValue)


def test_backend_start_and_cleanup_in_a_throwaway_namespace(netns: str) -> None:
    config = DataplaneConfig(backend="ebpf", node_name="n", netns=netns, instance=f"{RUN}-b")
    backend = EbpfBackend(config)
    backend.start()
    try:
        pins = Path("/sys/fs/bpf/dataplane") / config.instance_name
        assert (pins / "dp_ct").exists()
        links = subprocess.run(
            ["ip", "-n", netns, "link"], capture_output=True, text=True, check=True
        ).stdout
        assert "dpv" in links  # the instance's VXLAN device, inside the namespace only
        backend.close()
        backend.start()  # a second start in the same process adopts the pins
    finally:
        backend.cleanup()
    assert not pins.exists()
    links = subprocess.run(
        ["ip", "-n", netns, "link"], capture_output=True, text=True, check=True
    ).stdout
    assert "dpv" not in links
    backend.cleanup()  # safe twice

"""The eBPF backend's own rtnetlink (``_rtnl``) against the kernel's routing
table, in a throwaway namespace: lookups agree with ``ip route get``, and the
route watch names the destinations that changed."""

from __future__ import annotations

import ipaddress
import json
import queue
import subprocess
import time

import pytest

from dataplane.backends.ebpf import _netns, routewatch
from dataplane.backends.ebpf._rtnl import RouteOut

pytestmark = pytest.mark.kernel

N = ipaddress.IPv4Network


def _ip(netns: str, *args: str) -> str:
    return subprocess.run(
        ["ip", "-n", netns, *args], capture_output=True, text=True, check=True
    ).stdout


def _ip_route_get(netns: str, addr: str) -> RouteOut | None:
    """What ``ip route get`` says (None: no route, or none out of an interface)."""
    found = subprocess.run(
        ["ip", "-n", netns, "-j", "route", "get", addr], capture_output=True, text=True
    )
    if found.returncode:
        return None
    route = json.loads(found.stdout)[0]
    if "dev" not in route:
        return None
    ifindex = json.loads(_ip(netns, "-j", "link", "show", route["dev"]))[0]["ifindex"]
    return RouteOut(ifindex, route.get("gateway"))


@pytest.fixture
def routed(netns: str) -> str:
    """``netns`` with a veth uplink (10.0.0.1/16), a route via a gateway, an
    on-link route, a blackhole and an unreachable route; no default route."""
    _ip(netns, "link", "add", "up0", "type", "veth", "peer", "name", "up1")
    for dev in ("lo", "up0", "up1"):
        _ip(netns, "link", "set", dev, "up")
    _ip(netns, "addr", "add", "10.0.0.1/16", "dev", "up0")
    _ip(netns, "route", "add", "10.100.1.0/24", "via", "10.0.0.12")
    _ip(netns, "route", "add", "10.100.2.0/24", "dev", "up1")
    _ip(netns, "route", "add", "blackhole", "10.100.3.0/24")
    _ip(netns, "route", "add", "unreachable", "10.100.4.0/24")
    return netns


def test_route_lookups_agree_with_ip_route_get(routed: str) -> None:
    addrs = [
        "10.100.1.1",  # via a gateway
        "10.100.2.1",  # on-link, another interface
        "10.0.0.12",  # on the uplink's own subnet
        "10.0.0.1",  # this namespace's own address (the local table)
        "10.100.3.1",  # blackhole
        "10.100.4.1",  # unreachable
        "192.0.2.1",  # no route at all
    ]
    # More than one batch, so batches and their sequence numbers are exercised.
    many = [f"10.100.1.{i % 250 + 1}" for i in range(600)]
    found = _netns.routes_out(routed, addrs + many)
    for addr in addrs:
        assert found.get(addr) == _ip_route_get(routed, addr), addr
    assert found["10.100.1.1"].gateway == "10.0.0.12"  # the agreement is not all-None
    assert {found[a] for a in many} == {found["10.100.1.1"]}


def test_the_watch_names_the_destinations_that_changed(routed: str) -> None:
    bursts: queue.Queue[routewatch.Changed] = queue.Queue()
    watch = routewatch.RouteWatch(routed, bursts.put)

    def seen_until(expected: set[N]) -> set[N]:
        """The destinations of the bursts until ``expected`` is among them."""
        seen: set[N] = set()
        while not expected <= seen:
            changed = bursts.get(timeout=5)
            assert changed is not None  # nothing was lost
            seen |= changed
        return seen

    try:
        _ip(routed, "route", "add", "10.100.9.7/32", "dev", "up1")  # a CNI's pod route
        assert seen_until({N("10.100.9.7/32")}) == {N("10.100.9.7/32")}
        _ip(routed, "route", "replace", "10.100.1.0/24", "via", "10.0.0.13")
        _ip(routed, "route", "add", "default", "via", "10.0.0.254")
        _ip(routed, "route", "del", "10.100.9.7/32")
        assert seen_until(want := {N("10.100.1.0/24"), N("0.0.0.0/0"), N("10.100.9.7/32")}) == want
    finally:
        watch.close()


def test_after_a_failed_refresh_the_next_change_rereads_everything(routed: str) -> None:
    """A callback that failed may have left any entry stale, so the one after
    it is told that anything may have changed."""
    calls: queue.Queue[routewatch.Changed] = queue.Queue()
    failed: list[bool] = []

    def changed(destinations: routewatch.Changed) -> None:
        calls.put(destinations)
        if not failed:
            failed.append(True)
            raise OSError("netlink went away")

    watch = routewatch.RouteWatch(routed, changed)
    try:
        _ip(routed, "route", "add", "10.100.9.7/32", "dev", "up1")
        assert calls.get(timeout=5) == {N("10.100.9.7/32")}
        time.sleep(2 * routewatch.SETTLE_S)
        _ip(routed, "route", "del", "10.100.9.7/32")
        assert calls.get(timeout=5) is None
    finally:
        watch.close()

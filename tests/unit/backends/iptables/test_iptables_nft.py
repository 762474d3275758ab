"""The nftables NAT table (``iptables_nat="nftables"``): rendering, read-back, scripts (no root).

The kernel side (real packets, restart without writes, failures) is in
tests/kernel/test_iptables.py and the behaviour suite.
"""

from __future__ import annotations

import ipaddress

import pytest

from dataplane.backends.iptables import IptablesBackend, nft, render_nft
from dataplane.backends.iptables.backend import nat_mode
from dataplane.backends.iptables.naming import Marks
from dataplane.backends.iptables.readback import Installed
from dataplane.backends.iptables.store import Piece, Store
from dataplane.calc.ir import Backend, Frontend, FrontendKind, NoEndpoints, Route, SourceClass
from dataplane.engine.config import DataplaneConfig
from dataplane.errors import ConfigError
from dataplane.model import Protocol

MARKS = Marks.from_mask(0x0F000000)
A = ipaddress.ip_address


def _backends(*octets: int, local: bool = True) -> tuple[Backend, ...]:
    return tuple(Backend(A(f"10.244.1.{o}"), 8080, "n1", local) for o in octets)


def _cluster_ip(bs: tuple[Backend, ...], **kw: object) -> Frontend:
    routes = (Route(SourceClass.POD, bs, False), Route(SourceClass.ANY, bs, True))
    return Frontend(
        A("10.96.0.1"), Protocol.TCP, 80, FrontendKind.CLUSTER_IP, "ns/svc", routes, **kw
    )  # type: ignore[arg-type]


def _rules(fe: Frontend) -> tuple[str, ...]:
    return render_nft.frontend_piece(fe, MARKS).chains[("nft", render_nft.frontend_chain(fe))]


def test_one_backend_is_dnated_inline_and_others_masqueraded() -> None:
    assert _rules(_cluster_ip(_backends(2))) == (
        "ip saddr != @pods meta mark set meta mark | 0x01000000",
        "meta l4proto tcp dnat to 10.244.1.2:8080",
    )


def test_several_backends_are_map_elements_behind_a_shared_pick_chain() -> None:
    piece = render_nft.frontend_piece(_cluster_ip(_backends(2, 3, 4)), MARKS)
    assert piece.chains[("nft", "pick-tcp-3-0")] == (
        "dnat ip to ip daddr . tcp dport . numgen random mod 3 map @eps_tcp",
    )
    assert piece.members["nft:eps_tcp"] == {
        f"10.96.0.1 . 80 . {i} : 10.244.1.{i + 2} . 8080" for i in range(3)
    }
    assert piece.members["nft:hp"] == {
        f"10.244.1.{o} . tcp . 8080 . 10.244.1.{o}" for o in (2, 3, 4)
    }


def test_routes_with_different_backends_get_their_own_index_ranges() -> None:
    cluster, local = _backends(2, 3, local=False) + _backends(4), _backends(4, 5)
    fe = Frontend(
        A("192.168.0.2"),
        Protocol.UDP,
        30080,
        FrontendKind.NODE_PORT,
        "ns/svc",
        (
            Route(SourceClass.POD, cluster, False),
            Route(SourceClass.HOST, (), True, NoEndpoints.REJECT),
            Route(SourceClass.ANY, local, False),
        ),
    )
    piece = render_nft.frontend_piece(fe, MARKS)
    assert piece.chains[("nft", render_nft.frontend_chain(fe))] == (
        "ip saddr @pods goto pick-udp-3-0",
        "fib saddr type local return",
        "goto pick-udp-2-3",
    )
    assert "192.168.0.2 . 30080 . 4 : 10.244.1.5 . 8080" in piece.members["nft:eps_udp"]


def test_affinity_and_source_ranges() -> None:
    nets = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("1.2.3.4/32"))
    fe = _cluster_ip(_backends(2, 3), affinity_timeout=600, source_ranges=nets)
    piece = render_nft.frontend_piece(fe, MARKS)
    rules = piece.chains[("nft", render_nft.frontend_chain(fe))]
    assert rules[0] == "ip saddr != { 1.2.3.4, 10.0.0.0/8 } return"
    assert rules[-1].startswith("numgen random mod 2 vmap { 0 : goto E-")
    sets = [name for kind, name in piece.chains if kind == "nftset"]
    assert len(sets) == 2 and all(s.startswith("A-") for s in sets)
    assert piece.chains[("nftset", sets[0])] == (
        "type ipv4_addr; flags dynamic,timeout; timeout 600s;",
    )


LISTING = """table ip DP-X {
\tmap fe {
\t\ttype ipv4_addr . inet_proto . inet_service : verdict
\t\telements = { 10.96.0.1 . tcp . 80 : goto F-A,
\t\t\t     10.96.0.2 . tcp . 80 : goto F-A }
\t}

\tset A-1 {
\t\ttype ipv4_addr
\t\tflags dynamic,timeout
\t\ttimeout 10m
\t\telements = { 10.1.1.1 timeout 10m expires 9m }
\t}

\tchain prerouting {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tip daddr . meta l4proto . th dport vmap @fe
\t}

\tchain F-A {
\t\tmeta l4proto tcp dnat to 10.244.1.2:8080
\t}
}
"""


def test_listing_is_read_back_without_hook_lines_or_dynamic_members() -> None:
    installed = Installed()
    nft.parse_list(LISTING, installed)
    assert installed.chains[("nft", "prerouting")] == (
        "ip daddr . meta l4proto . th dport vmap @fe",
    )
    assert installed.chains[("nft", "F-A")] == ("meta l4proto tcp dnat to 10.244.1.2:8080",)
    assert ("nftset", "A-1") in installed.chains and "nft:A-1" not in installed.members
    assert installed.members["nft:fe"] == {
        "10.96.0.1 . tcp . 80 : goto F-A",
        "10.96.0.2 . tcp . 80 : goto F-A",
    }


def test_script_writes_only_differences_and_deletes_by_key() -> None:
    installed = Installed()
    nft.parse_list(LISTING, installed)
    store = Store()
    store.put(
        "x",
        Piece(
            chains={
                ("nft", "prerouting"): installed.chains[("nft", "prerouting")],
                ("nft", "F-A"): ("meta l4proto tcp dnat to 10.244.1.3:8080",),
                ("nftset", "A-1"): ("type ipv4_addr;",),
            },
            members={"nft:fe": frozenset({"10.96.0.1 . tcp . 80 : goto F-A"})},
        ),
    )
    keys, sets = store.take_dirty()
    assert nft.script(store, installed, keys, sets, "DP-X").splitlines() == [
        "add table ip DP-X",
        "flush chain ip DP-X F-A",
        "add rule ip DP-X F-A meta l4proto tcp dnat to 10.244.1.3:8080",
        "delete element ip DP-X fe { 10.96.0.2 . tcp . 80 }",
    ]
    store.drop("x")
    keys, sets = store.take_dirty()
    assert nft.script(store, installed, keys, sets, "DP-X") == "delete table ip DP-X\n"


def test_auto_nat_needs_a_working_nft_and_bad_values_fail_at_construction() -> None:
    assert nat_mode("auto", lambda: True) == "nftables"
    assert nat_mode("auto", lambda: False) == "iptables"
    assert nat_mode("iptables", lambda: True) == "iptables"
    with pytest.raises(ConfigError, match="iptables_nat"):
        IptablesBackend(DataplaneConfig(backend="iptables", options={"iptables_nat": "ipvs"}))

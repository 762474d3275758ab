"""``G_PASS_ON``: off exactly while interfaces move between TCX and clsact.

While the flag is on, a "pass" verdict lets the hook's later programs and
filters run (``dp_exit`` in ``bpf/dataplane.c``); during a move the old
attachment is still there after the new one, so the flag must be off then,
or both would act on the same packet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dataplane.backends.ebpf import EbpfBackend, attach, nodestate
from dataplane.backends.ebpf.maps import ifstate, node
from dataplane.backends.ebpf.maps._map import U32

WANT = {7: attach.Want("eth0", 1)}
FLAGS = node.G_DSR | node.G_BPF_TUN


class Globals:
    """``dp_globals``: one entry, key 0."""

    def __init__(self) -> None:
        self.value = node.Globals(5, FLAGS | node.G_PASS_ON, 1500, 4789)

    def lookup(self, key: U32) -> node.Globals:
        assert key.value == 0
        return self.value

    def update(self, key: U32, value: node.Globals) -> None:
        assert key.value == 0
        self.value = value


class Loaded:
    def __init__(self, table: Globals) -> None:
        self.table = table

    def map(self, spec: Any) -> Globals:
        assert spec is node.GLOBALS
        return self.table


class Attacher:
    """Records the flags the programs would see while interfaces are attached."""

    def __init__(self, table: Globals, moving: bool) -> None:
        self.table, self.moving = table, moving
        self.flags_during: int | None = None

    def moves(self, want: Any) -> bool:
        return self.moving

    def reconcile(self, want: Any, links: Any) -> None:
        self.flags_during = self.table.value.flags


@pytest.mark.parametrize("moving", [True, False])
def test_pass_on_is_off_only_during_a_move(moving: bool) -> None:
    table = Globals()
    attacher = Attacher(table, moving)
    EbpfBackend._attach(Loaded(table), attacher, WANT, {"eth0": 7})  # type: ignore[arg-type]
    assert attacher.flags_during == (FLAGS if moving else FLAGS | node.G_PASS_ON)
    assert table.value.flags == FLAGS | node.G_PASS_ON
    assert (table.value.tunnel_ifindex, table.value.mtu, table.value.vxlan_port) == (5, 1500, 4789)


def test_set_pass_on_keeps_the_other_globals() -> None:
    table = Globals()
    nodestate.set_pass_on(table, False)  # type: ignore[arg-type]
    assert table.value.flags == FLAGS
    nodestate.set_pass_on(table, True)  # type: ignore[arg-type]
    assert table.value.flags == FLAGS | node.G_PASS_ON


class Records:
    """``dp_ifstate`` with one interface's record."""

    def __init__(self, flags: int) -> None:
        self.record = ifstate.IfState(b"eth0", 1, flags, 100)

    def entries(self) -> list[tuple[U32, ifstate.IfState]]:
        return [(U32(7), self.record)]


@pytest.mark.parametrize(
    ("mode", "recorded", "moves"),
    [
        ("tcx", ifstate.F_TCX, False),
        ("tcx", ifstate.F_TC, True),
        ("tcx", 0, True),  # a record from before TCX: filters
        ("tc", ifstate.F_TC, False),
        ("tc", ifstate.F_TCX, True),
    ],
)
def test_a_move_is_a_wanted_interface_attached_the_other_way(
    mode: str, recorded: int, moves: bool
) -> None:
    attacher = attach.Attacher(None, Records(recorded), {}, 100, Path("/nonexistent"), mode)  # type: ignore[arg-type]
    assert attacher.moves(WANT) is moves
    assert attacher.moves({}) is False  # interfaces only detached do not move

"""``ebpf_tunnel``: which encapsulation the programs use, as written to ``dp_globals``."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from dataplane.backends.ebpf import DEFAULT_TUNNEL, EbpfBackend, nodestate, tunnel_mode
from dataplane.backends.ebpf.maps import node
from dataplane.calc.ir import DataplaneIR, IRSettings
from dataplane.engine.config import DataplaneConfig
from dataplane.errors import BackendError
from dataplane.model import EndpointToHostAction, ExternalServiceMode


class Table:
    """The one ``update`` that write_globals makes."""

    def __init__(self) -> None:
        self.value: node.Globals | None = None

    def update(self, key: Any, value: node.Globals) -> None:
        assert key.value == 0
        self.value = value


def _ir(mode: ExternalServiceMode) -> DataplaneIR:
    settings = IRSettings(
        "n1",
        (ipaddress.ip_address("10.0.0.1"),),
        (),
        (),
        (),
        mode,
        EndpointToHostAction.DROP,
        "eth.*",
        "dpw",
    )
    return DataplaneIR(settings)


def test_default_is_the_programs() -> None:
    assert DEFAULT_TUNNEL == "bpf"
    assert tunnel_mode("kernel") == "kernel"
    with pytest.raises(BackendError, match="ebpf_tunnel"):
        tunnel_mode("geneve")


def test_bad_option_is_refused_at_construction() -> None:
    with pytest.raises(BackendError, match="ebpf_tunnel"):
        EbpfBackend(DataplaneConfig(backend="ebpf", options={"ebpf_tunnel": "xdp"}))


@pytest.mark.parametrize("bpf", [False, True])
@pytest.mark.parametrize("mode", [ExternalServiceMode.TUNNEL, ExternalServiceMode.DSR])
def test_globals_carry_mode_and_port(bpf: bool, mode: ExternalServiceMode) -> None:
    table = Table()
    nodestate.write_globals(
        table,  # type: ignore[arg-type]
        _ir(mode),
        7,
        1500,
        vxlan_port=4789,
        bpf_tunnel=bpf,
    )
    g = table.value
    assert g is not None
    assert (g.tunnel_ifindex, g.mtu, g.vxlan_port) == (7, 1500, 4789)
    assert bool(g.flags & node.G_BPF_TUN) is bpf
    assert bool(g.flags & node.G_DSR) is (mode is ExternalServiceMode.DSR)

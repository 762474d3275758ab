"""HnsBackend over the emulator: configuration, adoption, orphans, churn, faults, tracing."""

from __future__ import annotations

import json
import sys
import uuid
from typing import Any

import hns_builders as b
import pytest

from dataplane.backends.windows_hns import HnsBackend
from dataplane.backends.windows_hns.client import HcnClient
from dataplane.backends.windows_hns.identity import is_owned
from dataplane.calc.ir import Chain, ChainEnd, FrontendKind, IRDelta, RemoteNode
from dataplane.engine.config import DataplaneConfig
from dataplane.errors import ConfigError, TransientBackendError
from dataplane.model import Action

REMOTE = RemoteNode("node-b", (b.addr("192.168.0.11"),), (b.net("10.244.1.0/24"),))


def make(emu: Any, transport: Any = None, **options: Any) -> HnsBackend:
    config = DataplaneConfig(
        backend="windows-hns",
        node_name="node-a",
        instance=b.INSTANCE,
        options={"hns_transport": "emulator", "hns_emulator": emu, **options},
    )
    backend = HnsBackend(config)
    if transport is not None:
        backend._open = lambda: transport  # the seam the tests wrap; production uses the emulator
    return backend


def web_ir(*backends: Any, policy: bool = True) -> Any:
    deny_others = Chain(
        tiers=(
            b.tier(
                "default",
                b.policy(
                    "default/allow-client",
                    b.rule(
                        Action.ALLOW,
                        "default/allow-client",
                        protocol=6,
                        src_sets=("clients",),
                        dst_ports=b.ports(8080),
                    ),
                ),
            ),
        ),
        end=ChainEnd.DENY,
    )
    workloads = [
        b.workload(
            "server", "10.244.0.5", ingress=deny_others if policy else Chain(end=ChainEnd.ALLOW)
        ),
        b.workload("client", "10.244.0.6"),
    ]
    return b.dataplane_ir(
        [
            b.frontend("10.96.0.10", 80, b.route(*backends)),
            b.frontend(
                b.NODE_IP, 30080, b.route(*backends, masquerade=True), kind=FrontendKind.NODE_PORT
            ),
        ],
        workloads,
        [b.ip_set("clients", "10.244.0.6/32")],
        [REMOTE],
    )


@pytest.fixture
def emu() -> Any:
    e = b.emulator()
    e.add_endpoint("10.244.0.5", "server")
    e.add_endpoint("10.244.0.6", "client")
    return e


def state(emu: Any) -> Any:
    lbs = sorted(
        (lb["ID"], tuple(sorted(lb["HostComputeEndpoints"])))
        for lb in emu.documents("LoadBalancer")
    )
    eps = sorted((e["ID"], str(e.get("Policies"))) for e in emu.documents("Endpoint"))
    return lbs, eps


def test_configuration() -> None:
    if sys.platform != "win32":
        assert "hns_transport='emulator'" in (HnsBackend.unavailable_reason() or "")
        with pytest.raises(ConfigError):
            HnsBackend(DataplaneConfig(backend="windows-hns", node_name="n"))
    with pytest.raises(ConfigError, match="HcnEmulator"):
        HnsBackend(
            DataplaneConfig(
                backend="windows-hns",
                node_name="n",
                options={"hns_transport": "emulator", "hns_emulator": 1},
            )
        )
    assert HnsBackend.name == "windows-hns"
    assert not HnsBackend.capabilities.reject and HnsBackend.capabilities.limitations


def test_apply_then_trace(emu: Any) -> None:
    backend = make(emu)
    backend.start()
    backend.apply(
        IRDelta(web_ir(b.backend("10.244.0.5"), b.backend("10.244.1.7", local=False)), full=True)
    )
    server = next(e["ID"] for e in emu.documents("Endpoint") if e["Name"] == "server")
    t = emu.trace("10.244.0.6", "10.96.0.10", 6, 80, endpoint_id=server)
    assert set(t.candidates) == {(b.addr("10.244.0.5"), 8080), (b.addr("10.244.1.7"), 8080)}
    assert (t.verdict, t.acl.rule) == ("allow", f"{b.INSTANCE}|default/allow-client ingress[0]")
    t = emu.trace("10.244.9.9", "10.96.0.10", 6, 80, endpoint_id=server)
    assert (t.verdict, t.acl.rule) == ("deny", f"{b.INSTANCE}|tier default ingress default")
    t = emu.trace("203.0.113.1", b.NODE_IP, 6, 30080)
    assert t.masquerade is True and len(t.candidates) == 2
    remote = [e for e in emu.documents("Endpoint") if e.get("Flags") == 1]
    assert [e["Name"] for e in remote] == [f"{b.INSTANCE}-remote-10.244.1.7"]
    dump = backend.dump()
    assert len(dump["load_balancers"]) == 2 and server in dump["endpoint_acls"]
    assert backend.warnings() == ()
    assert emu.open_handles == 0


def test_restart_adopts_what_exists(emu: Any) -> None:
    ir = web_ir(b.backend("10.244.0.5"), b.backend("10.244.1.7", local=False))
    first = make(emu)
    first.start()
    first.apply(IRDelta(ir, full=True))
    before = state(emu)
    first.close()
    recorder = b.RecordingTransport(emu)
    second = make(emu, recorder)
    second.start()
    second.apply(IRDelta(ir, full=True))
    assert state(emu) == before
    assert {k: v for k, v in recorder.calls.items() if k[0] in ("create", "delete", "modify")} == {}


def test_orphans_are_removed_and_foreign_objects_kept(emu: Any) -> None:
    first = make(emu)
    first.start()
    first.apply(
        IRDelta(web_ir(b.backend("10.244.0.5"), b.backend("10.244.1.7", local=False)), full=True)
    )
    server = next(e["ID"] for e in emu.documents("Endpoint") if e["Name"] == "server")
    foreign = {
        "HostComputeEndpoints": [server],
        "FrontendVIPs": ["10.96.0.99"],
        "PortMappings": [{"Protocol": 17, "InternalPort": 53, "ExternalPort": 53}],
        "SchemaVersion": {"Major": 2, "Minor": 0},
    }
    HcnClient(emu).create("LoadBalancer", uuid.UUID(int=0), foreign)
    second = make(emu)  # a restart that no longer wants the services or the policy
    second.start()
    second.apply(IRDelta(b.dataplane_ir(), full=True))
    lbs = emu.documents("LoadBalancer")
    assert [lb["FrontendVIPs"] for lb in lbs] == [["10.96.0.99"]]
    assert not any(is_owned(b.INSTANCE, e["ID"]) for e in emu.documents("Endpoint"))
    assert all(not e.get("Policies") for e in emu.documents("Endpoint"))
    second.cleanup()
    second.cleanup()
    assert len(emu.documents("LoadBalancer")) == 1


def test_endpoint_churn_costs_one_delete_and_one_create_per_change(emu: Any) -> None:
    for i in range(10):
        emu.add_endpoint(f"10.244.0.{100 + i}", f"pod-{i}")
    recorder = b.RecordingTransport(emu)
    backend = make(emu, recorder)
    backend.start()

    def ir_with(n: int) -> Any:
        backends = [b.backend(f"10.244.0.{100 + i}") for i in range(n)]
        return b.dataplane_ir([b.frontend("10.96.0.10", 80, b.route(*backends))])

    backend.apply(IRDelta(ir_with(5), full=True))
    recorder.calls.clear()
    sizes = [5 + (1 if step % 2 == 0 else 0) for step in range(1000)]  # 6,5,6,5,...
    for n in sizes:
        backend.apply(IRDelta(ir_with(n)))
    assert recorder.calls[("delete", "LoadBalancer")] == 1000
    assert recorder.calls[("create", "LoadBalancer")] == 1000
    assert recorder.calls[("enumerate", "LoadBalancer")] == 0  # no re-listing between changes
    assert recorder.calls[("modify", "Endpoint")] == 0


def test_in_place_modify_when_the_host_supports_it() -> None:
    emu = b.emulator(lb_modify=True)
    emu.add_endpoint("10.244.0.5", "a")
    emu.add_endpoint("10.244.0.6", "b")
    recorder = b.RecordingTransport(emu)
    backend = make(emu, recorder, hns_lb_modify_in_place=True)
    backend.start()
    backend.apply(
        IRDelta(
            b.dataplane_ir([b.frontend("10.96.0.10", 80, b.route(b.backend("10.244.0.5")))]),
            full=True,
        )
    )
    guid = emu.documents("LoadBalancer")[0]["ID"]
    backend.apply(
        IRDelta(
            b.dataplane_ir(
                [
                    b.frontend(
                        "10.96.0.10", 80, b.route(b.backend("10.244.0.5"), b.backend("10.244.0.6"))
                    )
                ]
            )
        )
    )
    assert recorder.calls[("modify", "LoadBalancer")] == 1
    assert recorder.calls[("delete", "LoadBalancer")] == 0
    assert [lb["ID"] for lb in emu.documents("LoadBalancer")] == [guid]


def test_policy_change_touches_only_the_changed_acls(emu: Any) -> None:
    recorder = b.RecordingTransport(emu)
    backend = make(emu, recorder)
    backend.start()
    backend.apply(IRDelta(web_ir(b.backend("10.244.0.5")), full=True))
    recorder.calls.clear()
    backend.apply(IRDelta(web_ir(b.backend("10.244.0.5"), policy=False)))
    assert recorder.calls[("modify", "Endpoint")] == 2  # one Add, one Remove, server only
    assert recorder.calls[("create", "LoadBalancer")] == 0


def seeded_emulator() -> Any:
    emu = b.emulator()
    emu.add_endpoint("10.244.0.5", "server")
    emu.add_endpoint("10.244.0.6", "client")
    return emu


def shape(emu: Any) -> Any:
    """Installed state by endpoint name (endpoint GUIDs differ between emulators)."""
    names = {e["ID"]: e["Name"] for e in emu.documents("Endpoint")}
    lbs = sorted(
        (tuple(lb["FrontendVIPs"]), tuple(sorted(names[i] for i in lb["HostComputeEndpoints"])))
        for lb in emu.documents("LoadBalancer")
    )
    policies = sorted(
        (e["Name"], sorted(json.dumps(p, sort_keys=True) for p in e.get("Policies") or []))
        for e in emu.documents("Endpoint")
    )
    return lbs, policies


@pytest.mark.parametrize("after", [False, True], ids=["before-call", "reply-lost"])
def test_a_fault_at_any_call_then_a_full_apply_converges(after: bool) -> None:
    """Each call of start + apply + incremental apply fails once; one full apply repairs it."""
    initial = web_ir(b.backend("10.244.0.5"), policy=False)
    target = web_ir(b.backend("10.244.0.5"), b.backend("10.244.1.7", local=False))

    def run(transport: Any, emu: Any) -> None:
        backend = make(emu, transport)
        backend.start()
        backend.apply(IRDelta(initial, full=True))
        backend.apply(IRDelta(target))

    clean = seeded_emulator()
    counter = b.RecordingTransport(clean)
    run(counter, clean)
    expected = shape(clean)
    total = sum(counter.calls.values())
    failures = 0
    for fail_at in range(1, total + 1):
        emu = seeded_emulator()
        faulty = b.FaultyTransport(emu, fail_at, after)
        try:
            run(faulty, emu)
        except TransientBackendError:
            failures += 1
        backend = make(emu, faulty)  # the engine's retry: a full apply
        backend.start()
        backend.apply(IRDelta(target, full=True))
        assert shape(emu) == expected, f"fault at call {fail_at}"
    assert failures == total > 20

"""The engine's promises: validation first, nothing half-applied, failures retried."""

from __future__ import annotations

import time

import pytest

from dataplane import Dataplane, DataplaneConfig, DesiredState, Packet, Verdict
from dataplane.backends.fake import FakeBackend
from dataplane.errors import BackendError, ConfigError, UnknownBackendError, ValidationError
from dataplane.model import (
    Endpoint,
    EndpointPort,
    EndpointSet,
    Node,
    Policy,
    Service,
    ServicePort,
)

NODE = Node("n1", ["10.99.0.11"], ["10.100.0.0/24"])
SVC = Service("default", "web", [ServicePort(80, target_port=8080)], cluster_ips=["10.96.0.10"])
EPS = EndpointSet("default", "web", [EndpointPort(8080)], [Endpoint(["10.100.0.5"], node="n1")])


def _dp(**cfg: object) -> tuple[Dataplane, FakeBackend]:
    config = DataplaneConfig(backend="fake", node_name="n1", **cfg)  # type: ignore[arg-type]
    dp = Dataplane(config).start()
    backend = dp.backend
    assert isinstance(backend, FakeBackend)
    return dp, backend


def _to_vip() -> Packet:
    return Packet(src="10.100.0.9", dst="10.96.0.10", dst_port=80)


def test_apply_then_trace() -> None:
    dp, fake = _dp(resync_period=0)
    dp.apply([NODE, SVC, EPS])
    result = fake.trace(_to_vip())
    assert result.verdict is Verdict.ALLOW
    assert [str(a) for a, _ in result.dnat] == ["10.100.0.5"]
    assert dp.status().in_sync


def test_transaction_commits_one_delta() -> None:
    dp, fake = _dp(resync_period=0)
    dp.apply([NODE])
    with dp.transaction() as tx:
        tx.upsert(SVC)
        tx.upsert(EPS)
    assert len(fake.deltas) == 2
    assert {f.service for f in fake.deltas[-1].frontends_upserted} == {"default/web"}
    with dp.transaction() as tx:
        tx.delete(SVC.key)
    assert fake.deltas[-1].frontends_removed


def test_transaction_with_bad_reference_changes_nothing() -> None:
    dp, fake = _dp(resync_period=0)
    dp.apply([NODE, SVC, EPS])
    before = len(fake.deltas)
    with pytest.raises(ValidationError) as info, dp.transaction() as tx:
        tx.delete(EPS.key)
        tx.upsert(Policy("p", "default", tier="missing"))
    assert info.value.field == "tier"
    assert len(fake.deltas) == before
    assert dp.state.get(EPS.key) == EPS


def test_exception_inside_transaction_discards_it() -> None:
    dp, _ = _dp(resync_period=0)
    dp.apply([NODE])
    with pytest.raises(RuntimeError), dp.transaction() as tx:
        tx.upsert(SVC)
        raise RuntimeError("agent bug")
    assert dp.state.get(SVC.key) is None


def test_failed_apply_is_reported_and_retried_in_full() -> None:
    dp, fake = _dp(resync_period=30, retry_initial=0.5, retry_max=1.0)
    try:
        dp.apply([NODE])
        fake.fail_next(2)
        with pytest.raises(BackendError):
            dp.apply([NODE, SVC, EPS])
        status = dp.status()
        assert not status.in_sync and status.last_error
        deadline = time.monotonic() + 5
        while not dp.status().in_sync and time.monotonic() < deadline:
            time.sleep(0.01)
        assert dp.status().in_sync
        assert fake.deltas[-1].full
        assert fake.trace(_to_vip()).verdict is Verdict.ALLOW
    finally:
        dp.close()


def test_apply_is_idempotent() -> None:
    dp, fake = _dp(resync_period=0)
    dp.apply([NODE, SVC, EPS])
    n = len(fake.deltas)
    dp.apply(DesiredState([NODE, SVC, EPS]))
    assert len(fake.deltas) == n


def test_unknown_backend_lists_known() -> None:
    with pytest.raises(UnknownBackendError, match="fake"):
        Dataplane(DataplaneConfig(backend="nope", node_name="n1")).start()


def test_apply_before_start_is_an_error() -> None:
    dp = Dataplane(DataplaneConfig(backend="fake", node_name="n1"))
    with pytest.raises(ConfigError):
        dp.apply([NODE])


def test_config_from_env_and_toml(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "dp.toml"
    path.write_text('[dataplane]\nbackend = "fake"\nnode_name = "from-file"\n')
    cfg = DataplaneConfig.from_env(
        {"DATAPLANE_CONFIG": str(path), "DATAPLANE_NODE_NAME": "from-env"}, netns="x"
    )
    assert (cfg.backend, cfg.node_name, cfg.netns) == ("fake", "from-env", "x")
    with pytest.raises(ConfigError, match="unknown configuration keys"):
        DataplaneConfig.from_mapping({"bogus": 1})

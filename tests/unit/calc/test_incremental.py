"""Incremental compile == from-scratch compile, whatever order changes arrive in
(Felix's calc-graph rule: reversed, split, squashed and duplicated orders)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dataplane.calc import Compiler
from dataplane.calc.ir import DataplaneIR
from dataplane.model import (
    DesiredState,
    Endpoint,
    EndpointPort,
    EndpointSet,
    EntityMatch,
    Namespace,
    Node,
    Policy,
    Profile,
    Rule,
    Service,
    ServicePort,
    StateObject,
    WorkloadEndpoint,
)

NODES = [
    Node("n1", ["10.99.0.11"], ["10.100.0.0/24"]),
    Node("n2", ["10.99.0.12"], ["10.100.1.0/24"]),
]
APPS = ["web", "cli", "db"]


def _pod(i: int, app: str, node: str) -> WorkloadEndpoint:
    return WorkloadEndpoint(
        "default",
        f"p{i}",
        node,
        f"dpw{i:011x}",
        [f"10.100.{0 if node == 'n1' else 1}.{i + 2}"],
        labels={"app": app},
        profiles=["kns.default"],
    )


def _svc(i: int, pods: list[int], etp: str) -> list[StateObject]:
    eps = [Endpoint([f"10.100.{p % 2}.{p + 2}"], node=f"n{p % 2 + 1}") for p in pods]
    return [
        Service(
            "default",
            f"s{i}",
            [ServicePort(80, node_port=30000 + i)],
            type="NodePort",
            cluster_ips=[f"10.96.0.{i + 1}"],
            external_traffic_policy=etp,
        ),
        EndpointSet("default", f"s{i}", [EndpointPort(80)], eps),
    ]


def _policy(i: int, app: str, src: str) -> Policy:
    return Policy(
        f"pol{i}",
        "default",
        selector=f'app == "{app}"',
        ingress=[Rule("Allow", source=EntityMatch(selector=f'app == "{src}"'))],
    )


# A small pool of objects whose keys collide often (so later steps replace or
# delete earlier ones) and whose labels and selectors interact: drawing steps
# from it reaches interesting states far more often than unconstrained builds.
POOL: list[StateObject] = [
    *(_pod(i, app, node) for i in range(4) for app in APPS for node in ("n1", "n2")),
    *(_svc(i, [], etp)[0] for i in range(2) for etp in ("Cluster", "Local")),
    *(_svc(i, pods, "Cluster")[1] for i in range(2) for pods in ([], [0, 1], [2, 3, 1])),
    *(_policy(i, app, src) for i in range(2) for app in APPS for src in APPS),
    Namespace("default", {"team": "a"}),
    Namespace("default", {"team": "b"}),
]
objects = st.sampled_from(POOL)


def _comparable(ir: DataplaneIR) -> tuple[object, ...]:
    return (
        ir.settings,
        dict(ir.frontends),
        dict(ir.health_checks),
        dict(ir.ip_sets),
        dict(ir.workloads),
        dict(ir.hosts),
        dict(ir.remote_nodes),
    )


BASE: list[StateObject] = [*NODES, Profile("kns.default", [Rule("Allow")], [Rule("Allow")])]


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(st.tuples(st.booleans(), objects), min_size=1, max_size=25))
def test_incremental_equals_full(steps: list[tuple[bool, StateObject]]) -> None:
    compiler = Compiler("n1", preserve_source=False)
    state = DesiredState(BASE)
    compiler.compile(state)
    for delete, obj in steps:
        state = state.changed(deletes=[obj.key]) if delete else state.changed([obj])
        compiler.update(state, [obj.key])
    fresh = Compiler("n1", preserve_source=False)
    fresh.compile(state)
    assert _comparable(compiler.ir) == _comparable(fresh.ir)


@settings(max_examples=50, deadline=None)
@given(objs=st.lists(objects, min_size=1, max_size=15))
def test_order_does_not_matter(objs: list[StateObject]) -> None:
    by_key = {o.key: o for o in objs}
    forward = Compiler("n1", preserve_source=True)
    state = DesiredState(BASE)
    forward.compile(state)
    for obj in by_key.values():
        state = state.changed([obj])
        forward.update(state, [obj.key])
    backward = Compiler("n1", preserve_source=True)
    state2 = DesiredState(BASE)
    backward.compile(state2)
    squashed = state2.changed(list(reversed(list(by_key.values()))))
    backward.update(squashed, list(by_key))
    assert _comparable(forward.ir) == _comparable(backward.ir)

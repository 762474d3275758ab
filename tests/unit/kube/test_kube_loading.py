"""Getting objects in: manifests, List kinds, client models, unknown kinds, DesiredState."""

from __future__ import annotations

import datetime
import logging
from pathlib import Path
from typing import Any

import pytest

from dataplane import kube
from dataplane.errors import ManifestError
from dataplane.model import DesiredState, EndpointSet, Service, WorkloadEndpoint

SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "namespace": "shop", "labels": {"app_name": "web"}},
    "spec": {
        "type": "NodePort",
        "clusterIP": "10.96.0.10",
        "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080}],
    },
}


def test_load_text_file_and_directory(tmp_path: Path) -> None:
    text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n---\n"
    (tmp_path / "b.yaml").write_text(text.replace("name: a", "name: b"))
    (tmp_path / "a.yml").write_text(text)
    (tmp_path / "notes.txt").write_text("not a manifest")
    names = [d["metadata"]["name"] for d in kube.load_manifests(tmp_path)]
    assert names == ["a", "b"]
    assert kube.load_manifests(str(tmp_path / "b.yaml"))[0]["metadata"]["name"] == "b"
    assert len(kube.load_manifests([text, tmp_path / "a.yml"])) == 2


def test_list_kinds_are_flattened() -> None:
    docs = kube.load_manifests("""
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: a}}
- apiVersion: v1
  kind: ServiceList
  items: [{metadata: {name: s}, spec: {ports: [{port: 80}]}}]
""")
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("Namespace", "a"),
        ("Service", "s"),
    ]
    assert docs[1]["apiVersion"] == "v1"


def test_bad_yaml_and_non_objects_are_manifest_errors() -> None:
    with pytest.raises(ManifestError, match="not valid YAML"):
        kube.load_manifests("kind: [unclosed\n")
    with pytest.raises(ManifestError, match="document 2"):
        kube.load_manifests("kind: Namespace\n---\n- a list\n")


def test_unknown_kinds_and_versions_are_reported() -> None:
    result = kube.convert(
        [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "d", "namespace": "x"},
            },
            {
                "apiVersion": "discovery.k8s.io/v1beta1",
                "kind": "EndpointSlice",
                "metadata": {"name": "old"},
            },
            SERVICE,
        ]
    )
    assert [type(o) for o in result.objects] == [Service]
    assert result.unknown == (
        kube.UnknownObject("apps/v1", "Deployment", "x/d"),
        kube.UnknownObject("discovery.k8s.io/v1beta1", "EndpointSlice", "old"),
    )


def test_to_desired_state_logs_what_it_leaves_out(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dataplane.kube")
    docs = [
        SERVICE,
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}},
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {},
            "status": {"phase": "Pending"},
        },
    ]
    state = kube.to_desired_state(docs, node_name="node-a")
    assert isinstance(state, DesiredState) and state.counts() == {"Service": 1}
    assert "Deployment" in caplog.text and "Pod p" in caplog.text


def test_a_single_object_is_accepted() -> None:
    assert len(kube.convert(SERVICE).objects) == 1


# ---------------------------------------------------------------- kubernetes client models


class FakeModel:
    """Shaped like a ``kubernetes`` client model: snake_case attributes, an
    ``attribute_map`` to the API's names and a ``to_dict()`` in snake case."""

    def __init__(self, attribute_map: dict[str, str], **values: Any) -> None:
        self.attribute_map = attribute_map
        for attr in attribute_map:
            setattr(self, attr, values.get(attr))

    def to_dict(self) -> dict[str, Any]:
        def plain(v: Any) -> Any:
            if isinstance(v, FakeModel):
                return v.to_dict()
            return [plain(x) for x in v] if isinstance(v, list) else v

        return {a: plain(getattr(self, a)) for a in self.attribute_map}


def model(**values: Any) -> FakeModel:
    """A FakeModel whose API names are the camel case of its snake_case arguments."""

    def camel(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join({"ip": "IP", "ips": "IPs"}.get(p, p.title()) for p in rest)

    return FakeModel({k: camel(k) for k in values}, **values)


class V1Service(FakeModel):
    pass


def client_service() -> FakeModel:
    meta = model(
        name="web",
        namespace="shop",
        labels={"app_name": "web"},
        creation_timestamp=datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
    )
    port = model(name="http", port=80, target_port="http", node_port=30080, protocol=None)
    spec = model(type="NodePort", cluster_ip="10.96.0.10", ports=[port], external_ips=None)
    service = V1Service(
        {
            "api_version": "apiVersion",
            "kind": "kind",
            "metadata": "metadata",
            "spec": "spec",
            "status": "status",
        },
        metadata=meta,
        spec=spec,
    )
    return service


def test_client_models_convert_like_dicts() -> None:
    service = client_service()
    assert "cluster_ip" in service.to_dict()["spec"]  # the client's own dict is snake case
    from_client = kube.convert([service]).objects
    assert from_client == kube.convert([SERVICE]).objects
    (svc,) = from_client
    assert isinstance(svc, Service) and svc.ports[0].node_port == 30080


def test_client_list_items_get_their_kind_from_the_class() -> None:
    # List responses leave kind and apiVersion out of their items.
    pod_meta = model(name="p", namespace="shop", labels=None)
    pod = type("V1Pod", (FakeModel,), {})(
        {
            "api_version": "apiVersion",
            "kind": "kind",
            "metadata": "metadata",
            "spec": "spec",
            "status": "status",
        },
        metadata=pod_meta,
        spec=model(node_name="node-a"),
        status=model(phase="Running", pod_ips=[model(ip="10.0.0.1")]),
    )
    pod_list = FakeModel(
        {"api_version": "apiVersion", "kind": "kind", "items": "items"},
        api_version="v1",
        kind="PodList",
        items=[pod],
    )
    slice_ = type("V1EndpointSlice", (FakeModel,), {})(
        {
            "api_version": "apiVersion",
            "kind": "kind",
            "metadata": "metadata",
            "address_type": "addressType",
            "endpoints": "endpoints",
            "ports": "ports",
        },
        metadata=model(name="s", namespace="shop", labels={"kubernetes.io/service-name": "web"}),
        address_type="IPv4",
        endpoints=[model(addresses=["10.0.0.1"])],
        ports=[model(port=80)],
    )
    objects = kube.convert([pod_list, slice_]).objects
    assert [type(o) for o in objects] == [WorkloadEndpoint, EndpointSet]


def test_a_whole_cluster_becomes_one_desired_state() -> None:
    docs = kube.load_manifests("""
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: shop, labels: {app: web}}
spec: {nodeName: node-a}
status: {phase: Running, podIP: 10.0.0.5}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: shop}
spec: {podSelector: {matchLabels: {app: web}}, ingress: [{}]}
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.block}
spec: {tier: security, ingress: [{action: Pass}]}
---
apiVersion: dataplane.io/v1alpha1
kind: DataplaneConfiguration
metadata: {name: default}
spec: {externalServiceMode: dsr}
""")
    state = kube.to_desired_state([*docs, SERVICE], node_name="node-a")
    assert state.counts() == {
        "Namespace": 1,
        "NodeSettings": 1,
        "Policy": 2,
        "Profile": 1,
        "Service": 1,
        "Tier": 1,
        "WorkloadEndpoint": 1,
    }
    assert state.settings.external_service_mode == "dsr"

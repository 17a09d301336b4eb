"""The official `kubernetes` Python client against kubelite. It validates every reply
against its models, so these tests also check that our objects have the shapes it expects."""

from __future__ import annotations

import asyncio
import threading

import pytest

kubernetes = pytest.importorskip("kubernetes", reason="the official client is a dev dependency")
from kubernetes import client as k8s  # noqa: E402
from kubernetes import watch as k8s_watch  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402


@pytest.fixture
def apis(apiserver):
    config = k8s.Configuration()
    config.host = apiserver.url
    api_client = k8s.ApiClient(config)
    yield k8s.CoreV1Api(api_client), k8s.AppsV1Api(api_client)
    api_client.close()


def _deployment(name: str, replicas: int = 2) -> k8s.V1Deployment:
    labels = {"app": name}
    return k8s.V1Deployment(
        metadata=k8s.V1ObjectMeta(name=name, labels=labels),
        spec=k8s.V1DeploymentSpec(
            replicas=replicas,
            selector=k8s.V1LabelSelector(match_labels=labels),
            template=k8s.V1PodTemplateSpec(
                metadata=k8s.V1ObjectMeta(labels=labels),
                spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="web", image="busybox:1.36",
                                                               ports=[k8s.V1ContainerPort(container_port=80)])]))))


async def test_create_list_by_label_patch_scale_delete(apis):
    core, apps = apis

    def scenario() -> None:
        created = apps.create_namespaced_deployment("default", _deployment("web"))
        assert created.metadata.uid and created.metadata.generation == 1
        assert created.spec.strategy.rolling_update.max_surge == "25%"  # defaulted
        apps.create_namespaced_deployment("default", _deployment("db"))
        listed = apps.list_namespaced_deployment("default", label_selector="app=web")
        assert [d.metadata.name for d in listed.items] == ["web"]

        patched = apps.patch_namespaced_deployment("web", "default", {"metadata": {"labels": {"tier": "fe"}}})
        assert patched.metadata.labels == {"app": "web", "tier": "fe"}
        scale = apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 4}})
        assert scale.spec.replicas == 4
        assert apps.read_namespaced_deployment("web", "default").spec.replicas == 4

        pod = k8s.V1Pod(metadata=k8s.V1ObjectMeta(name="p"),
                        spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="c", image="busybox")]))
        core.create_namespaced_pod("default", pod)
        deleted = core.delete_namespaced_pod("p", "default")
        assert isinstance(deleted, k8s.V1Pod) and deleted.metadata.name == "p"
        apps.delete_namespaced_deployment("db", "default")
        with pytest.raises(ApiException) as err:
            apps.read_namespaced_deployment("db", "default")
        assert err.value.status == 404

    await asyncio.to_thread(scenario)


async def test_replace_with_stale_resource_version_is_409(apis):
    _, apps = apis

    def scenario() -> None:
        created = apps.create_namespaced_deployment("default", _deployment("web"))
        created.spec.replicas = 3
        apps.replace_namespaced_deployment("web", "default", created)  # created carries the old rv
        created.spec.replicas = 5
        with pytest.raises(ApiException) as err:
            apps.replace_namespaced_deployment("web", "default", created)
        assert err.value.status == 409
        assert apps.read_namespaced_deployment("web", "default").spec.replicas == 3

    await asyncio.to_thread(scenario)


async def test_invalid_object_is_422(apis):
    core, _ = apis

    def scenario() -> None:
        pod = k8s.V1Pod(metadata=k8s.V1ObjectMeta(name="Bad"),
                        spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="c", image="busybox")]))
        with pytest.raises(ApiException) as err:
            core.create_namespaced_pod("default", pod)
        assert err.value.status == 422 and "metadata.name" in err.value.body

    await asyncio.to_thread(scenario)


async def test_watch_sees_changes(apis):
    core, _ = apis
    seen: list[tuple[str, str]] = []
    ready = threading.Event()

    def watch() -> None:
        w = k8s_watch.Watch()
        rv = core.list_namespaced_pod("default").metadata.resource_version
        ready.set()
        for event in w.stream(core.list_namespaced_pod, "default", resource_version=rv, timeout_seconds=10):
            seen.append((event["type"], event["object"].metadata.name))
            if len(seen) == 3:
                w.stop()

    def changes() -> None:
        ready.wait(10)
        pod = k8s.V1Pod(metadata=k8s.V1ObjectMeta(name="w"),
                        spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="c", image="busybox")]))
        core.create_namespaced_pod("default", pod)
        core.patch_namespaced_pod("w", "default", {"metadata": {"labels": {"a": "b"}}})
        core.delete_namespaced_pod("w", "default")

    await asyncio.gather(asyncio.to_thread(watch), asyncio.to_thread(changes))
    assert seen == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


async def test_nodes_leases_events_round_trip(apis, apiserver):
    core, _ = apis

    def scenario() -> None:
        node = k8s.V1Node(metadata=k8s.V1ObjectMeta(name="n1"),
                          status=k8s.V1NodeStatus(capacity={"cpu": "2", "memory": "4Gi"}))
        created = core.create_node(node)
        assert created.status.capacity["cpu"] == "2"
        coord = k8s.CoordinationV1Api(core.api_client)
        import datetime

        lease = k8s.V1Lease(metadata=k8s.V1ObjectMeta(name="n1"),
                            spec=k8s.V1LeaseSpec(holder_identity="n1", lease_duration_seconds=40,
                                                 renew_time=datetime.datetime.now(datetime.UTC)))
        made = coord.create_namespaced_lease("kube-node-lease", lease)
        assert made.spec.renew_time is not None
        event = k8s.CoreV1Event(metadata=k8s.V1ObjectMeta(name="n1.1"), reason="Test", message="hello",
                                involved_object=k8s.V1ObjectReference(kind="Node", name="n1"), type="Normal")
        core.create_namespaced_event("default", event)
        events = core.list_namespaced_event("default", field_selector="involvedObject.name=n1")
        assert [e.message for e in events.items] == ["hello"]

    await asyncio.to_thread(scenario)

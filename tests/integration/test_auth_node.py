"""A node identity over https: it writes its own Node, Lease and the pods bound to it, and
nothing of another node's (the pod's binding is read from storage, not from the request)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from api import errors
from api.client import Client
from apiserver.auth.pki import ADMIN, node_identity
from tests.support.secure import SecureApiServer


def node(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}


def pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def lease(name: str) -> dict[str, Any]:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40}}


PODS = "/api/v1/namespaces/default/pods"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
STATUS = {"status": {"phase": "Running"}}
MERGE = "application/merge-patch+json"


async def forbidden(call: Any) -> str:
    with pytest.raises(errors.Forbidden) as info:
        await call
    return info.value.message


async def test_a_node_writes_only_its_own_objects(secure: SecureApiServer) -> None:
    async with Client(secure.url, ssl=secure.ssl_for(ADMIN)) as admin, \
            Client(secure.url, ssl=secure.ssl_for(node_identity("n1"))) as n1, \
            Client(secure.url, ssl=secure.ssl_for(node_identity("n2"))) as n2:
        # registration: its own Node only
        await n1.request("POST", "/api/v1/nodes", json=node("n1"))
        msg = await forbidden(n1.request("POST", "/api/v1/nodes", json=node("n2")))
        assert msg.startswith('nodes is forbidden: User "system:node:n1" cannot create resource "nodes" '
                              'in API group "" at the cluster scope')
        await n2.request("POST", "/api/v1/nodes", json=node("n2"))
        await forbidden(n1.request("POST", "/api/v1/nodes", json={**node("n3"), "metadata": {"generateName": "n"}}))

        # status and metadata of its own Node; never another's
        await n1.request("PATCH", "/api/v1/nodes/n1/status", json=STATUS, content_type=MERGE)
        await n1.request("PATCH", "/api/v1/nodes/n1", json={"metadata": {"labels": {"a": "b"}}}, content_type=MERGE)
        msg = await forbidden(n1.request("PATCH", "/api/v1/nodes/n2/status", json=STATUS, content_type=MERGE))
        assert msg.startswith('nodes "n2" is forbidden: User "system:node:n1" cannot patch resource "nodes/status" '
                              'in API group "" at the cluster scope')
        n2_obj = await n1.request("GET", "/api/v1/nodes/n2")  # reading other nodes is fine
        await forbidden(n1.request("PUT", "/api/v1/nodes/n2", json=n2_obj))
        await forbidden(n1.request("PUT", "/api/v1/nodes/n2/status", json=n2_obj))
        await forbidden(n1.request("DELETE", "/api/v1/nodes/n2"))

        # its Lease in kube-node-lease, no other
        await n1.request("POST", LEASES, json=lease("n1"))
        await n1.request("PATCH", f"{LEASES}/n1", json={"spec": {"leaseDurationSeconds": 30}}, content_type=MERGE)
        await forbidden(n1.request("POST", LEASES, json=lease("n2")))
        await n2.request("POST", LEASES, json=lease("n2"))
        await forbidden(n1.request("PATCH", f"{LEASES}/n2", json={"spec": {}}, content_type=MERGE))
        await forbidden(n1.request("DELETE", f"{LEASES}/n2"))
        await forbidden(n1.request("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases",
                                   json=lease("n1")))

        # pods: status and deletion of its own, by the stored spec.nodeName
        for name, where in (("on-n1", "n1"), ("on-n2", "n2"), ("unbound", None)):
            await admin.request("POST", PODS, json=pod(name))
            if where:
                await admin.request("POST", f"{PODS}/{name}/binding",
                                    json={"metadata": {"name": name}, "target": {"kind": "Node", "name": where}})
        listed = await n1.request("GET", PODS, params={"fieldSelector": "spec.nodeName=n1"})
        assert [p["metadata"]["name"] for p in listed["items"]] == ["on-n1"]
        await n1.request("PATCH", f"{PODS}/on-n1/status", json=STATUS, content_type=MERGE)
        for verb, path in (("PATCH", f"{PODS}/missing/status"), ("DELETE", f"{PODS}/missing")):
            with pytest.raises(errors.NotFound):  # as a kubelet finishing a pod expects
                await n1.request(verb, path, json=STATUS, content_type=MERGE)
        for name in ("on-n2", "unbound"):
            msg = await forbidden(n1.request("PATCH", f"{PODS}/{name}/status", json=STATUS, content_type=MERGE))
            assert msg.startswith(f'pods "{name}" is forbidden: User "system:node:n1" cannot patch resource '
                                  '"pods/status" in API group "" in the namespace "default"')
            msg = await forbidden(n1.request("DELETE", f"{PODS}/{name}"))
            assert msg.startswith(f'pods "{name}" is forbidden: User "system:node:n1" cannot delete resource "pods" '
                                  'in API group "" in the namespace "default"')
        on_n2 = await n1.request("GET", f"{PODS}/on-n2")
        on_n2["spec"]["nodeName"] = "n1"  # a body cannot claim the pod
        await forbidden(n1.request("PUT", f"{PODS}/on-n2/status", json=on_n2))
        await forbidden(n1.request("PUT", f"{PODS}/on-n1", json=await n1.request("GET", f"{PODS}/on-n1")))
        await forbidden(n1.request("DELETE", PODS))  # deletecollection
        await forbidden(n1.request("POST", PODS, json=pod("mine")))
        await forbidden(n1.request("POST", f"{PODS}/unbound/binding",
                                   json={"metadata": {"name": "unbound"}, "target": {"kind": "Node", "name": "n1"}}))
        await n1.request("DELETE", f"{PODS}/on-n1", json={"gracePeriodSeconds": 0})
        assert (await admin.request("GET", f"{PODS}/on-n2"))["spec"]["nodeName"] == "n2"

        # events: yes; workloads: no
        await n1.request("POST", "/api/v1/namespaces/default/events", json={
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"}, "reason": "Started",
            "involvedObject": {"kind": "Node", "name": "n1"}, "type": "Normal", "message": "hi"})
        await forbidden(n1.request("GET", "/apis/apps/v1/namespaces/default/deployments"))


async def test_a_node_reads_only_the_configmaps_and_secrets_its_pods_name(secure: SecureApiServer) -> None:
    secrets, configmaps = "/api/v1/namespaces/default/secrets", "/api/v1/namespaces/default/configmaps"
    async with Client(secure.url, ssl=secure.ssl_for(ADMIN)) as admin, \
            Client(secure.url, ssl=secure.ssl_for(node_identity("n1"))) as n1, \
            Client(secure.url, ssl=secure.ssl_for(node_identity("n2"))) as n2:
        for name in ("db", "other"):
            await admin.request("POST", secrets, json={"metadata": {"name": name}, "stringData": {"k": "v"}})
        await admin.request("POST", configmaps, json={"metadata": {"name": "cfg"}, "data": {"k": "v"}})
        spec = pod("web")["spec"]
        spec["nodeName"] = "n1"
        spec["containers"][0]["env"] = [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "db", "key": "k"}}}]
        spec["volumes"] = [{"name": "v", "configMap": {"name": "cfg"}}]
        await admin.request("POST", PODS, json={**pod("web"), "spec": spec})

        assert (await n1.request("GET", f"{secrets}/db"))["data"] == {"k": "dg=="}
        await n1.request("GET", f"{configmaps}/cfg")
        listed = await n1.request("GET", secrets, params={"fieldSelector": "metadata.name=db"})
        assert [s["metadata"]["name"] for s in listed["items"]] == ["db"]
        msg = await forbidden(n1.request("GET", f"{secrets}/other"))
        assert msg == ('secrets "other" is forbidden: User "system:node:n1" cannot get resource "secrets" in API '
                       'group "" in the namespace "default": no relationship found between node \'n1\' and this '
                       'object')
        await forbidden(n1.request("GET", secrets))  # never a whole namespace's
        await forbidden(n1.request("GET", secrets, params={"fieldSelector": "metadata.name=other"}))
        await forbidden(n2.request("GET", f"{secrets}/db"))  # the pod is not bound to n2
        await forbidden(n1.request("PUT", f"{secrets}/db", json={"metadata": {"name": "db"}}))
        await admin.request("DELETE", f"{PODS}/web", params={"gracePeriodSeconds": "0"})
        for _ in range(50):  # no pod names it any more, once the server's cache has seen the delete
            try:
                await n1.request("GET", f"{secrets}/db")
            except errors.Forbidden:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("node n1 still reads secret db after its pod is gone")

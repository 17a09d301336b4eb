"""Patches, selectors, pagination and tables."""

from __future__ import annotations

import time

from apiserver.app import STORAGE
from tests.support.http import deployment, pod

PODS = "/api/v1/namespaces/default/pods"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"



async def test_strategic_merge_keeps_list_items_like_kubectl_apply(http):
    body = deployment("web")
    body["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    await http.post(DEPLOYS, body)
    patch = {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "web"}],
                                            "containers": [{"name": "web", "image": "busybox:1.37"}]}}}}
    code, patched = await http.patch(f"{DEPLOYS}/web", patch, kind="strategic")
    assert code == 200
    container = patched["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "busybox:1.37"
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert container["env"] == [{"name": "A", "value": "1"}]
    # The same body as a merge patch replaces the list: kubectl must not be treated so.
    merge = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "busybox:1.36"}]}}}}
    code, merged = await http.patch(f"{DEPLOYS}/web", merge)
    assert code == 200
    assert "ports" not in merged["spec"]["template"]["spec"]["containers"][0]


async def test_json_patch_and_merge_patch_null_deletes(http):
    await http.post(PODS, pod("web", labels={"a": "1", "b": "2"}))
    code, p = await http.patch(f"{PODS}/web", {"metadata": {"labels": {"a": None, "c": "3"}}})
    assert code == 200 and p["metadata"]["labels"] == {"b": "2", "c": "3"}
    code, p = await http.patch(f"{PODS}/web", [{"op": "add", "path": "/metadata/labels/d", "value": "4"},
                                               {"op": "remove", "path": "/metadata/labels/b"}], kind="json")
    assert code == 200 and p["metadata"]["labels"] == {"c": "3", "d": "4"}


async def test_patch_with_resource_version_is_conditional(http):
    _, created = await http.post(PODS, pod("web"))
    await http.patch(f"{PODS}/web", {"metadata": {"labels": {"x": "1"}}})
    code, status = await http.patch(f"{PODS}/web", {"metadata": {
        "resourceVersion": created["metadata"]["resourceVersion"], "labels": {"x": "2"}}})
    assert code == 409


async def test_label_and_field_selectors(http):
    await http.post("/api/v1/namespaces", {"metadata": {"name": "other"}})
    await http.post(PODS, pod("a", labels={"app": "web", "tier": "fe"}, node="n1"))
    await http.post(PODS, pod("b", labels={"app": "web", "tier": "be"}))
    await http.post(PODS, pod("c", labels={"app": "db"}))
    await http.post("/api/v1/namespaces/other/pods", pod("d", labels={"app": "web"}))

    async def names(path: str, **params: str) -> list[str]:
        code, listed = await http.get(path, params=params)
        assert code == 200, listed
        return [p["metadata"]["name"] for p in listed["items"]]

    assert await names(PODS, labelSelector="app=web") == ["a", "b"]
    assert await names(PODS, labelSelector="app in (web,db),tier!=fe") == ["b", "c"]
    assert await names(PODS, labelSelector="tier") == ["a", "b"]
    assert await names(PODS, labelSelector="!tier") == ["c"]
    assert await names("/api/v1/pods", labelSelector="app=web") == ["a", "b", "d"]
    assert await names("/api/v1/pods", fieldSelector="spec.nodeName=n1") == ["a"]
    assert await names("/api/v1/pods", fieldSelector="spec.nodeName=") == ["b", "c", "d"]
    assert await names("/api/v1/pods", fieldSelector="metadata.namespace=other") == ["d"]
    assert await names(PODS, fieldSelector="status.phase=Pending,metadata.name!=a") == ["b", "c"]


async def test_limit_and_continue_page_through_one_snapshot(http):
    for i in range(7):
        await http.post(PODS, pod(f"p{i}"))
    code, page = await http.get(PODS, params={"limit": "3"})
    assert [p["metadata"]["name"] for p in page["items"]] == ["p0", "p1", "p2"]
    token = page["metadata"]["continue"]
    snapshot_rv = page["metadata"]["resourceVersion"]
    # Writes between pages do not show up in later pages of the same list.
    await http.post(PODS, pod("p3a"))
    await http.delete(f"{PODS}/p5")
    seen = [p["metadata"]["name"] for p in page["items"]]
    while token:
        code, page = await http.get(PODS, params={"limit": "3", "continue": token})
        assert code == 200, page
        assert page["metadata"]["resourceVersion"] == snapshot_rv
        seen += [p["metadata"]["name"] for p in page["items"]]
        token = page["metadata"].get("continue")
    assert seen == [f"p{i}" for i in range(7)]


async def test_tables_for_kubectl_get(http):
    await http.post(PODS, pod("web", node="n1"))
    code, table = await http.get(PODS, headers={"Accept": TABLE})
    assert code == 200 and table["kind"] == "Table"
    columns = [c["name"] for c in table["columnDefinitions"]]
    assert columns[:5] == ["Name", "Ready", "Status", "Restarts", "Age"]
    row = table["rows"][0]
    assert row["cells"][:4] == ["web", "0/1", "Pending", 0]
    assert row["object"]["metadata"]["name"] == "web"


async def test_discovery_openapi_health_metrics(http):
    code, versions = await http.get("/api")
    assert versions["versions"] == ["v1"]
    code, groups = await http.get("/apis")
    assert {g["name"] for g in groups["groups"]} == {"apps", "coordination.k8s.io", "authentication.k8s.io",
                                                   "authorization.k8s.io", "discovery.k8s.io"}
    code, core = await http.get("/api/v1")
    pods = next(r for r in core["resources"] if r["name"] == "pods")
    assert pods["namespaced"] and "po" in pods["shortNames"]
    assert any(r["name"] == "pods/binding" for r in core["resources"])
    code, apps = await http.get("/apis/apps/v1")
    assert any(r["name"] == "deployments/scale" for r in apps["resources"])
    code, root = await http.get("/openapi/v3")
    assert "apis/apps/v1" in root["paths"]
    code, doc = await http.get("/openapi/v3/apis/apps/v1")
    op = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["post"]
    assert op["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    schema = doc["components"]["schemas"]["Deployment"]
    assert schema["x-kubernetes-group-version-kind"] == [{"group": "apps", "version": "v1", "kind": "Deployment"}]
    assert schema["properties"]["spec"] == {"$ref": "#/components/schemas/DeploymentSpec"}
    url = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
    assert (await http.get(url))[1] == doc  # the URL kubectl caches by names this document
    assert (await http.get("/healthz"))[0] == 200
    assert (await http.get("/readyz"))[0] == 200
    await http.get(PODS)
    await http.get(f"{PODS}/missing")
    code, text = await http.get("/metrics")
    assert 'apiserver_request_total{verb="LIST",resource="pods",code="200"} 1' in text
    assert 'apiserver_request_total{verb="GET",resource="pods",code="404"} 1' in text
    assert 'apiserver_request_duration_seconds_bucket{verb="LIST",resource="pods",le="+Inf"} 1' in text


async def test_unconditional_patches_retry_past_concurrent_writers(http):
    import asyncio

    await http.post(PODS, pod("busy"))

    async def label(i: int) -> int:
        code, _ = await http.patch(f"{PODS}/busy", {"metadata": {"labels": {f"k{i}": "v"}}})
        return code

    codes = await asyncio.gather(*(label(i) for i in range(12)))
    assert codes == [200] * 12
    _, final = await http.get(f"{PODS}/busy")
    assert len(final["metadata"]["labels"]) == 12


async def test_tables_can_include_whole_objects(http):
    await http.post(PODS, pod("web"))
    code, table = await http.get(PODS, params={"includeObject": "Object"}, headers={"Accept": TABLE})
    assert code == 200
    assert table["rows"][0]["object"]["kind"] == "Pod" and table["rows"][0]["object"]["spec"]["containers"]


async def test_consistent_list_answers_at_once_after_writes_outside_the_registry(http, apiserver):
    """An etcd shared with another user: its writes move etcd's revision but never reach
    the watch cache (it watches /registry/). A consistent LIST must not wait for events
    that will never come: the cache proves nothing of ours changed and answers, and its
    pages still form one snapshot."""
    await http.post(PODS, pod("a"))
    await http.post(PODS, pod("b"))
    foreign = await apiserver.app[STORAGE].create("/kltest-other-app/key", b"not kubelite's")
    started = time.monotonic()
    code, first = await http.get(PODS, params={"limit": "1"})
    assert code == 200, first
    assert time.monotonic() - started < 1.5  # not the 3 s wait for a revision that never comes
    assert int(first["metadata"]["resourceVersion"]) >= foreign
    await http.post(PODS, pod("c"))  # after the snapshot: not in its pages
    code, rest = await http.get(PODS, params={"limit": "1", "continue": first["metadata"]["continue"]})
    assert code == 200, rest
    assert [p["metadata"]["name"] for p in first["items"] + rest["items"]] == ["a", "b"]

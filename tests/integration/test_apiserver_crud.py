"""CRUD semantics of the API server against a real etcd: what a Kubernetes user relies on."""

from __future__ import annotations

import asyncio

from tests.support.http import deployment, pod

PODS = "/api/v1/namespaces/default/pods"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"



async def test_create_sets_server_fields_and_refuses_duplicates(http):
    code, created = await http.post(PODS, pod("web"))
    assert code == 201
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert int(meta["resourceVersion"]) > 0
    assert created["status"]["phase"] == "Pending"
    assert created["spec"]["restartPolicy"] == "Always"  # defaulted
    assert created["spec"]["containers"][0]["imagePullPolicy"] == "Always"  # untagged image

    code, status = await http.post(PODS, pod("web"))
    assert code == 409
    assert status["kind"] == "Status" and status["reason"] == "AlreadyExists"
    assert status["message"] == 'pods "web" already exists'

    code, got = await http.get(f"{PODS}/web")
    assert code == 200 and got["metadata"]["uid"] == meta["uid"]


async def test_generate_name(http):
    body = pod("x")
    body["metadata"] = {"generateName": "web-"}
    names = set()
    for _ in range(3):
        code, created = await http.post(PODS, body)
        assert code == 201
        names.add(created["metadata"]["name"])
    assert len(names) == 3
    assert all(n.startswith("web-") and len(n) == len("web-") + 5 for n in names)


async def test_missing_namespace_is_404_and_nothing_is_stored(http):
    code, status = await http.post("/api/v1/namespaces/nope/pods", pod("web"))
    assert code == 404
    assert status["message"] == 'namespaces "nope" not found'
    code, listed = await http.get("/api/v1/pods")
    assert listed["items"] == []


async def test_update_with_stale_resource_version_conflicts(http):
    _, created = await http.post(DEPLOYS, deployment("web"))
    stale = dict(created)
    created["spec"]["replicas"] = 3
    code, updated = await http.put(f"{DEPLOYS}/web", created)
    assert code == 200
    assert updated["metadata"]["generation"] == 2  # spec changed
    stale["spec"]["replicas"] = 5
    code, status = await http.put(f"{DEPLOYS}/web", stale)
    assert code == 409 and status["reason"] == "Conflict"
    assert "the object has been modified" in status["message"]
    _, now = await http.get(f"{DEPLOYS}/web")
    assert now["spec"]["replicas"] == 3


async def test_generation_bumps_on_spec_changes_only(http):
    _, created = await http.post(DEPLOYS, deployment("web"))
    assert created["metadata"]["generation"] == 1
    created["metadata"]["labels"] = {"tier": "frontend"}
    _, labelled = await http.put(f"{DEPLOYS}/web", created)
    assert labelled["metadata"]["generation"] == 1
    labelled["status"] = {"replicas": 2, "observedGeneration": 1}
    code, status_written = await http.put(f"{DEPLOYS}/web/status", labelled)
    assert code == 200
    assert status_written["status"]["replicas"] == 2
    assert status_written["metadata"]["generation"] == 1
    # The main resource ignores status; /status ignores spec.
    status_written["status"] = {"replicas": 99}
    status_written["spec"]["replicas"] = 4
    _, main = await http.put(f"{DEPLOYS}/web", status_written)
    assert main["status"]["replicas"] == 2 and main["spec"]["replicas"] == 4
    assert main["metadata"]["generation"] == 2
    main["spec"]["replicas"] = 7
    main["status"] = {"replicas": 3}
    _, via_status = await http.put(f"{DEPLOYS}/web/status", main)
    assert via_status["spec"]["replicas"] == 4 and via_status["status"]["replicas"] == 3


async def test_concurrent_writers_lose_no_update(http):
    """Many writers increment one counter with read-modify-write; losers get 409 and retry."""
    await http.post("/api/v1/namespaces/default/pods", pod("counter"))

    async def increment() -> int:
        conflicts = 0
        while True:
            _, current = await http.get(f"{PODS}/counter")
            annotations = current["metadata"].get("annotations") or {}
            annotations["count"] = str(int(annotations.get("count", "0")) + 1)
            current["metadata"]["annotations"] = annotations
            code, _ = await http.put(f"{PODS}/counter", current)
            if code == 200:
                return conflicts
            assert code == 409
            conflicts += 1

    conflicts = await asyncio.gather(*(increment() for _ in range(20)))
    _, final = await http.get(f"{PODS}/counter")
    assert final["metadata"]["annotations"]["count"] == "20"
    assert sum(conflicts) > 0  # they really raced


async def test_same_revision_writers_exactly_one_wins(http):
    _, created = await http.post(DEPLOYS, deployment("race"))

    async def write(replicas: int) -> int:
        body = {**created, "spec": {**created["spec"], "replicas": replicas}}
        code, _ = await http.put(f"{DEPLOYS}/race", body)
        return code

    codes = await asyncio.gather(*(write(n) for n in range(3, 13)))
    assert sorted(codes) == [200] + [409] * 9


async def test_delete_unbound_pod_goes_at_once_and_returns_the_object(http):
    await http.post(PODS, pod("web"))
    code, deleted = await http.delete(f"{PODS}/web")
    assert code == 200 and deleted["kind"] == "Pod"
    code, status = await http.get(f"{PODS}/web")
    assert code == 404 and status["reason"] == "NotFound"


async def test_bound_pod_is_deleted_gracefully(http):
    await http.post(PODS, pod("web", node="node-1", terminationGracePeriodSeconds=30))
    code, marked = await http.delete(f"{PODS}/web")
    assert code == 200
    assert marked["metadata"]["deletionTimestamp"]
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 30
    code, still = await http.get(f"{PODS}/web")
    assert code == 200  # the kubelet finishes it
    # The kubelet's final delete: grace 0 with a uid precondition.
    code, status = await http.delete(f"{PODS}/web", {"gracePeriodSeconds": 0,
                                                     "preconditions": {"uid": "wrong"}})
    assert code == 409
    code, _ = await http.delete(f"{PODS}/web", {"gracePeriodSeconds": 0,
                                                "preconditions": {"uid": still["metadata"]["uid"]}})
    assert code == 200
    assert (await http.get(f"{PODS}/web"))[0] == 404


async def test_finalizers_hold_deletion_until_removed(http):
    body = pod("held")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    await http.post(PODS, body)
    code, marked = await http.delete(f"{PODS}/held")
    assert code == 200 and marked["metadata"]["deletionTimestamp"]
    assert (await http.get(f"{PODS}/held"))[0] == 200
    code, _ = await http.patch(f"{PODS}/held", {"metadata": {"finalizers": None}})
    assert code == 200
    assert (await http.get(f"{PODS}/held"))[0] == 404


async def test_terminating_namespace_refuses_new_objects(http):
    await http.post("/api/v1/namespaces", {"metadata": {"name": "doomed"}})
    code, ns = await http.delete("/api/v1/namespaces/doomed")
    assert code == 200 and ns["status"]["phase"] == "Terminating"
    code, status = await http.post("/api/v1/namespaces/doomed/pods", pod("late"))
    assert code == 403 and "being terminated" in status["message"]
    # The namespace controller's last step: an empty finalizer list deletes it.
    code, _ = await http.put("/api/v1/namespaces/doomed/finalize", {"spec": {"finalizers": []}})
    assert code == 200
    assert (await http.get("/api/v1/namespaces/doomed"))[0] == 404


async def test_system_namespaces_exist(http):
    _, listed = await http.get("/api/v1/namespaces")
    names = {n["metadata"]["name"] for n in listed["items"]}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names


async def test_scale_subresource(http):
    await http.post(DEPLOYS, deployment("web", replicas=2))
    code, scale = await http.get(f"{DEPLOYS}/web/scale")
    assert code == 200 and scale["kind"] == "Scale" and scale["spec"]["replicas"] == 2
    assert scale["status"]["selector"] == "app=web"
    code, scale = await http.put(f"{DEPLOYS}/web/scale", {"spec": {"replicas": 5}})
    assert code == 200 and scale["spec"]["replicas"] == 5
    code, scale = await http.patch(f"{DEPLOYS}/web/scale", {"spec": {"replicas": 1}})
    assert code == 200
    _, d = await http.get(f"{DEPLOYS}/web")
    assert d["spec"]["replicas"] == 1
    code, status = await http.put(f"{DEPLOYS}/web/scale", {"spec": {"replicas": -1}})
    assert code == 422


async def test_binding_assigns_a_node_once(http):
    await http.post(PODS, pod("web"))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}}
    code, _ = await http.post(f"{PODS}/web/binding", binding)
    assert code == 201
    _, bound = await http.get(f"{PODS}/web")
    assert bound["spec"]["nodeName"] == "node-1"
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in bound["status"]["conditions"])
    code, status = await http.post(f"{PODS}/web/binding", {**binding, "target": {"name": "node-2"}})
    assert code == 409


async def test_binding_checks_the_uid_precondition(http):
    _, created = await http.post(PODS, pod("web"))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web", "uid": "not-the-uid"},
               "target": {"name": "node-1"}}
    code, status = await http.post(f"{PODS}/web/binding", binding)
    assert code == 409 and "Precondition failed" in status["message"]
    binding["metadata"]["uid"] = created["metadata"]["uid"]
    code, _ = await http.post(f"{PODS}/web/binding", binding)
    assert code == 201


async def test_pod_spec_is_mostly_immutable(http):
    _, created = await http.post(PODS, pod("web"))
    created["spec"]["containers"][0]["image"] = "busybox:1.37"
    code, _ = await http.put(f"{PODS}/web", created)
    assert code == 200
    _, current = await http.get(f"{PODS}/web")
    current["spec"]["containers"][0]["command"] = ["sleep", "1"]
    code, status = await http.put(f"{PODS}/web", current)
    assert code == 422 and "pod updates may not change fields" in status["message"]


async def test_cluster_scoped_nodes(http):
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1", "labels": {"zone": "a"}},
            "status": {"capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"}}}
    code, created = await http.post("/api/v1/nodes", node)
    assert code == 201 and "namespace" not in created["metadata"]
    code, listed = await http.get("/api/v1/nodes")
    assert [n["metadata"]["name"] for n in listed["items"]] == ["node-1"]
    created["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    code, updated = await http.put("/api/v1/nodes/node-1/status", created)
    assert code == 200 and updated["status"]["conditions"][0]["type"] == "Ready"


async def test_leases_and_events_create_on_update(http):
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "node-1"},
             "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40,
                      "renewTime": "2026-11-28T05:00:00.123456+00:00"}}
    path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-1"
    code, created = await http.put(path, lease)
    assert code == 201
    assert created["spec"]["renewTime"] == "2026-11-28T05:00:00.123456Z"


async def test_dry_run_answers_as_a_write_would_and_stores_nothing(http):
    """`dryRun=All` (kubectl --dry-run=server, kubectl diff): the full write path runs, nothing
    is written, and the answer is what the write would have returned."""
    dry = {"dryRun": "All"}
    code, created = await http.post(DEPLOYS, deployment("web"), params=dry)
    assert code == 201 and created["metadata"]["name"] == "web"
    assert (await http.get(f"{DEPLOYS}/web"))[0] == 404
    code, invalid = await http.post(DEPLOYS, deployment("Bad_Name"), params=dry)
    assert code == 422  # validated like a real create

    _, stored = await http.post(DEPLOYS, deployment("web"))
    rv = stored["metadata"]["resourceVersion"]
    code, patched = await http.patch(f"{DEPLOYS}/web", {"spec": {"replicas": 7}}, params=dry)
    assert code == 200
    assert patched["spec"]["replicas"] == 7 and patched["metadata"]["generation"] == 2
    assert patched["metadata"]["resourceVersion"] == rv  # unchanged: nothing was written
    _, now = await http.get(f"{DEPLOYS}/web")
    assert now["spec"]["replicas"] == stored["spec"]["replicas"] and now["metadata"]["resourceVersion"] == rv

    code, _ = await http.delete(f"{DEPLOYS}/web", params=dry)
    assert code == 200
    assert (await http.get(f"{DEPLOYS}/web"))[0] == 200

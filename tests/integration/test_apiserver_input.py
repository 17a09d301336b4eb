"""Bad input gets a clear error and changes nothing."""

from __future__ import annotations

import pytest

from tests.support.http import Http, deployment, pod

PODS = "/api/v1/namespaces/default/pods"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"



async def _revision(http: Http) -> str:
    _, listed = await http.get("/api/v1/pods")
    return listed["metadata"]["resourceVersion"]


async def test_invalid_values_list_every_bad_field_and_store_nothing(http):
    before = await _revision(http)
    bad = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "Bad_Name", "labels": {"ok": "no spaces"}},
           "spec": {"restartPolicy": "Sometimes",
                    "containers": [{"name": "web", "image": "busybox",
                                    "ports": [{"containerPort": 70000}],
                                    "resources": {"limits": {"cpu": "lots", "memory": "128Mi"}}},
                                   {"name": "web"}]}}
    code, status = await http.post(PODS, bad)
    assert code == 422
    assert status["reason"] == "Invalid"
    fields = {c["field"] for c in status["details"]["causes"]}
    assert fields >= {"metadata.name", "metadata.labels[ok]", "spec.restartPolicy",
                      "spec.containers[0].ports[0].containerPort", "spec.containers[0].resources.limits[cpu]",
                      "spec.containers[1].name", "spec.containers[1].image"}
    assert status["message"].startswith('Pod "Bad_Name" is invalid: [')
    assert await _revision(http) == before


async def test_type_errors_are_all_reported(http):
    bad = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
           "spec": {"containers": [{"image": "busybox", "ports": [{"containerPort": "eighty"}]}],
                    "terminationGracePeriodSeconds": "soon"}}
    code, status = await http.post(PODS, bad)
    assert code == 422
    fields = {c["field"] for c in status["details"]["causes"]}
    assert fields == {"spec.containers[0].name", "spec.containers[0].ports[0].containerPort",
                      "spec.terminationGracePeriodSeconds"}


async def test_deployment_selector_must_match_template(http):
    body = deployment("web")
    body["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    code, status = await http.post(DEPLOYS, body)
    assert code == 422
    causes = status["details"]["causes"]
    assert causes[0]["field"] == "spec.template.metadata.labels"
    assert "`selector` does not match template `labels`" in causes[0]["message"]


@pytest.mark.parametrize("mode,code,stored", [("Strict", 422, False), ("Warn", 201, True), ("Ignore", 201, True)])
async def test_unknown_fields_follow_field_validation(http, mode, code, stored):
    body = pod("web")
    body["spec"]["containers"][0]["bogus"] = 1
    body["spec"]["alsoBogus"] = {"x": 1}
    got, reply = await http.post(PODS, body, params={"fieldValidation": mode})
    assert got == code
    if mode == "Strict":
        assert {c["field"] for c in reply["details"]["causes"]} == {"spec.containers[0].bogus", "spec.alsoBogus"}
    else:
        assert "bogus" not in reply["spec"]["containers"][0] and "alsoBogus" not in reply["spec"]
        warnings = http.last_headers.getall("Warning", [])
        assert (len(warnings) == 2) == (mode == "Warn")
    assert ((await http.get(f"{PODS}/web"))[0] == 200) == stored


async def test_unenforced_fields_are_accepted_with_a_warning(http):
    body = pod("web")
    body["spec"]["securityContext"] = {"runAsNonRoot": True}
    code, _ = await http.post(PODS, body)
    assert code == 201
    warnings = http.last_headers.getall("Warning", [])
    assert any("spec.securityContext" in w and "not enforced" in w for w in warnings)


async def test_malformed_bodies_are_400(http):
    code, status = await http.post(PODS, raw=b'{"apiVersion": "v1", "kind": ')
    assert code == 400 and status["reason"] == "BadRequest"
    code, status = await http.post(PODS, raw=b"kind: Pod\nmetadata: [unclosed", content_type="application/yaml")
    assert code == 400
    code, status = await http.post(PODS, raw=b"[1, 2]")
    assert code == 400


async def test_yaml_bodies_are_accepted(http):
    yaml_pod = (b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: y\n"
                b"spec:\n  containers:\n  - name: c\n    image: busybox\n")
    code, created = await http.post(PODS, raw=yaml_pod, content_type="application/yaml")
    assert code == 201 and created["metadata"]["name"] == "y"


async def test_kind_mismatch_is_400(http):
    code, status = await http.post(PODS, deployment("web"))
    assert code == 400


async def test_bodies_over_3_mib_are_413_and_store_nothing(http):
    body = pod("huge")
    body["metadata"]["annotations"] = {"blob": "x" * (3 * 1024 * 1024 + 10)}
    code, status = await http.post(PODS, body)
    assert code == 413
    assert status["kind"] == "Status" and status["reason"] == "RequestEntityTooLarge"
    assert (await http.get(f"{PODS}/huge"))[0] == 404


async def test_unknown_paths_are_404_status(http):
    code, status = await http.get("/api/v1/widgets")
    assert code == 404 and status["kind"] == "Status"
    code, _ = await http.get("/apis/apps/v1/namespaces/default/deployments/x/bogus")
    assert code == 404


async def test_bad_selectors_are_400(http):
    code, status = await http.get(PODS, params={"labelSelector": "app in (a"})
    assert code == 400
    code, status = await http.get(PODS, params={"fieldSelector": "spec.bogus=x"})
    assert code == 400 and "field label not supported" in status["message"]


async def test_patch_errors_change_nothing(http):
    _, created = await http.post(PODS, pod("web", labels={"a": "1"}))
    code, status = await http.patch(f"{PODS}/web", [{"op": "test", "path": "/metadata/labels/a", "value": "2"},
                                                   {"op": "remove", "path": "/metadata/labels/a"}], kind="json")
    assert code == 422
    code, status = await http.patch(f"{PODS}/web", {"metadata": {"labels": {"a": "not valid!"}}})
    assert code == 422
    _, current = await http.get(f"{PODS}/web")
    assert current["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_env_value_from_is_validated_as_kubernetes_does(http):
    """fieldRef paths and resourceFieldRef resources/divisors outside Kubernetes' lists are 422,
    naming the supported values; a valid downward API env is accepted."""
    body = pod("env-ok")
    body["spec"]["containers"][0]["env"] = [
        {"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "C", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
        {"name": "D", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}]
    code, status = await http.post(PODS, body)
    assert code == 201, status

    bad = pod("env-bad")
    bad["spec"]["containers"][0]["env"] = [
        {"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.restartPolicy"}}},
        {"name": "B", "valueFrom": {"resourceFieldRef": {"resource": "limits.gpu"}}},
        {"name": "C", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1Mi"}}},
        {"name": "D", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "E", "valueFrom": {}},
        {"name": "F", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"},
                                    "resourceFieldRef": {"resource": "limits.cpu"}}}]
    code, status = await http.post(PODS, bad)
    assert code == 422
    causes = {c["field"]: c["message"] for c in status["details"]["causes"]}
    env = "spec.containers[0].env"
    assert causes[f"{env}[0].valueFrom.fieldRef.fieldPath"] == (
        'Unsupported value: "spec.restartPolicy": supported values: "metadata.name", "metadata.namespace", '
        '"metadata.uid", "spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", '
        '"status.podIP", "status.podIPs"')
    assert causes[f"{env}[1].valueFrom.resourceFieldRef.resource"].startswith(
        'Unsupported value: "limits.gpu": supported values: "limits.cpu"')
    assert causes[f"{env}[2].valueFrom.resourceFieldRef.divisor"] == (
        'Unsupported value: "1Mi": supported values: "1m", "1"')
    assert "may not be specified when `value` is not empty" in causes[f"{env}[3].valueFrom"]
    assert "must specify one of" in causes[f"{env}[4].valueFrom"]
    assert "may not have more than one field specified at a time" in causes[f"{env}[5].valueFrom"]

"""`kubelite delete|scale|rollout|cordon|uncordon|drain` and connection errors, against a real
API server (no controllers run: tests write the status a controller would)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from api.client import Client
from cli.main import main
from tests.integration.test_cli_apply import DEPLOYMENT, Run, kl

__all__ = ["kl"]

PODS = "".join(f"""---
apiVersion: v1
kind: Pod
metadata: {{name: p{i}, labels: {{group: {"a" if i < 2 else "b"}}}}}
spec:
  containers: [{{name: c, image: busybox}}]
""" for i in range(4))


async def _names(client: Client) -> list[str]:
    listed = await client.request("GET", "/api/v1/namespaces/default/pods")
    return sorted(p["metadata"]["name"] for p in listed["items"])


async def test_delete_by_name_file_selector_and_all(kl: Run, client: Client, tmp_path: Path) -> None:
    assert (await kl("apply", "-f", "-", stdin=PODS))[0] == 0
    assert await kl("delete", "pod", "p0") == (0, 'pod "p0" deleted\n', "")
    code, out, err = await kl("delete", "pod", "p0", "p1")
    assert (code, out, err) == (1, 'pod "p1" deleted\n', 'Error from server (NotFound): pods "p0" not found\n')
    assert await kl("delete", "pods", "-l", "group=b") == (0, 'pod "p2" deleted\npod "p3" deleted\n', "")
    assert await _names(client) == []

    path = tmp_path / "all.yaml"
    path.write_text(DEPLOYMENT + PODS)
    assert (await kl("apply", "-f", str(path)))[0] == 0
    assert await kl("delete", "-f", str(path), "--grace-period", "0", "--force") == (
        0, 'deployment.apps "web" deleted\npod "solo" deleted\n' + "".join(f'pod "p{i}" deleted\n' for i in range(4)),
        "")
    assert (await kl("apply", "-f", "-", stdin=PODS))[0] == 0
    code, out, _ = await kl("delete", "pods", "--all")
    assert (code, len(out.splitlines())) == (0, 4)
    assert await _names(client) == []
    code, _, err = await kl("delete", "pods")
    assert code == 1 and "no name was specified" in err


async def test_scale_uses_the_scale_subresource(kl: Run, client: Client) -> None:
    assert (await kl("apply", "-f", "-", stdin=DEPLOYMENT))[0] == 0
    assert await kl("scale", "deploy/web", "--replicas", "5") == (0, "deployment.apps/web scaled\n", "")
    dep = await client.request("GET", "/apis/apps/v1/namespaces/default/deployments/web")
    assert dep["spec"]["replicas"] == 5
    code, _, err = await kl("scale", "deployment", "nope", "--replicas", "1")
    assert (code, err) == (1, 'Error from server (NotFound): deployments.apps "nope" not found\n')


async def _write_status(client: Client, **status: int) -> None:
    path = "/apis/apps/v1/namespaces/default/deployments/web"
    dep = await client.request("GET", path)
    dep["status"] = {"observedGeneration": dep["metadata"]["generation"], **status}
    await client.request("PUT", path + "/status", json=dep)


async def test_rollout_status_follows_the_deployment(kl: Run, client: Client) -> None:
    assert (await kl("apply", "-f", "-", stdin=DEPLOYMENT))[0] == 0
    code, out, _ = await kl("rollout", "status", "deployment/web", "--no-watch")
    assert (code, out) == (1, "Waiting for deployment spec update to be observed...\n")
    await _write_status(client, replicas=2, updatedReplicas=1, availableReplicas=0)
    follow = asyncio.ensure_future(kl("rollout", "status", "deploy/web", "--timeout", "20"))
    await asyncio.sleep(0.5)
    await _write_status(client, replicas=2, updatedReplicas=2, availableReplicas=1)
    await asyncio.sleep(0.3)
    await _write_status(client, replicas=2, updatedReplicas=2, availableReplicas=2)
    code, out, err = await asyncio.wait_for(follow, 20)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        'Waiting for deployment "web" rollout to finish: 1 out of 2 new replicas have been updated...',
        'Waiting for deployment "web" rollout to finish: 1 of 2 updated replicas are available...',
        'deployment "web" successfully rolled out',
    ]


async def test_rollout_restart_pause_resume(kl: Run, client: Client) -> None:
    assert (await kl("apply", "-f", "-", stdin=DEPLOYMENT))[0] == 0
    assert await kl("rollout", "restart", "deployment/web") == (0, "deployment.apps/web restarted\n", "")
    dep = await client.request("GET", "/apis/apps/v1/namespaces/default/deployments/web")
    assert "kubectl.kubernetes.io/restartedAt" in dep["spec"]["template"]["metadata"]["annotations"]
    assert await kl("rollout", "pause", "deployment/web") == (0, "deployment.apps/web paused\n", "")
    code, _, err = await kl("rollout", "pause", "deployment/web")
    assert (code, err) == (1, 'error: deployments.apps "web" is already paused\n')
    assert await kl("rollout", "resume", "deployment/web") == (0, "deployment.apps/web resumed\n", "")
    code, _, err = await kl("rollout", "undo", "deployment/web")
    assert (code, err) == (1, "error: no rollout history found\n")


async def test_cordon_uncordon_and_drain(kl: Run, client: Client) -> None:
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}
    await client.request("POST", "/api/v1/nodes", json=node)
    assert await kl("cordon", "n1") == (0, "node/n1 cordoned\n", "")
    assert await kl("cordon", "n1") == (0, "node/n1 already cordoned\n", "")
    code, out, _ = await kl("get", "nodes")
    assert out.splitlines()[1].split()[1] == "Unknown,SchedulingDisabled"
    assert await kl("uncordon", "n1") == (0, "node/n1 uncordoned\n", "")

    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lonely", "namespace": "default"},
           "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}}
    await client.request("POST", "/api/v1/namespaces/default/pods", json=pod)
    code, out, err = await kl("drain", "n1")
    assert code == 1 and "cannot delete Pods that declare no controller" in err and "default/lonely" in err
    assert await _names(client) == ["lonely"]
    code, out, err = await kl("drain", "n1", "--force", "--grace-period", "0", "--timeout", "10")
    assert (code, err) == (0, "")
    assert out.splitlines() == ["node/n1 already cordoned", "evicting pod default/lonely", "pod/lonely evicted",
                                "node/n1 drained"]


def test_unreachable_server_says_where_it_came_from(capsys: object, monkeypatch: object) -> None:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch) and isinstance(capsys, pytest.CaptureFixture)
    from cli import config

    monkeypatch.setattr(config, "DEFAULT_KUBECONFIGS", ())
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("KUBELITE_SERVER", "http://127.0.0.1:9")
    assert main(["get", "pods"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach the API server at http://127.0.0.1:9" in err
    assert "that address came from $KUBELITE_SERVER" in err and "--server URL" in err


def _rs(dep: dict[str, Any], revision: int, image: str) -> dict[str, Any]:
    labels = {"app": "web", "pod-template-hash": f"h{revision}"}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": f"web-h{revision}", "namespace": "default", "labels": labels,
                         "annotations": {"deployment.kubernetes.io/revision": str(revision)},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                              "uid": dep["metadata"]["uid"], "controller": True}]},
            "spec": {"replicas": 0, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "web", "image": image}]}}}}


async def test_rollout_history_and_undo(kl: Run, client: Client) -> None:
    new = DEPLOYMENT.replace("image: busybox:1.36\n        ports", "image: busybox:1.37\n        ports")
    assert (await kl("apply", "-f", "-", stdin=new))[0] == 0
    path = "/apis/apps/v1/namespaces/default/deployments/web"
    dep = await client.request("PATCH", path, json={"metadata": {"annotations": {
        "deployment.kubernetes.io/revision": "2"}}}, content_type="application/merge-patch+json")
    for revision, image in ((1, "busybox:1.36"), (2, "busybox:1.37")):
        await client.request("POST", "/apis/apps/v1/namespaces/default/replicasets", json=_rs(dep, revision, image))
    code, out, _ = await kl("rollout", "history", "deployment/web")
    assert out.splitlines()[:4] == ["deployment.apps/web ", "REVISION  CHANGE-CAUSE", "1         <none>",
                                    "2         <none>"]
    assert await kl("rollout", "undo", "deployment/web") == (0, "deployment.apps/web rolled back\n", "")
    template = (await client.request("GET", path))["spec"]["template"]
    assert template["spec"]["containers"][0]["image"] == "busybox:1.36"
    assert template["metadata"]["labels"] == {"app": "web"}

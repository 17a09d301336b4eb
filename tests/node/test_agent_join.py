"""`kubelite agent --token --ca-cert-hash` joins a secured server and its node goes Ready;
a wrong CA pin is refused before anything is sent. The joined kubelet serves logs and exec
over TLS to the API server only: kubectl logs/exec and `kubelite top` work through the API
server, while anyone else calling the kubelet directly, even the admin, is refused."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import pytest

from apiserver.auth.pki import CertPaths, client_ssl_context
from apiserver.etcd_process import free_port
from cli.local.cleanup import clean_node
from tests.support.cluster import TMPFS

pytestmark = [pytest.mark.root]
BIN = Path(sys.executable).parent


def _wait_file(path: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text().strip():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)
    return path.read_text().strip()


async def test_agent_joins_a_secured_server():
    data = Path(tempfile.mkdtemp(prefix="kltest-join-", dir=TMPFS))
    root = Path(tempfile.mkdtemp(prefix="kltest-joinnode-"))
    port, kubelet_port = free_port(), free_port()
    server = subprocess.Popen([str(BIN / "kubelite"), "server", "--data-dir", str(data), "--port", str(port),
                               "--secure", "--no-controllers"], stderr=subprocess.DEVNULL)
    agent = None
    try:
        words = _wait_file(data / "join-command").split()
        token, pin = words[words.index("--token") + 1], words[words.index("--ca-cert-hash") + 1]
        common = ["agent", "--server", f"https://127.0.0.1:{port}", "--node-name", "kltest-joined",
                  "--root-dir", str(root), "--node-ip", "127.0.0.1", "--port", str(kubelet_port),
                  "--network", "none", "--no-proxy", "--cgroup-parent", "kltest-joined", "--token", token]
        wrong = subprocess.run([str(BIN / "kubelite"), *common, "--ca-cert-hash", "sha256:" + "0" * 64],
                               capture_output=True, text=True, timeout=60)
        assert wrong.returncode == 1 and "cannot join" in wrong.stderr
        assert not (root / "pki" / "node.crt").exists()

        agent = subprocess.Popen([str(BIN / "kubelite"), *common, "--ca-cert-hash", pin], stderr=subprocess.DEVNULL)
        kubectl = [str(BIN / "kubectl"), "--kubeconfig", str(data / "admin.kubeconfig"), "--cache-dir",
                   str(data / "cache")]
        deadline = time.monotonic() + 60
        while True:
            out = subprocess.run([*kubectl, "get", "node", "kltest-joined", "-o", "json"], capture_output=True,
                                 text=True, timeout=30)
            if out.returncode == 0:
                conditions = {c["type"]: c["status"] for c in json.loads(out.stdout)["status"].get("conditions", [])}
                if conditions.get("Ready") == "True":
                    break
            assert time.monotonic() < deadline, out.stderr
            await asyncio.sleep(0.3)
        assert (root / "pki" / "node.key").stat().st_mode & 0o777 == 0o600
        assert (root / "pki" / "kubelet-serving.key").stat().st_mode & 0o777 == 0o600
        await _streaming_goes_through_the_api_server_only(kubectl, data, kubelet_port)
    finally:
        if agent is not None:
            agent.send_signal(signal.SIGTERM)
            agent.wait(timeout=30)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        await clean_node(root, cgroup_parent="kltest-joined")
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)


POD = """
apiVersion: v1
kind: Secret
metadata: {name: kltest-tls-secret}
stringData: {greeting: hello-over-tls}
---
apiVersion: v1
kind: Pod
metadata: {name: kltest-tls}
spec:
  nodeName: kltest-joined
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    imagePullPolicy: Never
    command: ["sh", "-c", "echo $GREETING; exec sleep 3600"]
    env:  # read by the node through the Node authorizer's rule: its pod names the Secret
    - name: GREETING
      valueFrom: {secretKeyRef: {name: kltest-tls-secret, key: greeting}}
"""


async def _streaming_goes_through_the_api_server_only(kubectl: list[str], data: Path, kubelet_port: int) -> None:
    applied = subprocess.run([*kubectl, "apply", "-f", "-"], input=POD, capture_output=True, text=True, timeout=30)
    assert applied.returncode == 0, applied.stderr
    deadline = time.monotonic() + 60
    while True:
        logs = subprocess.run([*kubectl, "logs", "kltest-tls"], capture_output=True, text=True, timeout=30)
        if "hello-over-tls" in logs.stdout:
            break
        assert time.monotonic() < deadline, logs.stderr
        await asyncio.sleep(0.3)
    execed = subprocess.run([*kubectl, "exec", "kltest-tls", "--", "echo", "exec-over-tls"], capture_output=True,
                            text=True, timeout=30)
    assert execed.stdout.strip() == "exec-over-tls", execed.stderr
    top = subprocess.run([str(BIN / "kubelite"), "top", "nodes", "--kubeconfig", str(data / "admin.kubeconfig")],
                         capture_output=True, text=True, timeout=30)
    assert top.returncode == 0 and "kltest-joined" in top.stdout, top.stdout + top.stderr

    url = f"https://127.0.0.1:{kubelet_port}/containerLogs/default/kltest-tls/main"
    pki = data / "pki"

    async def status_with(cert: str | None) -> int:
        ctx = client_ssl_context(pki / "ca.crt", CertPaths(pki / f"{cert}.crt", pki / f"{cert}.key") if cert else None)
        async with aiohttp.ClientSession() as session, session.get(url, ssl=ctx) as resp:
            return resp.status

    assert await status_with("apiserver-kubelet-client") == 200  # the API server's identity
    assert await status_with("admin") == 403  # a cluster admin goes through the API server
    with pytest.raises(aiohttp.ClientError):  # no client certificate: the handshake fails
        await status_with(None)
    with pytest.raises(aiohttp.ClientError):  # and nothing answers plain http
        async with aiohttp.ClientSession() as session, \
                session.get(url.replace("https", "http")) as resp:
            await resp.read()
    subprocess.run([*kubectl, "delete", "pod", "kltest-tls", "--wait=true", "--timeout=30s"], capture_output=True,
                   timeout=60)

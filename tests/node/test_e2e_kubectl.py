"""End to end through the real API server: kubectl logs and kubectl exec reach a container
run by a real kubelet on the real kernel (the API server proxies to the kubelet)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from api.client import Client
from tests.node.test_kubelet_pods import NODE, Agent, agent, pod, until  # noqa: F401 - `agent` is a fixture

pytestmark = [pytest.mark.root]
KUBECTL = Path(sys.executable).parent / "kubectl"


async def kubectl(apiserver_url: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(KUBECTL), "--server", apiserver_url, "--cache-dir", str(tmp / "cache"), *args]
    return await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, timeout=60)


async def test_kubectl_logs_and_exec(agent: Agent, client: Client, apiserver, tmp_path: Path) -> None:  # noqa: F811
    await client.create(pod("kltest-e2e", "echo ready; sleep 1000"))
    await until(client, "kltest-e2e", lambda p: p.status is not None and p.status.phase == "Running")
    for _ in range(50):
        logs = await kubectl(apiserver.url, tmp_path, "logs", "kltest-e2e")
        if "ready" in logs.stdout:
            break
        await asyncio.sleep(0.1)
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout == "ready\n"
    out = await kubectl(apiserver.url, tmp_path, "exec", "kltest-e2e", "--", "sh", "-c", "hostname; exit 3")
    assert out.stdout.strip() == "kltest-e2e"
    assert out.returncode == 3
    missing = await kubectl(apiserver.url, tmp_path, "logs", "nope")
    assert missing.returncode == 1 and 'pods "nope" not found' in missing.stderr
    # `kubelite top` reads the kubelet's cgroup stats through the API server's node proxy
    top = await asyncio.to_thread(subprocess.run, [str(KUBECTL.parent / "kubelite"), "top", "pods", "--server",
                                                   apiserver.url], capture_output=True, text=True, timeout=60)
    assert top.returncode == 0, top.stderr
    assert any(line.split()[0] == "kltest-e2e" for line in top.stdout.splitlines()[1:]), top.stdout
    raw = await kubectl(apiserver.url, tmp_path, "get", "--raw", f"/api/v1/nodes/{NODE}/proxy/stats/summary")
    assert raw.returncode == 0 and '"pods"' in raw.stdout, raw.stderr

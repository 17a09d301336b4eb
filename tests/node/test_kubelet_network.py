"""The kubelet with the bridge pod network, in a simulated host (a `kltest` network namespace).

Pods get addresses from the node's podCIDR, reach each other by pod IP, a hostPort answers
on the node, and a deleted pod's address is freed.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from api.client import Client
from api.core import ContainerPort, EnvVar, EnvVarSource, Node, NodeSpec, ObjectFieldSelector, Pod
from api.errors import NotFound
from api.meta import ObjectMeta
from kubelet.network import BridgeNetwork
from tests.node.test_container_fixtures import cleanup_runtime
from tests.node.test_kubelet_pods import NODE, Agent, pod, until

pytestmark = [pytest.mark.root]

HOST_NS = "kltest-kh1"
NODE_IP = "198.51.100.77"
CIDR = "10.244.77.0/24"


def sh(*argv: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, input=input, timeout=10, check=False)


@pytest.fixture
async def net_agent(client: Client) -> AsyncIterator[Agent]:
    from apiserver.etcd_process import free_port

    sh("ip", "netns", "add", HOST_NS)
    sh("ip", "netns", "exec", HOST_NS, "ip", "link", "set", "lo", "up")
    sh("ip", "netns", "exec", HOST_NS, "ip", "addr", "add", f"{NODE_IP}/32", "dev", "lo")
    await client.create(Node(metadata=ObjectMeta(name=NODE), spec=NodeSpec(pod_cidr=CIDR)))
    root = Path(tempfile.mkdtemp(prefix="kltest-kubelet-"))
    parent = f"kltest-{secrets.token_hex(4)}"
    a = Agent(client, root, parent, free_port(), network="bridge", node_netns=HOST_NS, node_ip=NODE_IP)
    try:
        await a.start()
        yield a
    finally:
        await a.halt()
        for p in (await client.list(Pod)).items:
            with contextlib.suppress(NotFound):
                await client.delete(Pod, p.metadata.name or "", namespace="default", grace_period_seconds=0)
        await cleanup_runtime(root, parent)
        if a.kubelet is not None and isinstance(a.kubelet.network, BridgeNetwork):
            await a.kubelet.network.teardown()
        shutil.rmtree(root, ignore_errors=True)
        sh("ip", "netns", "del", HOST_NS)


async def test_pod_ips_pod_to_pod_host_port_and_ip_freed(net_agent: Agent, client: Client) -> None:
    web = pod("kltest-web", "echo hello-kltest > /tmp/index.html; httpd -f -p 8080 -h /tmp",
              ports=[ContainerPort(container_port=8080, host_port=4000)])
    await client.create(web)
    downward = [EnvVar(name=n, value_from=EnvVarSource(field_ref=ObjectFieldSelector(field_path=f)))
                for n, f in (("MY_IP", "status.podIP"), ("MY_IPS", "status.podIPs"), ("MY_HOST", "status.hostIP"))]
    await client.create(pod("kltest-client", "sleep 1000", env=downward))
    running = lambda p: p.status is not None and p.status.phase == "Running" and bool(p.status.pod_ip)  # noqa: E731
    w = await until(client, "kltest-web", running)
    c = await until(client, "kltest-client", running)
    assert w.status and c.status and w.status.pod_ip and c.status.pod_ip
    assert w.status.pod_ip.startswith("10.244.77.") and w.status.pod_ip != c.status.pod_ip
    assert w.status.host_ip == NODE_IP

    assert net_agent.kubelet and net_agent.kubelet.runtime
    rt = net_agent.kubelet.runtime
    cid = rt.containers(c.metadata.uid or "").latest["main"].id
    page = ""
    for _ in range(30):
        proc = await rt.rt.exec(cid, ["sh", "-c", f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc {w.status.pod_ip} 8080"])
        page = (await proc.communicate()).stdout.decode()
        if "hello-kltest" in page:
            break
        await asyncio.sleep(0.2)
    assert "hello-kltest" in page  # pod to pod by IP
    proc = await rt.rt.exec(cid, ["sh", "-c", 'echo "$MY_IP $MY_IPS $MY_HOST"'])
    assert (await proc.communicate()).stdout.decode() == f"{c.status.pod_ip} {c.status.pod_ip} {NODE_IP}\n"
    out = sh("ip", "netns", "exec", HOST_NS, "busybox", "nc", "-w", "2", NODE_IP, "4000",
             input="GET / HTTP/1.0\r\n\r\n").stdout
    assert "hello-kltest" in out  # hostPort on the node's address

    uid = w.metadata.uid or ""
    await client.delete(Pod, "kltest-web", namespace="default")
    for _ in range(100):
        try:
            await client.get(Pod, "kltest-web", namespace="default")
        except NotFound:
            break
        await asyncio.sleep(0.1)
    assert net_agent.kubelet.network.ip_of(uid) is None  # the address is free again

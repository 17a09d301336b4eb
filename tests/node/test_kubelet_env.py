"""Env vars from the downward API (`valueFrom.fieldRef` / `resourceFieldRef`) as a container
sees them, and a reference to a ConfigMap/Secret that does not exist failing as Kubernetes
fails it: CreateContainerConfigError with a Failed event (test_kubelet_config.py has the rest)."""

from __future__ import annotations

import asyncio
import re

import pytest

from api.client import Client
from api.core import Container, EnvVar, EnvVarSource, Event, ObjectFieldSelector, Pod, ResourceFieldSelector
from api.core import ResourceRequirements as Res
from kubelet.node import capacity, read_machine
from tests.node.test_kubelet_pods import NODE, Agent, agent, main_status, pod, until

__all__ = ["agent"]

pytestmark = [pytest.mark.root]


def field(name: str, path: str) -> EnvVar:
    return EnvVar(name=name, value_from=EnvVarSource(field_ref=ObjectFieldSelector(field_path=path)))


def resource(name: str, res: str, divisor: str | None = None, container: str | None = None) -> EnvVar:
    ref = ResourceFieldSelector(resource=res, divisor=divisor, container_name=container)
    return EnvVar(name=name, value_from=EnvVarSource(resource_field_ref=ref))


async def output(agent: Agent, p: Pod, want_lines: int) -> list[str]:
    """The container's stdout lines (CRI log format: time stream tag message)."""
    assert agent.kubelet and agent.kubelet.runtime
    path = agent.kubelet.runtime.log_path(p, "main", 0)
    lines: list[str] = []
    for _ in range(100):
        if path.exists():
            lines = [line.split(" ", 3)[3] for line in path.read_text().splitlines()]
            if len(lines) >= want_lines:
                return lines
        await asyncio.sleep(0.1)
    raise AssertionError(f"container wrote {lines}")


async def test_downward_api_env(agent: Agent, client: Client) -> None:
    names = ["MY_NAME", "MY_NS", "MY_UID", "MY_APP", "MY_NOTE", "MY_NONE", "MY_NODE", "MY_HOST", "MY_HOSTS",
             "MY_MEM", "MY_MEM_MI", "MY_CPU", "MY_CPU_M", "MY_REQ_MEM", "MY_NODE_MEM", "MY_SIDE_CPU", "MY_GREETING"]
    env = [field("MY_NAME", "metadata.name"), field("MY_NS", "metadata.namespace"), field("MY_UID", "metadata.uid"),
           field("MY_APP", "metadata.labels['app']"), field("MY_NOTE", "metadata.annotations['note']"),
           field("MY_NONE", "metadata.labels['absent']"), field("MY_NODE", "spec.nodeName"),
           field("MY_HOST", "status.hostIP"), field("MY_HOSTS", "status.hostIPs"),
           resource("MY_MEM", "limits.memory"), resource("MY_MEM_MI", "limits.memory", "1Mi"),
           resource("MY_CPU", "limits.cpu"), resource("MY_CPU_M", "limits.cpu", "1m"),
           resource("MY_REQ_MEM", "requests.memory", "1Mi"),
           resource("MY_NODE_MEM", "limits.memory", container="side"),  # no limit: the node's allocatable
           resource("MY_SIDE_CPU", "requests.cpu", "1m", container="side"),  # no request: 0
           EnvVar(name="MY_GREETING", value="hello $(MY_NAME) on $(MY_NODE)")]
    script = " ; ".join(f'echo "${n}"' for n in names) + " ; sleep 1000"
    p = pod("kltest-env", script, env=env,
            resources=Res(limits={"memory": "64Mi", "cpu": "500m"}, requests={"memory": "32Mi"}))
    p.metadata.labels = {"app": "kltest-web"}
    p.metadata.annotations = {"note": "from the downward API"}
    p.spec.containers.append(Container(name="side", image="busybox:latest", command=["sleep", "1000"]))
    created = await client.create(p)
    await until(client, "kltest-env", lambda p: p.status is not None and p.status.phase == "Running")
    node_memory = capacity(read_machine(agent.root))["memory"]
    assert node_memory.endswith("Ki")
    got = dict(zip(names, await output(agent, created, len(names)), strict=True))
    assert got == {
        "MY_NAME": "kltest-env", "MY_NS": "default", "MY_UID": created.metadata.uid, "MY_APP": "kltest-web",
        "MY_NOTE": "from the downward API", "MY_NONE": "", "MY_NODE": NODE, "MY_HOST": "127.0.0.1",
        "MY_HOSTS": "127.0.0.1", "MY_MEM": str(64 << 20), "MY_MEM_MI": "64", "MY_CPU": "1", "MY_CPU_M": "500",
        "MY_REQ_MEM": "32", "MY_NODE_MEM": str(int(node_memory[:-2]) * 1024), "MY_SIDE_CPU": "0",
        "MY_GREETING": f"hello kltest-env on {NODE}",
    }


async def test_configmap_and_secret_refs_fail_as_missing_unless_optional(agent: Agent, client: Client) -> None:
    ref = EnvVar(name="DB", value_from=EnvVarSource(config_map_key_ref={"name": "db-config", "key": "host"}))
    created = await client.create(pod("kltest-cm", "sleep 1000", env=[ref]))
    p = await until(client, "kltest-cm", lambda p: (s := main_status(p)) is not None
                    and s.state.waiting is not None and s.state.waiting.reason == "CreateContainerConfigError")  # type: ignore[attr-defined]
    assert main_status(p).state.waiting.message == 'configmap "db-config" not found'  # type: ignore[attr-defined]
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        events = [e for e in (await client.list(Event, namespace="default")).items
                  if e.involved_object.uid == created.metadata.uid]
        if any(e.reason == "Failed" and e.message == 'Error: configmap "db-config" not found' for e in events):
            break
        assert asyncio.get_running_loop().time() < deadline, [(e.reason, e.message) for e in events]
        await asyncio.sleep(0.2)

    secret = EnvVar(name="PW", value_from=EnvVarSource(secret_key_ref={"name": "db", "key": "pw"}))
    await client.create(pod("kltest-secret", "sleep 1000", env=[secret]))
    p = await until(client, "kltest-secret", lambda p: (s := main_status(p)) is not None
                    and s.state.waiting is not None and s.state.waiting.reason == "CreateContainerConfigError")  # type: ignore[attr-defined]
    assert re.fullmatch('secret "db" not found', main_status(p).state.waiting.message)  # type: ignore[attr-defined]

    optional = EnvVar(name="DB", value_from=EnvVarSource(
        config_map_key_ref={"name": "db-config", "key": "host", "optional": True}))
    await client.create(pod("kltest-cmopt", 'echo "DB=[$DB]"; sleep 1000', env=[optional]))
    p = await until(client, "kltest-cmopt", lambda p: p.status is not None and p.status.phase == "Running")
    assert await output(agent, p, 1) == ["DB=[]"]

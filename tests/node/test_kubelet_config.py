"""ConfigMaps and Secrets in pods, on a real kubelet and kernel: env (`configMapKeyRef`,
`secretKeyRef`, `envFrom` with a prefix), configMap and secret volumes (items, modes, the
secret on a tmpfs), updates reaching the mounted files in place while a subPath file keeps its
content, a missing ConfigMap holding the container until it is created, and nothing left
mounted or on disk once the pod is gone."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

import pytest

from api.client import Client
from api.config import (
    ConfigMap,
    ConfigMapEnvSource,
    ConfigMapKeySelector,
    ConfigMapVolumeSource,
    EnvFromSource,
    KeyToPath,
    Secret,
    SecretKeySelector,
    SecretVolumeSource,
)
from api.core import EnvVar, EnvVarSource, Event, Pod, Volume, VolumeMount
from api.meta import ObjectMeta
from tests.node.test_kubelet_env import output
from tests.node.test_kubelet_pods import Agent, agent, main_status, pod, until

__all__ = ["agent"]

pytestmark = [pytest.mark.root]

VOLUME_ONLY_SECRET = "kltest-volume-only-8f1c2d"  # must never be found on the node's disk


async def exec_in(agent: Agent, p: Pod, *argv: str) -> str:
    assert agent.kubelet and agent.kubelet.runtime
    latest = agent.kubelet.runtime.containers(p.metadata.uid or "").latest["main"]
    proc = await agent.kubelet.runtime.rt.exec(latest.id, list(argv))
    result = await proc.communicate()
    return result.stdout.decode()


async def events_of(client: Client, p: Pod) -> list[tuple[str | None, str | None]]:
    return [(e.reason, e.message) for e in (await client.list(Event, namespace="default")).items
            if e.involved_object.uid == p.metadata.uid]


async def wait_event(client: Client, p: Pod, reason: str, message: str, timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        seen = await events_of(client, p)
        if (reason, message) in seen:
            return
        assert asyncio.get_running_loop().time() < deadline, seen
        await asyncio.sleep(0.2)


def mounts_below(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(str(path))]


def files_containing(root: Path, needle: bytes) -> list[str]:
    found = []
    mounted = set(mounts_below(root))
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if os.path.join(dirpath, d) not in mounted]  # tmpfs: memory, not disk
        for name in files:
            full = os.path.join(dirpath, name)
            try:
                if not os.path.islink(full) and needle in Path(full).read_bytes():
                    found.append(full)
            except OSError:
                pass
    return found


async def test_env_and_volumes_from_configmap_and_secret_update_in_place(agent: Agent, client: Client) -> None:
    await client.create(ConfigMap(metadata=ObjectMeta(name="kltest-cfg", namespace="default"),
                                  data={"color": "blue", "size": "10", "1st": "x", "app.conf": "v=1\n"}))
    await client.create(Secret(metadata=ObjectMeta(name="kltest-sec", namespace="default"),
                               string_data={"password": "s3cret", "token": VOLUME_ONLY_SECRET}))
    env = [EnvVar(name="COLOR", value_from=EnvVarSource(
               config_map_key_ref=ConfigMapKeySelector(name="kltest-cfg", key="color"))),
           EnvVar(name="PASSWORD", value_from=EnvVarSource(
               secret_key_ref=SecretKeySelector(name="kltest-sec", key="password"))),
           EnvVar(name="ABSENT", value_from=EnvVarSource(
               config_map_key_ref=ConfigMapKeySelector(name="kltest-cfg", key="nope", optional=True)))]
    env_from = [EnvFromSource(prefix="CFG_", config_map_ref=ConfigMapEnvSource(name="kltest-cfg")),
                EnvFromSource(config_map_ref=ConfigMapEnvSource(name="kltest-cfg"))]
    script = ('echo "COLOR=$COLOR PASSWORD=$PASSWORD ABSENT=${ABSENT-unset} CFG_size=$CFG_size size=$size"; '
              "tr '\\0' '\\n' < /proc/1/environ | grep ^1st=; "
              "stat -L -c '%n %a' /etc/cfg/colour /etc/cfg/deep/size /etc/sec/token; sleep 1000")
    p = pod("kltest-config", script, env=env, env_from=env_from,
            volume_mounts=[VolumeMount(name="cfg", mount_path="/etc/cfg"),
                           VolumeMount(name="sec", mount_path="/etc/sec"),
                           VolumeMount(name="whole", mount_path="/etc/app.conf", sub_path="app.conf")])
    p.spec.volumes = [
        Volume(name="cfg", config_map=ConfigMapVolumeSource(name="kltest-cfg", default_mode=0o640, items=[
            KeyToPath(key="color", path="colour"), KeyToPath(key="size", path="deep/size", mode=0o600)])),
        Volume(name="sec", secret=SecretVolumeSource(secret_name="kltest-sec", default_mode=0o400)),
        Volume(name="whole", config_map=ConfigMapVolumeSource(name="kltest-cfg")),
    ]
    created = await client.create(p)
    running = await until(client, "kltest-config", lambda p: p.status is not None and p.status.phase == "Running")
    lines = await output(agent, created, 5)
    assert lines == ["COLOR=blue PASSWORD=s3cret ABSENT=unset CFG_size=10 size=10",
                     "1st=x",  # a valid env var name since Kubernetes 1.34 (KEP-4369)
                     "/etc/cfg/colour 640", "/etc/cfg/deep/size 600", "/etc/sec/token 400"]
    assert await exec_in(agent, running, "cat", "/etc/sec/token") == VOLUME_ONLY_SECRET
    assert await exec_in(agent, running, "cat", "/etc/app.conf") == "v=1\n"
    # The secret volume is a tmpfs on the node; its value is nowhere on the node's disk.
    assert agent.kubelet and agent.kubelet.runtime
    sb = agent.kubelet.runtime.sandbox(created.metadata.uid or "")
    assert sb is not None
    sec_dir = sb.dir / "volumes" / "sec"
    assert str(sec_dir) in mounts_below(sb.dir)
    assert files_containing(agent.root, VOLUME_ONLY_SECRET.encode()) == []
    assert os.readlink(sb.dir / "volumes" / "cfg" / "colour") == "..data/colour"
    assert os.readlink(sb.dir / "volumes" / "cfg" / "..data").startswith("..20")

    # An update reaches the mounted files within a few seconds, without a restart; the subPath
    # file keeps what it had, as in Kubernetes.
    cm = await client.get(ConfigMap, "kltest-cfg", namespace="default")
    cm.data = {**(cm.data or {}), "color": "green", "app.conf": "v=2\n"}
    began = asyncio.get_running_loop().time()
    await client.update(cm)
    while (got := await exec_in(agent, running, "cat", "/etc/cfg/colour")) != "green":
        assert asyncio.get_running_loop().time() - began < 5, got
        await asyncio.sleep(0.1)
    assert await exec_in(agent, running, "cat", "/etc/app.conf") == "v=1\n"
    secret = await client.get(Secret, "kltest-sec", namespace="default")
    secret.data = {**(secret.data or {}), "token": base64.b64encode(b"rotated").decode()}
    await client.update(secret)
    while (got := await exec_in(agent, running, "cat", "/etc/sec/token")) != "rotated":
        assert asyncio.get_running_loop().time() - began < 10, got
        await asyncio.sleep(0.1)
    final = await client.get(Pod, "kltest-config", namespace="default")
    assert main_status(final).restart_count == 0  # type: ignore[attr-defined]

    # Deleting the pod unmounts the secret's tmpfs and removes the pod's directory.
    await client.delete(Pod, "kltest-config", namespace="default")
    deadline = asyncio.get_running_loop().time() + 20
    while sb.dir.exists() or mounts_below(sb.dir):
        assert asyncio.get_running_loop().time() < deadline, mounts_below(sb.dir)
        await asyncio.sleep(0.1)
    assert files_containing(agent.root, VOLUME_ONLY_SECRET.encode()) == []


async def test_missing_configmap_holds_the_container_until_it_is_created(agent: Agent, client: Client) -> None:
    ref = EnvVar(name="DB", value_from=EnvVarSource(
        config_map_key_ref=ConfigMapKeySelector(name="kltest-db", key="host")))
    created = await client.create(pod("kltest-wait", 'echo "DB=$DB"; sleep 1000', env=[ref]))
    p = await until(client, "kltest-wait", lambda p: (s := main_status(p)) is not None
                    and s.state.waiting is not None and s.state.waiting.reason == "CreateContainerConfigError")  # type: ignore[attr-defined]
    assert main_status(p).state.waiting.message == 'configmap "kltest-db" not found'  # type: ignore[attr-defined]
    await wait_event(client, created, "Failed", 'Error: configmap "kltest-db" not found')

    # The ConfigMap without the key: the kubelet's other message.
    await client.create(ConfigMap(metadata=ObjectMeta(name="kltest-db", namespace="default"), data={"port": "5432"}))
    await until(client, "kltest-wait", lambda p: (s := main_status(p)) is not None
                and s.state.waiting is not None  # type: ignore[attr-defined]
                and s.state.waiting.message == "couldn't find key host in ConfigMap default/kltest-db")  # type: ignore[attr-defined]
    cm = await client.get(ConfigMap, "kltest-db", namespace="default")
    cm.data = {"host": "db.example"}
    await client.update(cm)
    p = await until(client, "kltest-wait", lambda p: p.status is not None and p.status.phase == "Running")
    assert await output(agent, p, 1) == ["DB=db.example"]

    # A missing secret volume: FailedMount, the container waits in ContainerCreating.
    vol = pod("kltest-wait-vol", "cat /s/k; echo; sleep 1000", volume_mounts=[VolumeMount(name="s", mount_path="/s")])
    vol.spec.volumes = [Volume(name="s", secret=SecretVolumeSource(secret_name="kltest-later"))]
    created = await client.create(vol)
    await wait_event(client, created, "FailedMount",
                     'MountVolume.SetUp failed for volume "s" : secret "kltest-later" not found')
    p = await client.get(Pod, "kltest-wait-vol", namespace="default")
    assert main_status(p).state.waiting.reason == "ContainerCreating"  # type: ignore[attr-defined]
    await client.create(Secret(metadata=ObjectMeta(name="kltest-later", namespace="default"),
                               string_data={"k": "finally"}))
    p = await until(client, "kltest-wait-vol", lambda p: p.status is not None and p.status.phase == "Running")
    assert await output(agent, p, 1) == ["finally"]

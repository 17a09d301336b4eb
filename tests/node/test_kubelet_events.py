"""The kubelet's Events, as `kubectl describe pod` lists them: pulls, container lifecycle,
probe failures and back-offs, with Kubernetes' reasons and messages, in order."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from api.client import Client
from api.core import Event, ExecAction, Pod, Probe
from runtime.images.registry import RegistryClient
from runtime.images.store import ImageStore
from tests.node.test_images_fixtures import kltest_dir
from tests.node.test_kubelet_pods import Agent, agent, main_status, pod, until
from tests.node.test_registry_distribution import REGISTRY, busybox_store, registry, registry_server

__all__ = ["agent", "busybox_store", "kltest_dir", "registry", "registry_server"]

pytestmark = [pytest.mark.root]


async def events_of(client: Client, p: Pod) -> list[tuple[str, str, str]]:
    """(type, reason, message) of the pod's Events, oldest first, as describe orders them."""
    items = [e for e in (await client.list(Event, namespace="default")).items
             if e.involved_object.uid == p.metadata.uid]
    items.sort(key=lambda e: (e.first_timestamp or e.event_time or e.last_timestamp, e.metadata.name or ""))  # type: ignore[arg-type,return-value]
    return [(e.type or "", e.reason or "", e.message or "") for e in items]


async def until_events(client: Client, p: Pod, want: list[tuple[str, str]], timeout: float = 30) -> list[
        tuple[str, str, str]]:
    """Wait until every (reason, message regex) of `want` has an Event; returns all of them."""
    deadline = asyncio.get_running_loop().time() + timeout
    got: list[tuple[str, str, str]] = []
    while asyncio.get_running_loop().time() < deadline:
        got = await events_of(client, p)
        if all(any(r == reason and re.fullmatch(m, msg) for _, r, msg in got) for reason, m in want):
            return got
        await asyncio.sleep(0.2)
    raise AssertionError(f"events never included {want}; got {got}")


def index(events: list[tuple[str, str, str]], reason: str, message: str) -> int:
    return next(i for i, (_, r, m) in enumerate(events) if r == reason and re.fullmatch(message, m))


async def test_lifecycle_and_liveness_events_in_order(agent: Agent, client: Client) -> None:
    live = Probe(exec=ExecAction(command=["cat", "/tmp/healthy"]), period_seconds=1, failure_threshold=2)
    await client.create(pod("kltest-ev", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 1000",
                            liveness_probe=live))
    p = await until(client, "kltest-ev", lambda p: (s := main_status(p)) is not None
                    and s.restart_count == 1)  # type: ignore[attr-defined]
    want = [("Pulled", 'Container image "busybox:latest" already present on machine'),
            ("Created", "Created container: main"),
            ("Started", "Started container main"),
            ("Unhealthy", "Liveness probe failed: cat: can't open '/tmp/healthy': No such file or directory"),
            ("Killing", "Container main failed liveness probe, will be restarted")]
    got = await until_events(client, p, want)
    assert [index(got, r, m) for r, m in want] == sorted(index(got, r, m) for r, m in want), got
    assert all(t == "Normal" for t, r, _ in got if r in ("Pulled", "Created", "Started", "Killing"))
    assert all(t == "Warning" for t, r, _ in got if r == "Unhealthy")


async def test_backoff_and_pull_failure_events(agent: Agent, client: Client) -> None:
    await client.create(pod("kltest-evcrash", "exit 3"))
    p = await until(client, "kltest-evcrash", lambda p: (s := main_status(p)) is not None
                    and s.state.waiting is not None and s.state.waiting.reason == "CrashLoopBackOff")  # type: ignore[attr-defined]
    ref = re.escape(f"kltest-evcrash_default({p.metadata.uid})")
    assert re.fullmatch(rf"back-off \d+s restarting failed container=main pod={ref}",
                        main_status(p).state.waiting.message)  # type: ignore[attr-defined]
    await until_events(client, p, [("BackOff", f"Back-off restarting failed container main in pod {ref}")])

    unreachable = pod("kltest-evpull", "true")
    unreachable.spec.containers[0].image = "127.0.0.1:9/kltest/none:1"  # the discard port: nothing answers
    p = await client.create(unreachable)
    got = await until_events(client, p, [
        ("Pulling", re.escape('Pulling image "127.0.0.1:9/kltest/none:1"')),
        ("Failed", re.escape('Failed to pull image "127.0.0.1:9/kltest/none:1": ') + ".+"),
        ("Failed", "Error: ErrImagePull"),
        ("BackOff", re.escape('Back-off pulling image "127.0.0.1:9/kltest/none:1"')),
        ("Failed", "Error: ImagePullBackOff")])
    assert index(got, "Pulling", ".*") < index(got, "Failed", "Error: ErrImagePull")

    never = pod("kltest-evnever", "true")
    never.spec.containers[0].image = "kltest-no-such-image:1"
    never.spec.containers[0].image_pull_policy = "Never"
    p = await client.create(never)
    message = 'Container image "kltest-no-such-image:1" is not present with pull policy of Never'
    await until_events(client, p, [("ErrImageNeverPull", re.escape(message)), ("Failed", "Error: ErrImageNeverPull")])
    p = await until(client, "kltest-evnever", lambda p: (s := main_status(p)) is not None
                    and s.state.waiting is not None and s.state.waiting.reason == "ErrImageNeverPull")  # type: ignore[attr-defined]
    assert main_status(p).state.waiting.message == message  # type: ignore[attr-defined]


@pytest.mark.skipif(REGISTRY is None, reason="docker-registry not installed (apt-get install docker-registry)")
async def test_a_real_pull_says_how_long_and_how_big(agent: Agent, client: Client, registry: str,
                                                      busybox_store: ImageStore, kltest_dir: Path) -> None:
    image = f"{registry}/kltest/evpull:1"
    async with RegistryClient(busybox_store) as rc:
        await rc.push("busybox:latest", image)
    from_registry = pod("kltest-evreg", "sleep 1000")
    from_registry.spec.containers[0].image = image
    p = await client.create(from_registry)
    got = await until_events(client, p, [
        ("Pulling", re.escape(f'Pulling image "{image}"')),
        ("Pulled", re.escape(f'Successfully pulled image "{image}" in ') + r"[\d.]+m?s \([\d.]+m?s including "
                   r"waiting\)\. Image size: [1-9]\d+ bytes\."),
        ("Created", "Created container: main"), ("Started", "Started container main")])
    order = [index(got, r, ".*") for r in ("Pulling", "Pulled", "Created", "Started")]
    assert order == sorted(order), got

"""The proxier's loop against a real API server: level-triggered, bursts coalesced, deletes applied.

The applier is replaced by a recorder here (nft itself is the subject of
tests/node/test_proxy_dataplane.py), so this runs without root.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping

from api.client import Client
from api.meta import ObjectMeta
from api.services import (
    SERVICE_NAME_LABEL,
    Endpoint,
    EndpointSlice,
    EndpointSlicePort,
    Service,
    ServicePort,
    ServiceSpec,
)
from proxy.proxier import Proxier
from proxy.rules import Context, Fragment


class Recorder:
    def __init__(self) -> None:
        self.applied: dict[str, Fragment] = {}
        self.updates: list[set[str]] = []
        self.resyncs = 0

    def resync(self, fragments: Mapping[str, Fragment | None]) -> None:
        self.resyncs += 1
        self.applied = {k: f for k, f in fragments.items() if f is not None}

    def update(self, changes: Mapping[str, Fragment | None]) -> bool:
        self.updates.append(set(changes))
        for key, frag in changes.items():
            if frag is None:
                self.applied.pop(key, None)
            else:
                self.applied[key] = frag
        return True


def slice_with(ips: list[str]) -> EndpointSlice:
    return EndpointSlice(metadata=ObjectMeta(name="web-x", namespace="default", labels={SERVICE_NAME_LABEL: "web"}),
                         address_type="IPv4", ports=[EndpointSlicePort(name="http", port=8080, protocol="TCP")],
                         endpoints=[Endpoint(addresses=[ip]) for ip in ips])


def targets(frag: Fragment | None) -> str:
    return " ".join(r for rules in (frag.chains.values() if frag else []) for r in rules)


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110 (the recorder is plain state, polled)
            await asyncio.sleep(0.01)


async def test_bursts_coalesce_and_the_last_state_wins(client: Client) -> None:
    proxier = Proxier(client, Context(node_name="n1"), min_interval=0.05)
    recorder = Recorder()
    proxier.applier = recorder  # type: ignore[assignment]
    await client.create(Service(metadata=ObjectMeta(name="web", namespace="default"),
                                spec=ServiceSpec(cluster_ip="10.43.0.9", ports=[
                                    ServicePort(name="http", port=80, protocol="TCP", target_port=8080)])))
    es = await client.create(slice_with(["10.244.1.2"]))
    task = asyncio.create_task(proxier.run())
    try:
        await asyncio.wait_for(proxier.synced.wait(), 5)
        assert recorder.resyncs == 1 and "10.244.1.2:8080" in targets(recorder.applied.get("default/web"))
        for i in range(3, 23):  # 20 slice writes in a burst
            es.endpoints = [Endpoint(addresses=[f"10.244.1.{i}"])]
            es = await client.update(es)
        await eventually(lambda: "10.244.1.22:8080" in targets(recorder.applied.get("default/web")))
        await asyncio.sleep(0.2)
        assert len(recorder.updates) < 20  # coalesced
        assert all(keys == {"default/web"} for keys in recorder.updates)  # only the changed Service
        await client.delete(Service, "web", namespace="default")
        await eventually(lambda: "default/web" not in recorder.applied)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

"""The ConfigMaps and Secrets the node's pods use, watched one object at a time.

    track(pod uid, refs)   --> one Informer per referenced (kind, namespace, name), with
                               fieldSelector metadata.name=NAME, started on first use and
                               stopped when no pod of the node refers to it any more
    an event on an object  --> on_change(uid) for every pod that refers to it (the pod worker
                               then rewrites the pod's volumes: an update reaches the files
                               within the watch delay, well under a second here)
    wait(refs)             --> each of those informers has listed once, so that `get` saying
                               None means "does not exist", not "not known yet"

This is Kubernetes' watch-based ConfigMap/Secret manager: the node reads only the objects its
pods name (never a whole namespace's Secrets), which is what the Node authorizer permits.
Cached objects are shared and read-only, as any informer's.

Every watcher task belongs to the kubelet's TaskGroup; `stop()` cancels them all.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from api.client import Client
from api.config import ConfigMap, Secret, spec_config_refs
from api.core import Pod
from api.informer import Informer

Kind = Literal["configmap", "secret"]
Ref = tuple[Kind, str, str]  # kind, namespace, name

SYNC_TIMEOUT = 10.0


class SyncTimeout(Exception):
    """A referenced object's first list did not arrive in time (the API server is unreachable)."""


def pod_refs(pod: Pod) -> set[Ref]:
    """Every ConfigMap and Secret the pod's volumes, env, envFrom and imagePullSecrets name
    (optional ones too: they are watched so that their later creation reaches the pod)."""
    ns = pod.metadata.namespace or "default"
    return {(kind, ns, name) for kind, name in spec_config_refs(pod.spec.to_dict())}  # type: ignore[misc]


@dataclass
class _Watch:
    informer: Informer[ConfigMap | Secret]
    task: asyncio.Task[None]


class ConfigSources:
    def __init__(self, client: Client, tg: asyncio.TaskGroup, *, on_change: Callable[[str], None]) -> None:
        self._client = client
        self._tg = tg
        self._on_change = on_change
        self._watches: dict[Ref, _Watch] = {}
        self._pods: dict[str, set[Ref]] = {}

    def track(self, uid: str, refs: set[Ref]) -> None:
        """The pod `uid` now refers to exactly `refs`: watch new ones, drop unused ones."""
        before = self._pods.get(uid, set())
        if refs:
            self._pods[uid] = set(refs)
        else:
            self._pods.pop(uid, None)
        for ref in refs - before:
            if ref not in self._watches:
                self._start(ref)
        used = set().union(*self._pods.values()) if self._pods else set()
        for ref in before - refs:
            if ref not in used and (w := self._watches.pop(ref, None)) is not None:
                w.task.cancel()

    def forget(self, uid: str) -> None:
        self.track(uid, set())

    def _start(self, ref: Ref) -> None:
        kind, ns, name = ref
        model: type[ConfigMap] | type[Secret] = ConfigMap if kind == "configmap" else Secret
        informer: Informer[ConfigMap | Secret] = Informer(self._client, model, namespace=ns,
                                                          field_selector=f"metadata.name={name}")

        def changed(*_: object) -> None:
            for uid, refs in list(self._pods.items()):
                if ref in refs:
                    self._on_change(uid)

        informer.add_handler(on_add=changed, on_update=changed, on_delete=changed)
        task = self._tg.create_task(informer.run(), name=f"kubelet-{kind}-{ns}-{name}")
        self._watches[ref] = _Watch(informer, task)

    async def wait(self, refs: set[Ref], *, timeout: float = SYNC_TIMEOUT) -> None:
        """Until every ref's informer has listed once; SyncTimeout naming the kind otherwise."""
        for ref in refs:
            w = self._watches.get(ref)
            if w is None:
                self._start(ref)
                w = self._watches[ref]
            try:
                await w.informer.wait_synced(timeout)
            except TimeoutError as e:
                raise SyncTimeout(f"failed to sync {ref[0]} cache: timed out waiting for the condition") from e

    def get(self, ref: Ref) -> ConfigMap | Secret | None:
        """The cached object, None if it does not exist (once `wait` has returned). Read-only."""
        w = self._watches.get(ref)
        if w is None:
            return None
        return w.informer.get(f"{ref[1]}/{ref[2]}")

    def watched(self) -> set[Ref]:
        return set(self._watches)

    async def stop(self) -> None:
        for w in self._watches.values():
            w.task.cancel()
        for w in list(self._watches.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await w.task
        self._watches.clear()

"""What every controller of the controller-manager shares: one informer per resource, with
the indexes the controllers look things up by, and a few helpers for owner references.

Indexes: `owner` (uid of every owner reference, for the garbage collector and for "which
pods does this ReplicaSet control"), `uid` (the object's own uid, to resolve an owner
reference without a name lookup), `node` on pods (spec.nodeName), and `service` on
EndpointSlices (`namespace/<kubernetes.io/service-name label>`).

The caches are read-only (see api.informer): controllers copy before changing anything.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from api.apps import Deployment, ReplicaSet
from api.base import KubeModel
from api.client import Client, object_meta
from api.coordination import Lease
from api.core import Namespace, Node, Pod
from api.errors import Conflict, NotFound
from api.informer import Informer, object_key
from api.meta import OwnerReference
from api.services import SERVICE_NAME_LABEL, Endpoints, EndpointSlice, Service
from api.workqueue import WorkQueue

NODE_LEASE_NAMESPACE = "kube-node-lease"


def owner_index(obj: KubeModel) -> list[str]:
    return [ref.uid for ref in object_meta(obj).owner_references or []]


def uid_index(obj: KubeModel) -> list[str]:
    uid = object_meta(obj).uid
    return [uid] if uid else []


def node_index(pod: Pod) -> list[str]:
    return [pod.spec.node_name] if pod.spec.node_name else []


def service_index(slice_: EndpointSlice) -> list[str]:
    """`namespace/service` of the Service a slice belongs to, by its service-name label."""
    name = (slice_.metadata.labels or {}).get(SERVICE_NAME_LABEL)
    return [f"{slice_.metadata.namespace}/{name}"] if name else []


_COMMON: dict[str, Callable[[Any], list[str]]] = {"owner": owner_index, "uid": uid_index}


@dataclass
class Informers:
    pods: Informer[Pod]
    replicasets: Informer[ReplicaSet]
    deployments: Informer[Deployment]
    nodes: Informer[Node]
    leases: Informer[Lease]
    namespaces: Informer[Namespace]
    services: Informer[Service]
    endpoints: Informer[Endpoints]
    endpointslices: Informer[EndpointSlice]

    @classmethod
    def create(cls, client: Client) -> Informers:
        return cls(
            pods=Informer(client, Pod, indexers={**_COMMON, "node": node_index}),
            replicasets=Informer(client, ReplicaSet, indexers=dict(_COMMON)),
            deployments=Informer(client, Deployment, indexers=dict(_COMMON)),
            nodes=Informer(client, Node, indexers=dict(_COMMON)),
            leases=Informer(client, Lease, namespace=NODE_LEASE_NAMESPACE),
            namespaces=Informer(client, Namespace),
            services=Informer(client, Service, indexers=dict(_COMMON)),
            endpoints=Informer(client, Endpoints),
            endpointslices=Informer(client, EndpointSlice, indexers={**_COMMON, "service": service_index}),
        )

    def all(self) -> list[Informer[Any]]:
        return [self.pods, self.replicasets, self.deployments, self.nodes, self.leases, self.namespaces,
                self.services, self.endpoints, self.endpointslices]


class Controller(Protocol):
    """What the manager needs of a controller: handlers to register, workers to run, a queue
    to shut down."""

    queue: WorkQueue

    def register(self) -> None: ...

    def run(self) -> Coroutine[Any, Any, None]: ...


def controller_key(obj: KubeModel, kind: str) -> str | None:
    """`namespace/name` of the object's controlling owner if it is a `kind`, else None."""
    meta = object_meta(obj)
    ref = meta.controller_ref()
    if ref is None or ref.kind != kind:
        return None
    return f"{meta.namespace}/{ref.name}" if meta.namespace else ref.name


def controller_ref(owner: KubeModel) -> OwnerReference:
    meta = object_meta(owner)
    kind = str(getattr(owner, "kind", type(owner).__name__))
    return OwnerReference(api_version=str(getattr(owner, "api_version", "v1")), kind=kind,
                          name=meta.name or "", uid=meta.uid or "", controller=True, block_owner_deletion=True)


def owner_refs_patch(obj: KubeModel, *, add: OwnerReference | None = None,
                     remove_uids: set[str] | None = None) -> dict[str, Any]:
    """A merge patch that sets ownerReferences (lists are replaced whole by merge patches), with
    the object's uid and resourceVersion as preconditions so a stale cache cannot clobber."""
    meta = object_meta(obj)
    refs = [r for r in meta.owner_references or [] if r.uid not in (remove_uids or set())]
    if add is not None:
        refs.append(add)
    return {"metadata": {"uid": meta.uid, "resourceVersion": meta.resource_version,
                         "ownerReferences": [r.to_dict() for r in refs] or None}}


T = TypeVar("T", bound=KubeModel)
STATUS_RETRIES = 3


async def write_status(client: Client, obj: T, status: Any) -> T | None:
    """PUT `status` onto `obj` (a cached object, not modified). On 409, re-read the object and
    put the same status on the fresh copy: the status was computed from other objects (pods,
    ReplicaSets), not from this one's old status, so it stays right; what the 409 usually means
    is that the cache has not yet seen this controller's previous status write. Returns the
    stored object, or None if it is gone (or was replaced by another with the same name)."""
    fresh = obj.copy_deep()
    meta = object_meta(obj)
    for attempt in range(STATUS_RETRIES):
        fresh.status = status  # type: ignore[attr-defined]
        try:
            return await client.update_status(fresh)
        except NotFound:
            return None
        except Conflict:
            if attempt == STATUS_RETRIES - 1:
                raise
        try:
            fresh = await client.get(type(obj), meta.name or "", namespace=meta.namespace)
        except NotFound:
            return None
        if object_meta(fresh).uid != meta.uid:
            return None
    return None


__all__ = ["Controller", "Informers", "controller_key", "controller_ref", "object_key", "owner_refs_patch",
           "write_status"]

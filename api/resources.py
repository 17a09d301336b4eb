"""The resources kubelite serves: one `Resource` per kind, the single table that the
API server (routes, storage keys, discovery), the client (paths) and the CLI (names,
short names) all read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from api.apps import Deployment, DeploymentList, ReplicaSet, ReplicaSetList
from api.base import KubeModel
from api.config import ConfigMap, ConfigMapList, Secret, SecretList
from api.coordination import Lease, LeaseList
from api.core import Event, EventList, Namespace, NamespaceList, Node, NodeList, Pod, PodList
from api.services import Endpoints, EndpointSlice, EndpointSliceList, EndpointsList, Service, ServiceList


@dataclass(frozen=True, slots=True)
class Resource:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    model: type[KubeModel]
    list_model: type[KubeModel]
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    # Kinds whose spec changes bump metadata.generation (see Kubernetes' strategies).
    has_generation: bool = False
    verbs: tuple[str, ...] = field(
        default=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
    )

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """`pods`, `deployments.apps`: how Kubernetes names a resource in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def prefix(self) -> str:
        """URL prefix of the group version: `/api/v1` or `/apis/apps/v1`."""
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        parts = [self.prefix()]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name:
            parts.append(name)
            if sub:
                parts.append(sub)
        return "/".join(parts)


NAMESPACES = Resource("", "v1", "Namespace", "namespaces", "namespace", False, Namespace, NamespaceList,
                      short_names=("ns",), subresources=("status", "finalize"))
PODS = Resource("", "v1", "Pod", "pods", "pod", True, Pod, PodList, short_names=("po",),
                subresources=("status", "binding", "log", "exec", "eviction"))
NODES = Resource("", "v1", "Node", "nodes", "node", False, Node, NodeList, short_names=("no",),
                 subresources=("status",))
EVENTS = Resource("", "v1", "Event", "events", "event", True, Event, EventList, short_names=("ev",))
DEPLOYMENTS = Resource("apps", "v1", "Deployment", "deployments", "deployment", True, Deployment,
                       DeploymentList, short_names=("deploy",), subresources=("status", "scale"),
                       has_generation=True)
REPLICASETS = Resource("apps", "v1", "ReplicaSet", "replicasets", "replicaset", True, ReplicaSet,
                       ReplicaSetList, short_names=("rs",), subresources=("status", "scale"),
                       has_generation=True)
LEASES = Resource("coordination.k8s.io", "v1", "Lease", "leases", "lease", True, Lease, LeaseList)
SERVICES = Resource("", "v1", "Service", "services", "service", True, Service, ServiceList, short_names=("svc",),
                    subresources=("status",))
ENDPOINTS = Resource("", "v1", "Endpoints", "endpoints", "endpoints", True, Endpoints, EndpointsList,
                     short_names=("ep",))
ENDPOINTSLICES = Resource("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", True,
                          EndpointSlice, EndpointSliceList)
CONFIGMAPS = Resource("", "v1", "ConfigMap", "configmaps", "configmap", True, ConfigMap, ConfigMapList,
                      short_names=("cm",))
SECRETS = Resource("", "v1", "Secret", "secrets", "secret", True, Secret, SecretList)

ALL: tuple[Resource, ...] = (NAMESPACES, PODS, NODES, EVENTS, SERVICES, ENDPOINTS, CONFIGMAPS, SECRETS, DEPLOYMENTS,
                             REPLICASETS, LEASES, ENDPOINTSLICES)

BY_KIND: dict[str, Resource] = {r.kind: r for r in ALL}


def for_model(model: type[KubeModel]) -> Resource:
    for r in ALL:
        if r.model is model:
            return r
    raise KeyError(f"no resource serves {model.__name__}")


def lookup(name: str) -> Resource:
    """Resolve what a user types: `pods`, `pod`, `po`, `Pod`, `deployments.apps`, `deploy`."""
    wanted = name.lower()
    for r in ALL:
        names = {r.plural, r.singular, r.kind.lower(), *r.short_names}
        if r.group:
            names |= {f"{r.plural}.{r.group}", f"{r.singular}.{r.group}"}
        if wanted in names:
            return r
    raise KeyError(f'the server doesn\'t have a resource type "{name}"')


def group_versions() -> dict[str, list[Resource]]:
    """Resources grouped by `apiVersion`, in a stable order for discovery."""
    out: dict[str, list[Resource]] = {}
    for r in ALL:
        out.setdefault(r.api_version, []).append(r)
    return out

"""The service network's kinds: Service and Endpoints (core/v1), EndpointSlice (discovery.k8s.io/v1).

A Service is a stable name and virtual address (its ClusterIP) in front of the pods its
selector picks; the EndpointSlice controller lists those pods' addresses in EndpointSlices
(and mirrors them into the older Endpoints kind); the node agents' service dataplane
(`proxy/`) and the cluster DNS (`dns/`) read the slices.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from api.base import IntOrString, KubeModel
from api.core import ObjectReference
from api.meta import ListMeta, ObjectMeta

Mapping = dict[str, Any]

# ---------------------------------------------------------------- Service (core/v1)


class ServicePort(KubeModel):
    """One port of a Service: `port` on the ClusterIP, forwarded to `targetPort` on each pod (a
    number, or the name of a container port); `nodePort` also opens it on every node."""

    name: str | None = None
    protocol: str | None = None
    app_protocol: str | None = None
    port: int
    target_port: IntOrString | None = None
    node_port: int | None = None


class ClientIPConfig(KubeModel):
    timeout_seconds: int | None = None


class SessionAffinityConfig(KubeModel):
    client_ip: ClientIPConfig | None = Field(default=None, alias="clientIP")


class ServiceSpec(KubeModel):
    """How a Service is reached (`type`, `ports`, `clusterIP`) and which pods answer (`selector`)."""

    ports: list[ServicePort] | None = None
    selector: dict[str, str] | None = None
    cluster_ip: str | None = Field(default=None, alias="clusterIP")
    cluster_ips: list[str] | None = Field(default=None, alias="clusterIPs")
    type: str | None = None
    external_ips: list[str] | None = Field(default=None, alias="externalIPs")
    session_affinity: str | None = None
    session_affinity_config: SessionAffinityConfig | None = None
    load_balancer_ip: str | None = Field(default=None, alias="loadBalancerIP")
    load_balancer_source_ranges: list[str] | None = None
    load_balancer_class: str | None = None
    allocate_load_balancer_node_ports: bool | None = None
    external_name: str | None = None
    external_traffic_policy: str | None = None
    internal_traffic_policy: str | None = None
    health_check_node_port: int | None = None
    publish_not_ready_addresses: bool | None = None
    ip_families: list[str] | None = None
    ip_family_policy: str | None = None
    traffic_distribution: str | None = None


class LoadBalancerIngress(KubeModel):
    ip: str | None = None
    hostname: str | None = None
    ip_mode: str | None = None
    ports: list[Mapping] | None = None


class LoadBalancerStatus(KubeModel):
    ingress: list[LoadBalancerIngress] | None = None


class ServiceStatus(KubeModel):
    load_balancer: LoadBalancerStatus | None = None
    conditions: list[Mapping] | None = None


class Service(KubeModel):
    """A stable virtual address and DNS name for a changing set of pods: connections to
    `clusterIP:port` are spread over the ready pods that match `selector`."""

    api_version: Literal["v1"] = "v1"
    kind: Literal["Service"] = "Service"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ServiceSpec = Field(default_factory=ServiceSpec)
    status: ServiceStatus | None = None


class ServiceList(KubeModel):
    api_version: Literal["v1"] = "v1"
    kind: Literal["ServiceList"] = "ServiceList"
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[Service] = Field(default_factory=list)


# ---------------------------------------------------------------- Endpoints (core/v1)


class EndpointAddress(KubeModel):
    ip: str
    hostname: str | None = None
    node_name: str | None = None
    target_ref: ObjectReference | None = None


class EndpointPort(KubeModel):
    name: str | None = None
    port: int
    protocol: str | None = None
    app_protocol: str | None = None


class EndpointSubset(KubeModel):
    addresses: list[EndpointAddress] | None = None
    not_ready_addresses: list[EndpointAddress] | None = None
    ports: list[EndpointPort] | None = None


class Endpoints(KubeModel):
    """The addresses behind a Service, in the older one-object-per-Service form (kept as a
    mirror of the EndpointSlices for clients that still read it)."""

    api_version: Literal["v1"] = "v1"
    kind: Literal["Endpoints"] = "Endpoints"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    subsets: list[EndpointSubset] | None = None


class EndpointsList(KubeModel):
    api_version: Literal["v1"] = "v1"
    kind: Literal["EndpointsList"] = "EndpointsList"
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[Endpoints] = Field(default_factory=list)


# ---------------------------------------------------------------- EndpointSlice (discovery.k8s.io/v1)


class EndpointConditions(KubeModel):
    """`ready`: send new connections here; `serving`: able to answer (also while terminating);
    `terminating`: the pod is being deleted."""

    ready: bool | None = None
    serving: bool | None = None
    terminating: bool | None = None


class Endpoint(KubeModel):
    addresses: list[str]
    conditions: EndpointConditions | None = None
    hostname: str | None = None
    target_ref: ObjectReference | None = None
    node_name: str | None = None
    zone: str | None = None
    hints: Mapping | None = None
    deprecated_topology: dict[str, str] | None = None


class EndpointSlicePort(KubeModel):
    name: str | None = None
    protocol: str | None = None
    port: int | None = None
    app_protocol: str | None = None


class EndpointSlice(KubeModel):
    """A part (at most 100 endpoints) of a Service's endpoints, labelled
    `kubernetes.io/service-name`: what the service dataplane and the cluster DNS read."""

    api_version: Literal["discovery.k8s.io/v1"] = "discovery.k8s.io/v1"
    kind: Literal["EndpointSlice"] = "EndpointSlice"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    address_type: str
    endpoints: list[Endpoint] = Field(default_factory=list)
    ports: list[EndpointSlicePort] | None = None


class EndpointSliceList(KubeModel):
    api_version: Literal["discovery.k8s.io/v1"] = "discovery.k8s.io/v1"
    kind: Literal["EndpointSliceList"] = "EndpointSliceList"
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[EndpointSlice] = Field(default_factory=list)


SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
SLICE_CONTROLLER = "endpointslice-controller.k8s.io"

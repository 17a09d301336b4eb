"""core/v1 kinds: Namespace, Pod, Node, Event, Binding.

Fields that real manifests commonly carry but kubelite does not act on yet
(securityContext, most volume sources, pod affinity, ...) are declared as plain
mappings so that Strict field validation accepts them; `api.warnings` names them
in a `Warning` header so a user knows they are ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from api.base import IntOrString, KubeModel, MicroTime, Quantity, Time
from api.config import (
    ConfigMapKeySelector,
    ConfigMapVolumeSource,
    EnvFromSource,
    SecretKeySelector,
    SecretVolumeSource,
)
from api.meta import ListMeta, ObjectMeta

Mapping = dict[str, Any]

# ---------------------------------------------------------------- containers


class ObjectFieldSelector(KubeModel):
    """The downward API: a field of the pod (`metadata.name`, `status.podIP`, ...)."""

    api_version: str | None = None
    field_path: str


class ResourceFieldSelector(KubeModel):
    """The downward API: a container's limit or request (`limits.memory`), in units of `divisor`."""

    container_name: str | None = None
    resource: str
    divisor: Quantity | None = None


class EnvVarSource(KubeModel):
    field_ref: ObjectFieldSelector | None = None
    resource_field_ref: ResourceFieldSelector | None = None
    config_map_key_ref: ConfigMapKeySelector | None = None
    secret_key_ref: SecretKeySelector | None = None


class EnvVar(KubeModel):
    name: str
    value: str | None = None
    value_from: EnvVarSource | None = None


class ContainerPort(KubeModel):
    """A port the container listens on; `hostPort` also opens it on the node's address."""

    name: str | None = None
    host_port: int | None = None
    container_port: int
    protocol: str | None = None
    host_ip: str | None = Field(default=None, alias="hostIP")


class ResourceRequirements(KubeModel):
    """CPU and memory: `requests` are what the scheduler reserves on a node, `limits` what the
    kernel enforces (cgroups)."""

    limits: dict[str, Quantity] | None = None
    requests: dict[str, Quantity] | None = None
    claims: list[Mapping] | None = None


class VolumeMount(KubeModel):
    """Where a pod volume appears inside this container's filesystem."""

    name: str
    mount_path: str
    read_only: bool | None = None
    sub_path: str | None = None
    sub_path_expr: str | None = None
    mount_propagation: str | None = None
    recursive_read_only: str | None = None


class ExecAction(KubeModel):
    command: list[str] | None = None


class HTTPHeader(KubeModel):
    name: str
    value: str


class HTTPGetAction(KubeModel):
    path: str | None = None
    port: IntOrString
    host: str | None = None
    scheme: str | None = None
    http_headers: list[HTTPHeader] | None = None


class TCPSocketAction(KubeModel):
    port: IntOrString
    host: str | None = None


class Probe(KubeModel):
    """A check the kubelet runs against a container: an HTTP GET, a TCP connect or a command,
    every `periodSeconds`."""

    exec: ExecAction | None = None
    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None
    grpc: Mapping | None = None
    initial_delay_seconds: int | None = None
    timeout_seconds: int | None = None
    period_seconds: int | None = None
    success_threshold: int | None = None
    failure_threshold: int | None = None
    termination_grace_period_seconds: int | None = None


class Container(KubeModel):
    """One process tree in its own filesystem (an image), started by the kubelet inside the
    pod's shared network."""

    name: str
    image: str | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    working_dir: str | None = None
    ports: list[ContainerPort] | None = None
    env_from: list[EnvFromSource] | None = None
    env: list[EnvVar] | None = None
    resources: ResourceRequirements | None = None
    resize_policy: list[Mapping] | None = None
    restart_policy: str | None = None
    volume_mounts: list[VolumeMount] | None = None
    volume_devices: list[Mapping] | None = None
    liveness_probe: Probe | None = None
    readiness_probe: Probe | None = None
    startup_probe: Probe | None = None
    lifecycle: Mapping | None = None
    termination_message_path: str | None = None
    termination_message_policy: str | None = None
    image_pull_policy: str | None = None
    security_context: Mapping | None = None
    stdin: bool | None = None
    stdin_once: bool | None = None
    tty: bool | None = None


# ---------------------------------------------------------------- volumes


class EmptyDirVolumeSource(KubeModel):
    medium: str | None = None
    size_limit: Quantity | None = None


class HostPathVolumeSource(KubeModel):
    path: str
    type: str | None = None


class Volume(KubeModel):
    """Storage a pod's containers can mount: a fresh `emptyDir`, a `hostPath` of the node, the
    keys of a `configMap` or a `secret` as files."""

    name: str
    empty_dir: EmptyDirVolumeSource | None = None
    host_path: HostPathVolumeSource | None = None
    config_map: ConfigMapVolumeSource | None = None
    secret: SecretVolumeSource | None = None
    # Declared so manifests validate; kubelite does not provide these sources yet.
    persistent_volume_claim: Mapping | None = None
    projected: Mapping | None = None
    downward_api: Mapping | None = Field(default=None, alias="downwardAPI")
    nfs: Mapping | None = None
    csi: Mapping | None = None
    ephemeral: Mapping | None = None
    image: Mapping | None = None


# ---------------------------------------------------------------- scheduling


class Toleration(KubeModel):
    """Lets a pod be scheduled onto (or stay on) a node despite a matching taint."""

    key: str | None = None
    operator: str | None = None
    value: str | None = None
    effect: str | None = None
    toleration_seconds: int | None = None


class NodeSelectorRequirement(KubeModel):
    key: str
    operator: str
    values: list[str] | None = None


class NodeSelectorTerm(KubeModel):
    match_expressions: list[NodeSelectorRequirement] | None = None
    match_fields: list[NodeSelectorRequirement] | None = None


class NodeSelector(KubeModel):
    node_selector_terms: list[NodeSelectorTerm]


class PreferredSchedulingTerm(KubeModel):
    weight: int
    preference: NodeSelectorTerm


class NodeAffinity(KubeModel):
    required_during_scheduling_ignored_during_execution: NodeSelector | None = None
    preferred_during_scheduling_ignored_during_execution: list[PreferredSchedulingTerm] | None = None


class Affinity(KubeModel):
    node_affinity: NodeAffinity | None = None
    pod_affinity: Mapping | None = None
    pod_anti_affinity: Mapping | None = None


class LocalObjectReference(KubeModel):
    name: str | None = None


# ---------------------------------------------------------------- pod


class PodDNSConfigOption(KubeModel):
    """One resolver option, `ndots:2` as `{name: ndots, value: "2"}` (`value` absent for `edns0`)."""

    name: str | None = None
    value: str | None = None


class PodDNSConfig(KubeModel):
    """DNS settings added to those `dnsPolicy` gives (all of them when the policy is None):
    nameservers and searches are appended, options override options of the same name."""

    nameservers: list[str] | None = None
    searches: list[str] | None = None
    options: list[PodDNSConfigOption] | None = None


class PodSpec(KubeModel):
    """What a pod should run: its containers, their volumes, restart policy, and scheduling
    constraints."""

    containers: list[Container]
    init_containers: list[Container] | None = None
    ephemeral_containers: list[Mapping] | None = None
    volumes: list[Volume] | None = None
    restart_policy: str | None = None
    termination_grace_period_seconds: int | None = None
    active_deadline_seconds: int | None = None
    dns_policy: str | None = None
    dns_config: PodDNSConfig | None = None
    node_selector: dict[str, str] | None = None
    node_name: str | None = None
    affinity: Affinity | None = None
    tolerations: list[Toleration] | None = None
    scheduler_name: str | None = None
    priority_class_name: str | None = None
    priority: int | None = None
    preemption_policy: str | None = None
    service_account_name: str | None = None
    service_account: str | None = None
    automount_service_account_token: bool | None = None
    host_network: bool | None = None
    host_pid: bool | None = Field(default=None, alias="hostPID")
    host_ipc: bool | None = Field(default=None, alias="hostIPC")
    host_users: bool | None = None
    share_process_namespace: bool | None = None
    security_context: Mapping | None = None
    image_pull_secrets: list[LocalObjectReference] | None = None
    hostname: str | None = None
    subdomain: str | None = None
    set_hostname_as_fqdn: bool | None = Field(default=None, alias="setHostnameAsFQDN")
    host_aliases: list[Mapping] | None = None
    readiness_gates: list[Mapping] | None = None
    runtime_class_name: str | None = None
    enable_service_links: bool | None = None
    overhead: dict[str, Quantity] | None = None
    topology_spread_constraints: list[Mapping] | None = None
    os: Mapping | None = None
    scheduling_gates: list[Mapping] | None = None
    resource_claims: list[Mapping] | None = None
    resources: ResourceRequirements | None = None


class PodCondition(KubeModel):
    type: str
    status: str
    observed_generation: int | None = None
    last_probe_time: Time | None = None
    last_transition_time: Time | None = None
    reason: str | None = None
    message: str | None = None


class ContainerStateWaiting(KubeModel):
    reason: str | None = None
    message: str | None = None


class ContainerStateRunning(KubeModel):
    started_at: Time | None = None


class ContainerStateTerminated(KubeModel):
    exit_code: int
    signal: int | None = None
    reason: str | None = None
    message: str | None = None
    started_at: Time | None = None
    finished_at: Time | None = None
    container_id: str | None = Field(default=None, alias="containerID")


class ContainerState(KubeModel):
    waiting: ContainerStateWaiting | None = None
    running: ContainerStateRunning | None = None
    terminated: ContainerStateTerminated | None = None


class ContainerStatus(KubeModel):
    name: str
    state: ContainerState | None = None
    last_state: ContainerState | None = None
    ready: bool = False
    restart_count: int = 0
    image: str = ""
    image_id: str = Field(default="", alias="imageID")
    container_id: str | None = Field(default=None, alias="containerID")
    started: bool | None = None


class PodIP(KubeModel):
    ip: str


class PodStatus(KubeModel):
    """What the kubelet last observed of the pod: its phase, conditions, IPs and each
    container's state."""

    phase: str | None = None
    conditions: list[PodCondition] | None = None
    message: str | None = None
    reason: str | None = None
    nominated_node_name: str | None = None
    host_ip: str | None = Field(default=None, alias="hostIP")
    host_ips: list[PodIP] | None = Field(default=None, alias="hostIPs")
    pod_ip: str | None = Field(default=None, alias="podIP")
    pod_ips: list[PodIP] | None = Field(default=None, alias="podIPs")
    start_time: Time | None = None
    init_container_statuses: list[ContainerStatus] | None = None
    container_statuses: list[ContainerStatus] | None = None
    qos_class: str | None = None

    def condition(self, type_: str) -> PodCondition | None:
        for cond in self.conditions or []:
            if cond.type == type_:
                return cond
        return None


class Pod(KubeModel):
    """The unit Kubernetes schedules: one or more containers sharing a network namespace and
    volumes, placed on one node."""

    api_version: Literal["v1"] = "v1"
    kind: Literal["Pod"] = "Pod"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PodSpec
    status: PodStatus | None = None


class PodTemplateSpec(KubeModel):
    """The pod a Deployment or ReplicaSet stamps out: its labels must match the owner's selector."""

    metadata: ObjectMeta | None = None
    spec: PodSpec


class PodList(KubeModel):
    api_version: Literal["v1"] = "v1"
    kind: Literal["PodList"] = "PodList"
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[Pod] = Field(default_factory=list)


class ObjectReference(KubeModel):
    api_version: str | None = None
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    field_path: str | None = None


class Binding(KubeModel):
    api_version: Literal["v1"] = "v1"
    kind: Literal["Binding"] = "Binding"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    target: ObjectReference


# ---------------------------------------------------------------- namespace


class NamespaceSpec(KubeModel):
    finalizers: list[str] | None = None


class NamespaceCondition(KubeModel):
    type: str
    status: str
    last_transition_time: Time | None = None
    reason: str | None = None
    message: str | None = None


class NamespaceStatus(KubeModel):
    phase: str | None = None
    conditions: list[NamespaceCondition] | None = None


class Namespace(KubeModel):
    """A scope for names: objects in different namespaces may share a name; deleting one
    deletes its content."""

    api_version: Literal["v1"] = "v1"
    kind: Literal["Namespace"] = "Namespace"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: NamespaceSpec | None = None
    status: NamespaceStatus | None = None


class NamespaceList(KubeModel):
    api_version: Literal["v1"] = "v1"
    kind: Literal["NamespaceList"] = "NamespaceList"
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[Namespace] = Field(default_factory=list)


# ---------------------------------------------------------------- node


class Taint(KubeModel):
    """Repels pods from a node unless they tolerate it (`NoSchedule`, `PreferNoSchedule`,
    `NoExecute`)."""

    key: str
    value: str | None = None
    effect: str
    time_added: Time | None = None


class NodeSpec(KubeModel):
    """How the cluster may use a node: its pod address range, taints, and whether it is cordoned."""

    pod_cidr: str | None = Field(default=None, alias="podCIDR")
    pod_cidrs: list[str] | None = Field(default=None, alias="podCIDRs")
    provider_id: str | None = Field(default=None, alias="providerID")
    unschedulable: bool | None = None
    taints: list[Taint] | None = None


class NodeCondition(KubeModel):
    type: str
    status: str
    last_heartbeat_time: Time | None = None
    last_transition_time: Time | None = None
    reason: str | None = None
    message: str | None = None


class NodeAddress(KubeModel):
    type: str
    address: str


class DaemonEndpoint(KubeModel):
    port: int = Field(alias="Port")


class NodeDaemonEndpoints(KubeModel):
    kubelet_endpoint: DaemonEndpoint | None = None


class NodeSystemInfo(KubeModel):
    machine_id: str = Field(default="", alias="machineID")
    system_uuid: str = Field(default="", alias="systemUUID")
    boot_id: str = Field(default="", alias="bootID")
    kernel_version: str = ""
    os_image: str = ""
    container_runtime_version: str = ""
    kubelet_version: str = ""
    kube_proxy_version: str = ""
    operating_system: str = ""
    architecture: str = ""


class NodeStatus(KubeModel):
    """What the node's kubelet reports: capacity, allocatable resources, conditions such as
    Ready, addresses, images."""

    capacity: dict[str, Quantity] | None = None
    allocatable: dict[str, Quantity] | None = None
    phase: str | None = None
    conditions: list[NodeCondition] | None = None
    addresses: list[NodeAddress] | None = None
    daemon_endpoints: NodeDaemonEndpoints | None = None
    node_info: NodeSystemInfo | None = None
    images: list[Mapping] | None = None

    def condition(self, type_: str) -> NodeCondition | None:
        for cond in self.conditions or []:
            if cond.type == type_:
                return cond
        return None


class Node(KubeModel):
    """A machine that runs pods, registered and kept current by its kubelet."""

    api_version: Literal["v1"] = "v1"
    kind: Literal["Node"] = "Node"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: NodeSpec | None = None
    status: NodeStatus | None = None


class NodeList(KubeModel):
    api_version: Literal["v1"] = "v1"
    kind: Literal["NodeList"] = "NodeList"
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[Node] = Field(default_factory=list)


# ---------------------------------------------------------------- event


class EventSource(KubeModel):
    component: str | None = None
    host: str | None = None


class Event(KubeModel):
    """A record of something that happened to an object (`Scheduled`, `Pulled`, `Started`,
    `BackOff`...), shown by describe."""

    api_version: Literal["v1"] = "v1"
    kind: Literal["Event"] = "Event"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    involved_object: ObjectReference
    reason: str | None = None
    message: str | None = None
    source: EventSource | None = None
    first_timestamp: Time | None = None
    last_timestamp: Time | None = None
    count: int | None = None
    type: str | None = None
    event_time: MicroTime | None = None
    series: Mapping | None = None
    action: str | None = None
    related: ObjectReference | None = None
    reporting_component: str | None = None
    reporting_instance: str | None = None


class EventList(KubeModel):
    api_version: Literal["v1"] = "v1"
    kind: Literal["EventList"] = "EventList"
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[Event] = Field(default_factory=list)

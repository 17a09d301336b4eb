"""Defaulting, as Kubernetes' SetDefaults_* functions do, applied on create and update
before validation so that what is stored (and what a client reads back) is explicit."""

from __future__ import annotations

from api.apps import Deployment, DeploymentStrategy, ReplicaSet, RollingUpdateDeployment
from api.base import KubeModel
from api.config import DEFAULT_MODE, OPAQUE, Secret, fold_string_data
from api.core import Container, Namespace, NamespaceSpec, NamespaceStatus, Pod, PodSpec, Probe
from api.services import ClientIPConfig, LoadBalancerStatus, Service, ServiceStatus, SessionAffinityConfig

# Kubernetes' default ClientIP affinity: three hours.
AFFINITY_TIMEOUT = 10800


def _image_pull_policy(image: str | None) -> str:
    # `:latest` or no tag at all means "always pull"; a digest or other tag: if not present.
    if not image:
        return "IfNotPresent"
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _probe(probe: Probe | None) -> None:
    if probe is None:
        return
    probe.timeout_seconds = probe.timeout_seconds or 1
    probe.period_seconds = probe.period_seconds or 10
    probe.success_threshold = probe.success_threshold or 1
    probe.failure_threshold = probe.failure_threshold or 3
    if probe.http_get is not None:
        probe.http_get.path = probe.http_get.path or "/"
        probe.http_get.scheme = probe.http_get.scheme or "HTTP"


def _container(c: Container) -> None:
    c.termination_message_path = c.termination_message_path or "/dev/termination-log"
    c.termination_message_policy = c.termination_message_policy or "File"
    c.image_pull_policy = c.image_pull_policy or _image_pull_policy(c.image)
    for p in c.ports or []:
        p.protocol = p.protocol or "TCP"
    for probe in (c.liveness_probe, c.readiness_probe, c.startup_probe):
        _probe(probe)


def default_pod_spec(spec: PodSpec) -> None:
    spec.restart_policy = spec.restart_policy or "Always"
    if spec.termination_grace_period_seconds is None:
        spec.termination_grace_period_seconds = 30
    spec.dns_policy = spec.dns_policy or "ClusterFirst"
    spec.scheduler_name = spec.scheduler_name or "default-scheduler"
    if spec.security_context is None:
        spec.security_context = {}
    if spec.enable_service_links is None:
        spec.enable_service_links = True
    for c in [*(spec.init_containers or []), *spec.containers]:
        _container(c)
    for v in spec.volumes or []:
        if v.host_path is not None and v.host_path.type is None:
            v.host_path.type = ""
        source = v.config_map or v.secret
        if source is not None and source.default_mode is None:
            source.default_mode = DEFAULT_MODE


def apply_defaults(obj: KubeModel) -> None:
    """Fill in Kubernetes' defaults in place."""
    if isinstance(obj, Pod):
        default_pod_spec(obj.spec)
    elif isinstance(obj, Deployment):
        spec = obj.spec
        spec.replicas = 1 if spec.replicas is None else spec.replicas
        if spec.strategy is None or (spec.strategy.type is None and spec.strategy.rolling_update is None):
            spec.strategy = DeploymentStrategy(type="RollingUpdate")
        if spec.strategy.type is None:
            spec.strategy.type = "RollingUpdate"
        if spec.strategy.type == "RollingUpdate":
            ru = spec.strategy.rolling_update or RollingUpdateDeployment()
            ru.max_surge = "25%" if ru.max_surge is None else ru.max_surge
            ru.max_unavailable = "25%" if ru.max_unavailable is None else ru.max_unavailable
            spec.strategy.rolling_update = ru
        if spec.revision_history_limit is None:
            spec.revision_history_limit = 10
        if spec.progress_deadline_seconds is None:
            spec.progress_deadline_seconds = 600
        spec.min_ready_seconds = spec.min_ready_seconds or 0
        default_pod_spec(spec.template.spec)
    elif isinstance(obj, ReplicaSet):
        obj.spec.replicas = 1 if obj.spec.replicas is None else obj.spec.replicas
        obj.spec.min_ready_seconds = obj.spec.min_ready_seconds or 0
        if obj.spec.template is not None:
            default_pod_spec(obj.spec.template.spec)
    elif isinstance(obj, Service):
        default_service(obj)
    elif isinstance(obj, Secret):
        # Kubernetes folds stringData in its conversion, before defaulting and validation.
        fold_string_data(obj)
        obj.type = obj.type or OPAQUE
    elif isinstance(obj, Namespace):
        if obj.spec is None:
            obj.spec = NamespaceSpec()
        if obj.spec.finalizers is None:
            # The namespace controller's finalizer: deletion waits until it has emptied the namespace.
            obj.spec.finalizers = ["kubernetes"]
        if obj.status is None or obj.status.phase is None:
            obj.status = NamespaceStatus(phase="Active")
        name = obj.metadata.name
        if name:
            obj.metadata.labels = {**(obj.metadata.labels or {}), "kubernetes.io/metadata.name": name}


def default_service(svc: Service) -> None:
    spec = svc.spec
    spec.type = spec.type or "ClusterIP"
    spec.session_affinity = spec.session_affinity or "None"
    if spec.session_affinity == "ClientIP":
        cfg = spec.session_affinity_config or SessionAffinityConfig()
        cfg.client_ip = cfg.client_ip or ClientIPConfig()
        if cfg.client_ip.timeout_seconds is None:
            cfg.client_ip.timeout_seconds = AFFINITY_TIMEOUT
        spec.session_affinity_config = cfg
    for port in spec.ports or []:
        port.protocol = port.protocol or "TCP"
        if port.target_port is None or port.target_port == 0:
            port.target_port = port.port
    if spec.type != "ExternalName":
        spec.internal_traffic_policy = spec.internal_traffic_policy or "Cluster"
        spec.ip_families = spec.ip_families or ["IPv4"]
        spec.ip_family_policy = spec.ip_family_policy or "SingleStack"
    if spec.type in ("NodePort", "LoadBalancer"):
        spec.external_traffic_policy = spec.external_traffic_policy or "Cluster"
    if spec.cluster_ip and not spec.cluster_ips:
        spec.cluster_ips = [spec.cluster_ip]
    elif spec.cluster_ips and not spec.cluster_ip:
        spec.cluster_ip = spec.cluster_ips[0]
    if svc.status is None:
        svc.status = ServiceStatus(load_balancer=LoadBalancerStatus())

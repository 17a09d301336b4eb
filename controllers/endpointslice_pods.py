"""Which pods back a Service and what each one contributes, pure: shared by the EndpointSlice
core and the Endpoints mirror.

- Only a Service with a non-empty `spec.selector` is managed, and not an ExternalName one (it
  has no endpoints, only a DNS alias); a selectorless Service's endpoints belong to whoever
  writes them (the API server for `kubernetes`, a user, the DNS server).
- A pod backs the Service when it is in the Service's namespace, its labels match the
  selector, it has an IPv4 address, and it is not finished (phase Succeeded or Failed). Pods
  being deleted are still listed, marked terminating (the Endpoints mirror drops them unless
  `publishNotReadyAddresses`).
- Ports are resolved per pod: a numeric `targetPort` is taken as is (absent: the Service's
  `port`); a named one is the number of the pod's container port with that name and the
  Service port's protocol (regular containers, and init containers that run for the pod's
  whole life, `restartPolicy: Always`). A port a pod does not have is left out for that pod,
  so pods whose ports resolve differently end up with different port lists.
- Conditions, as Kubernetes': `serving` = Ready (or `publishNotReadyAddresses`),
  `terminating` = deletionTimestamp set, `ready` = serving and not terminating, except that
  `publishNotReadyAddresses` makes every listed endpoint ready (that is what the field is for:
  peers find each other before, and while, they are ready).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from api.core import ObjectReference, Pod
from api.services import Service
from controllers.podutil import is_ready

FINISHED_PHASES = ("Succeeded", "Failed")


def managed(service: Service) -> bool:
    return bool(service.spec.selector) and service.spec.type != "ExternalName"


def selects(service: Service, labels: Mapping[str, str] | None) -> bool:
    """Does the Service's selector pick an object with these labels? Never for selectorless ones."""
    selector = service.spec.selector
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def ipv4(pod: Pod) -> str | None:
    """The pod's IPv4 address (status.podIP, else the first IPv4 of status.podIPs), or None."""
    status = pod.status
    if status is None:
        return None
    candidates = [status.pod_ip] + [p.ip for p in status.pod_ips or []]
    for ip in candidates:
        if not ip:
            continue
        try:
            if ipaddress.ip_address(ip).version == 4:
                return ip
        except ValueError:
            continue
    return None


def backs(service: Service, pod: Pod) -> bool:
    """Is `pod` one of the Service's endpoints (ready or not, terminating or not)?"""
    phase = pod.status.phase if pod.status else None
    return (pod.metadata.namespace or "default") == (service.metadata.namespace or "default") \
        and selects(service, pod.metadata.labels) and phase not in FINISHED_PHASES and ipv4(pod) is not None


@dataclass(frozen=True, slots=True, order=True)
class ResolvedPort:
    """One Service port as it lands on one pod."""

    name: str
    port: int
    protocol: str
    app_protocol: str = ""  # "" rather than None: ports are sorted, and None does not compare


def resolve_ports(service: Service, pod: Pod) -> tuple[ResolvedPort, ...]:
    """The Service's ports as this pod serves them, in the Service's order (see module doc)."""
    out: list[ResolvedPort] = []
    for sp in service.spec.ports or []:
        protocol = sp.protocol or "TCP"
        target = sp.target_port
        number: int | None
        if isinstance(target, str):
            number = _named_port(pod, target, protocol)
        else:
            number = target or sp.port
        if number is not None:
            out.append(ResolvedPort(sp.name or "", number, protocol, sp.app_protocol or ""))
    return tuple(out)


def _named_port(pod: Pod, name: str, protocol: str) -> int | None:
    containers = list(pod.spec.containers)
    containers += [c for c in pod.spec.init_containers or [] if c.restart_policy == "Always"]
    for container in containers:
        for cp in container.ports or []:
            if cp.name == name and (cp.protocol or "TCP") == protocol:
                return cp.container_port
    return None


@dataclass(frozen=True, slots=True)
class PodConditions:
    ready: bool
    serving: bool
    terminating: bool


def conditions(service: Service, pod: Pod) -> PodConditions:
    publish = bool(service.spec.publish_not_ready_addresses)
    terminating = pod.metadata.deletion_timestamp is not None
    serving = publish or is_ready(pod)
    return PodConditions(ready=publish or (serving and not terminating), serving=serving, terminating=terminating)


def hostname(service: Service, pod: Pod) -> str | None:
    """The pod's DNS hostname under this Service: set only when the pod names the Service as
    its subdomain (`<hostname>.<service>.<ns>.svc...`, what headless Services publish)."""
    if pod.spec.hostname and pod.spec.subdomain == service.metadata.name:
        return pod.spec.hostname
    return None


def target_ref(pod: Pod) -> ObjectReference:
    return ObjectReference(kind="Pod", namespace=pod.metadata.namespace or "default", name=pod.metadata.name,
                           uid=pod.metadata.uid)

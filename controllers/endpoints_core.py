"""The Endpoints mirror's decisions, pure: (Service, pods, current Endpoints) -> the Endpoints to
write, or None when the current one is right.

One Endpoints object per selector Service, with the Service's name and labels (plus
`service.kubernetes.io/headless` for a headless Service), in the older shape that clients
predating EndpointSlices read:
- a pod backs the Service as for EndpointSlices (endpointslice_pods), except that pods being
  deleted are left out unless `publishNotReadyAddresses` (this API has no "terminating");
- a ready pod (or any, with `publishNotReadyAddresses`) goes to `addresses`, others to
  `notReadyAddresses`; each address has ip, hostname (pod hostname under its subdomain),
  nodeName and a targetRef to the pod;
- addresses are grouped into subsets by their resolved ports; a headless Service without ports
  gets one subset without ports; subsets, addresses and ports are sorted, so equal content
  is equal objects and nothing is written when nothing changed;
- at most 1000 addresses (ready ones first); beyond, the rest is dropped and the object is
  annotated `endpoints.kubernetes.io/over-capacity: truncated`, as Kubernetes does.
"""

from __future__ import annotations

from collections.abc import Iterable

from api.core import Pod
from api.meta import ObjectMeta
from api.services import EndpointAddress, EndpointPort, Endpoints, EndpointSubset, Service
from controllers import endpointslice_pods as pods_of
from controllers.endpointslice_core import HEADLESS_LABEL
from controllers.endpointslice_pods import ResolvedPort

MAX_ADDRESSES = 1000
OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"


def desired_labels(service: Service) -> dict[str, str] | None:
    labels = {k: v for k, v in (service.metadata.labels or {}).items() if k != HEADLESS_LABEL}
    if service.spec.cluster_ip == "None":
        labels[HEADLESS_LABEL] = ""
    return labels or None


def _address(service: Service, pod: Pod) -> EndpointAddress:
    return EndpointAddress(ip=pods_of.ipv4(pod) or "", hostname=pods_of.hostname(service, pod),
                           node_name=pod.spec.node_name, target_ref=pods_of.target_ref(pod))


def _addr_order(a: EndpointAddress) -> tuple[str, str]:
    return a.ip, (a.target_ref.uid or "") if a.target_ref else ""


def desired_subsets(service: Service, pods: Iterable[Pod]) -> tuple[list[EndpointSubset], bool]:
    """The subsets, and whether addresses were dropped to stay within MAX_ADDRESSES."""
    publish = bool(service.spec.publish_not_ready_addresses)
    headless_portless = service.spec.cluster_ip == "None" and not service.spec.ports
    groups: dict[tuple[ResolvedPort, ...], tuple[list[EndpointAddress], list[EndpointAddress]]] = {}
    for pod in pods:
        if not pods_of.backs(service, pod) or (pod.metadata.deletion_timestamp is not None and not publish):
            continue
        ports = tuple(sorted(pods_of.resolve_ports(service, pod)))
        if not ports and not headless_portless:
            continue
        ready, not_ready = groups.setdefault(ports, ([], []))
        (ready if pods_of.conditions(service, pod).ready else not_ready).append(_address(service, pod))
    budget = MAX_ADDRESSES
    truncated = False
    subsets = []
    ordered = sorted(groups.items())
    for want_ready in (True, False):  # ready addresses get the budget first
        for _ports, (ready, not_ready) in ordered:
            chosen = ready if want_ready else not_ready
            chosen.sort(key=_addr_order)
            if len(chosen) > budget:
                truncated = True
                del chosen[budget:]
            budget -= len(chosen)
    for ports, (ready, not_ready) in ordered:
        if not ready and not not_ready:
            continue
        subsets.append(EndpointSubset(
            addresses=ready or None, not_ready_addresses=not_ready or None,
            ports=[EndpointPort(name=p.name, port=p.port, protocol=p.protocol, app_protocol=p.app_protocol or None)
                   for p in ports] or None))
    return subsets, truncated


def desired(service: Service, pods: Iterable[Pod], current: Endpoints | None) -> Endpoints | None:
    """The Endpoints to write (a copy of `current` with new content, or a new object), or None
    if `current` already says it."""
    subsets, truncated = desired_subsets(service, pods)
    labels = desired_labels(service)
    if current is not None:
        annotations = dict(current.metadata.annotations or {})
    else:
        annotations = {}
    annotations.pop(OVER_CAPACITY, None)
    if truncated:
        annotations[OVER_CAPACITY] = "truncated"
    if current is not None:
        same = [s.to_dict() for s in current.subsets or []] == [s.to_dict() for s in subsets] \
            and (current.metadata.labels or None) == labels \
            and (current.metadata.annotations or {}) == annotations
        if same:
            return None
        fresh = current.copy_deep()
        fresh.subsets = subsets or None
        fresh.metadata.labels = labels
        fresh.metadata.annotations = annotations or None
        return fresh
    return Endpoints(metadata=ObjectMeta(name=service.metadata.name, namespace=service.metadata.namespace,
                                         labels=labels, annotations=annotations or None),
                     subsets=subsets or None)

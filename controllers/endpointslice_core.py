"""EndpointSlice decisions, pure: (Service, pods, the Service's existing slices) -> slices to
create, update and delete.

What the slices of a managed Service (one with a selector) look like:
- labels `kubernetes.io/service-name: <svc>`, `endpointslice.kubernetes.io/managed-by:
  endpointslice-controller.k8s.io`, the Service's own labels, and `service.kubernetes.io/headless`
  for a headless Service; a controller ownerReference to the Service (the garbage collector
  deletes them with it); generateName `<svc>-`; addressType IPv4;
- one endpoint per backing pod (see endpointslice_pods) in exactly one slice, at most
  `max_endpoints` (100) a slice, every endpoint of a slice with the same resolved ports;
- a Service that has no endpoints keeps one empty placeholder slice, as Kubernetes does, so
  that "no endpoints" is visible and different from "not synced yet".

Slices this controller does not manage (another managed-by, or none) are never touched; ours
that belong to an older Service of the same name (another uid), have another address type, or
belong to a Service that is no longer managed (lost its selector, became ExternalName) are
deleted. A Service being deleted gets no new slices (the garbage collector is deleting them;
creating more would race it), only updates and deletions.

Stability, so that a change costs writes in proportion to what changed:
- an endpoint stays in the slice that holds it; a slice is written only when one of its
  endpoints, its ports or its labels/owner changed; an unchanged pod set writes nothing;
- new endpoints first fill slices that are being written anyway (fullest first), then the
  unchanged slice that fits them most tightly, and only then new slices;
- a slice that would be deleted is reused (updated) instead of creating a new one.
Endpoints are identified by pod (namespace/name) and address, so a pod that changes readiness
is rewritten in place and one that is replaced by another of the same name too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from api.core import Pod
from api.meta import ObjectMeta, OwnerReference
from api.services import (
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    SLICE_CONTROLLER,
    Endpoint,
    EndpointConditions,
    EndpointSlice,
    EndpointSlicePort,
    Service,
)
from controllers import endpointslice_pods as pods_of
from controllers.endpointslice_pods import ResolvedPort

MAX_ENDPOINTS = 100
ADDRESS_TYPE = "IPv4"
HEADLESS_LABEL = "service.kubernetes.io/headless"

PortKey = tuple[ResolvedPort, ...]
EndpointKey = tuple[str, tuple[str, ...]]
Groups = dict[PortKey, tuple[PortKey, dict[EndpointKey, Endpoint]]]


@dataclass
class Plan:
    create: list[EndpointSlice] = field(default_factory=list)
    update: list[EndpointSlice] = field(default_factory=list)  # changed copies of existing slices
    delete: list[EndpointSlice] = field(default_factory=list)  # existing slices, as given

    def empty(self) -> bool:
        return not (self.create or self.update or self.delete)


def is_managed(slice_: EndpointSlice, service_name: str | None = None) -> bool:
    """Is this slice one of this controller's (of the named Service, if given)?"""
    labels = slice_.metadata.labels or {}
    if labels.get(MANAGED_BY_LABEL) != SLICE_CONTROLLER or SERVICE_NAME_LABEL not in labels:
        return False
    return service_name is None or labels[SERVICE_NAME_LABEL] == service_name


def desired_labels(service: Service) -> dict[str, str]:
    labels = {k: v for k, v in (service.metadata.labels or {}).items()
              if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL)}
    labels[SERVICE_NAME_LABEL] = service.metadata.name or ""
    labels[MANAGED_BY_LABEL] = SLICE_CONTROLLER
    if service.spec.cluster_ip == "None":
        labels[HEADLESS_LABEL] = ""
    return labels


def owner_ref(service: Service) -> OwnerReference:
    return OwnerReference(api_version="v1", kind="Service", name=service.metadata.name or "",
                          uid=service.metadata.uid or "", controller=True, block_owner_deletion=True)


def endpoint_for(service: Service, pod: Pod) -> Endpoint:
    cond = pods_of.conditions(service, pod)
    return Endpoint(
        addresses=[pods_of.ipv4(pod) or ""],
        conditions=EndpointConditions(ready=cond.ready, serving=cond.serving, terminating=cond.terminating),
        hostname=pods_of.hostname(service, pod),
        target_ref=pods_of.target_ref(pod),
        node_name=pod.spec.node_name,
    )


def endpoint_key(ep: Endpoint) -> EndpointKey:
    ref = ep.target_ref
    who = f"{ref.namespace}/{ref.name}" if ref is not None else ""
    return who, tuple(sorted(ep.addresses))


def slice_ports(ports: PortKey) -> list[EndpointSlicePort]:
    return [EndpointSlicePort(name=p.name, port=p.port, protocol=p.protocol, app_protocol=p.app_protocol or None)
            for p in ports]


def port_key_of(slice_: EndpointSlice) -> PortKey:
    return tuple(sorted(ResolvedPort(p.name or "", p.port or 0, p.protocol or "TCP", p.app_protocol or "")
                        for p in slice_.ports or []))


def desired_endpoints(service: Service, pods: Iterable[Pod]) -> Groups:
    """Backing pods' endpoints grouped by their (sorted) resolved ports:
    sorted key -> (ports in the Service's order, endpoint key -> endpoint), in pod-name order."""
    groups: Groups = {}
    for pod in sorted(pods, key=lambda p: p.metadata.name or ""):
        if not pods_of.backs(service, pod):
            continue
        ports = pods_of.resolve_ports(service, pod)
        ep = endpoint_for(service, pod)
        groups.setdefault(tuple(sorted(ports)), (ports, {}))[1][endpoint_key(ep)] = ep
    return groups


def _same(a: Endpoint, b: Endpoint) -> bool:
    return a.to_dict() == b.to_dict()


def _owned_by(slice_: EndpointSlice, service: Service) -> bool:
    ref = slice_.metadata.controller_ref()
    return ref is not None and ref.kind == "Service" and ref.uid == service.metadata.uid


def _meta_current(slice_: EndpointSlice, labels: dict[str, str], owner: OwnerReference) -> bool:
    refs = slice_.metadata.owner_references or []
    return (slice_.metadata.labels or {}) == labels and [r.to_dict() for r in refs] == [owner.to_dict()]


def reconcile(service: Service, pods: Iterable[Pod], slices: Sequence[EndpointSlice], *,
              max_endpoints: int = MAX_ENDPOINTS) -> Plan:
    """What to write so that the Service's slices list exactly its backing pods (module doc)."""
    if max_endpoints < 1:
        raise ValueError("max_endpoints must be >= 1")
    plan = Plan()
    ours = sorted((s for s in slices if is_managed(s, service.metadata.name)), key=lambda s: s.metadata.name or "")
    if not pods_of.managed(service):
        plan.delete = [s for s in ours if _owned_by(s, service)]
        return plan
    labels = desired_labels(service)
    owner = owner_ref(service)
    by_ports: dict[PortKey, list[EndpointSlice]] = {}
    for s in ours:
        if not _owned_by(s, service) or s.address_type != ADDRESS_TYPE:
            plan.delete.append(s)
        else:
            by_ports.setdefault(port_key_of(s), []).append(s)
    wanted = desired_endpoints(service, pods)
    total = sum(len(eps) for _, eps in wanted.values())

    for key in sorted(set(wanted) | set(by_ports)):
        ports, remaining = wanted.get(key, ((), {}))
        remaining = dict(remaining)
        new = _reconcile_group(by_ports.get(key, []), ports, remaining, plan, labels=labels, owner=owner,
                               max_endpoints=max_endpoints)
        plan.create.extend(_new_slice(service, ports, labels, owner, chunk) for chunk in new)

    if total == 0:
        _keep_placeholder(service, plan, labels=labels, owner=owner)
    _reuse_deleted(plan)
    if service.metadata.deletion_timestamp is not None:
        plan.create = []
    return plan


def _reconcile_group(existing: list[EndpointSlice], ports: PortKey, remaining: dict[EndpointKey, Endpoint],
                     plan: Plan, *, labels: dict[str, str], owner: OwnerReference,
                     max_endpoints: int) -> list[list[Endpoint]]:
    """Reconcile the slices of one port set; adds updates/deletes to `plan` and returns the
    endpoint lists of the slices to create. `remaining` is consumed."""
    want_ports = [p.to_dict() for p in slice_ports(ports)]
    updating: list[EndpointSlice] = []
    unchanged: list[EndpointSlice] = []
    for s in existing:
        kept: list[Endpoint] = []
        changed = [p.to_dict() for p in s.ports or []] != want_ports or not _meta_current(s, labels, owner)
        for ep in s.endpoints:
            want = remaining.pop(endpoint_key(ep), None)
            if want is None:  # gone, or a duplicate of one kept earlier
                changed = True
                continue
            kept.append(want)
            changed = changed or not _same(want, ep)
        if not kept or len(kept) > max_endpoints:
            changed = True
        if not kept:
            plan.delete.append(s)
        elif changed:
            fresh = s.copy_deep()
            fresh.endpoints = kept
            updating.append(fresh)
        else:
            unchanged.append(s)

    todo = list(remaining.values())
    # Slices over the limit (the limit was lowered, or someone wrote them): spill the excess.
    for s in updating:
        if len(s.endpoints) > max_endpoints:
            todo = s.endpoints[max_endpoints:] + todo
            s.endpoints = s.endpoints[:max_endpoints]
    # 1. Fill the slices that are written anyway, fullest first.
    for s in sorted(updating, key=lambda s: (-len(s.endpoints), s.metadata.name or "")):
        room = max_endpoints - len(s.endpoints)
        if room > 0 and todo:
            s.endpoints = s.endpoints + todo[:room]
            todo = todo[room:]
    # 2. What is left: the unchanged slice that fits it most tightly, else new slices.
    creates: list[list[Endpoint]] = []
    while todo:
        fit = None
        if len(todo) < max_endpoints:
            fits = [s for s in unchanged if len(s.endpoints) + len(todo) <= max_endpoints]
            fit = max(fits, key=lambda s: (len(s.endpoints), s.metadata.name or ""), default=None)
        if fit is not None:
            unchanged.remove(fit)
            fresh = fit.copy_deep()
            fresh.endpoints = fresh.endpoints + todo
            updating.append(fresh)
            todo = []
        else:
            creates.append(todo[:max_endpoints])
            todo = todo[max_endpoints:]
    for s in updating:
        s.ports = slice_ports(ports) or None
        s.metadata.labels = dict(labels)
        s.metadata.owner_references = [owner]
        s.address_type = ADDRESS_TYPE
    plan.update.extend(updating)
    return creates


def _new_slice(service: Service, ports: PortKey, labels: dict[str, str], owner: OwnerReference,
               endpoints: list[Endpoint]) -> EndpointSlice:
    return EndpointSlice(
        metadata=ObjectMeta(generate_name=f"{service.metadata.name}-", namespace=service.metadata.namespace,
                            labels=dict(labels), owner_references=[owner]),
        address_type=ADDRESS_TYPE, endpoints=endpoints, ports=slice_ports(ports) or None,
    )


def _keep_placeholder(service: Service, plan: Plan, *, labels: dict[str, str], owner: OwnerReference) -> None:
    """No endpoints: exactly one empty slice, without ports. Keep an existing one that is
    already right, else let `_reuse_deleted` turn a deleted slice into it, else create one."""
    for s in plan.delete:
        if not s.endpoints and not s.ports and _owned_by(s, service) and s.address_type == ADDRESS_TYPE \
                and _meta_current(s, labels, owner):
            plan.delete.remove(s)
            return
    plan.create.append(_new_slice(service, (), labels, owner, []))


def _reuse_deleted(plan: Plan) -> None:
    """Turn each create into an update of a slice that would otherwise be deleted: one write
    instead of two, and the slice count stays put."""
    reusable = [s for s in plan.delete if s.address_type == ADDRESS_TYPE]  # addressType is immutable
    while plan.create and reusable:
        new = plan.create.pop(0)
        old = reusable.pop(0)
        plan.delete.remove(old)
        fresh = old.copy_deep()
        fresh.metadata.labels = new.metadata.labels
        fresh.metadata.owner_references = new.metadata.owner_references
        fresh.address_type = new.address_type
        fresh.endpoints = new.endpoints
        fresh.ports = new.ports
        plan.update.append(fresh)

"""Server-side printing: `Table` responses (meta.k8s.io/v1) so that `kubectl get` and
`kubelite get` show the same columns as on Kubernetes. Each resource has one function
turning an object into its row; `wide` columns have priority 1."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from api.durations import format_age

Column = tuple[str, str, int]  # name, type, priority
Row = list[Any]


def _age(obj: dict[str, Any], now: datetime) -> str:
    ts = obj.get("metadata", {}).get("creationTimestamp")
    if not ts:
        return "<unknown>"
    created = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return format_age(max(0.0, (now - created).total_seconds()))


def _pod_status(pod: dict[str, Any]) -> str:
    """The STATUS column: the most telling reason, as kubectl computes it."""
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Pending"
    for cs in status.get("initContainerStatuses") or []:
        state = cs.get("state") or {}
        term = state.get("terminated")
        if term and term.get("exitCode") == 0:
            continue
        if term:
            reason = f"Init:{term.get('reason') or 'Error'}"
        elif state.get("waiting", {}).get("reason") not in (None, "PodInitializing"):
            reason = f"Init:{state['waiting']['reason']}"
        else:
            reason = "Init:0/" + str(len(pod.get("spec", {}).get("initContainers") or []))
        break
    else:
        for cs in reversed(status.get("containerStatuses") or []):
            state = cs.get("state") or {}
            if state.get("waiting", {}).get("reason"):
                reason = state["waiting"]["reason"]
            elif state.get("terminated"):
                term = state["terminated"]
                reason = term.get("reason") or (f"Signal:{term['signal']}" if term.get("signal")
                                                else f"ExitCode:{term.get('exitCode')}")
    if pod.get("metadata", {}).get("deletionTimestamp"):
        reason = "Terminating"
    return str(reason)


def _pod_row(pod: dict[str, Any], now: datetime) -> Row:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for cs in statuses if cs.get("ready"))
    restarts = sum(int(cs.get("restartCount") or 0) for cs in statuses)
    return [pod["metadata"]["name"], f"{ready}/{len(spec.get('containers') or [])}", _pod_status(pod), restarts,
            _age(pod, now), status.get("podIP") or "<none>", spec.get("nodeName") or "<none>", "<none>", "<none>"]


def _containers(template_spec: dict[str, Any]) -> tuple[str, str]:
    cs = template_spec.get("containers") or []
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


def _selector(sel: dict[str, Any] | None) -> str:
    parts = [f"{k}={v}" for k, v in ((sel or {}).get("matchLabels") or {}).items()]
    for e in (sel or {}).get("matchExpressions") or []:
        op = e.get("operator")
        if op in ("In", "NotIn"):
            parts.append(f"{e['key']} {op.lower()} ({','.join(e.get('values') or [])})")
        elif op == "Exists":
            parts.append(e["key"])
        else:
            parts.append(f"!{e['key']}")
    return ",".join(parts) or "<none>"


def _deployment_row(d: dict[str, Any], now: datetime) -> Row:
    spec, status = d.get("spec") or {}, d.get("status") or {}
    names, images = _containers((spec.get("template") or {}).get("spec") or {})
    return [d["metadata"]["name"], f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
            status.get("updatedReplicas", 0), status.get("availableReplicas", 0), _age(d, now), names, images,
            _selector(spec.get("selector"))]


def _replicaset_row(rs: dict[str, Any], now: datetime) -> Row:
    spec, status = rs.get("spec") or {}, rs.get("status") or {}
    names, images = _containers((spec.get("template") or {}).get("spec") or {})
    return [rs["metadata"]["name"], spec.get("replicas", 1), status.get("replicas", 0),
            status.get("readyReplicas", 0), _age(rs, now), names, images, _selector(spec.get("selector"))]


def _node_row(node: dict[str, Any], now: datetime) -> Row:
    status, spec = node.get("status") or {}, node.get("spec") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    state = "Ready" if ready and ready.get("status") == "True" else "NotReady" if ready else "Unknown"
    if spec.get("unschedulable"):
        state += ",SchedulingDisabled"
    labels = node["metadata"].get("labels") or {}
    roles = ",".join(sorted(k.rsplit("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/")))
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    info = status.get("nodeInfo") or {}
    return [node["metadata"]["name"], state, roles or "<none>", _age(node, now), info.get("kubeletVersion", ""),
            addresses.get("InternalIP", "<none>"), addresses.get("ExternalIP", "<none>"),
            info.get("osImage", ""), info.get("kernelVersion", ""), info.get("containerRuntimeVersion", "")]


def _namespace_row(ns: dict[str, Any], now: datetime) -> Row:
    return [ns["metadata"]["name"], (ns.get("status") or {}).get("phase", "Active"), _age(ns, now)]


def _event_row(ev: dict[str, Any], now: datetime) -> Row:
    obj = ev.get("involvedObject") or {}
    last = ev.get("lastTimestamp") or ev.get("eventTime") or ev["metadata"].get("creationTimestamp")
    seen = "<unknown>"
    if last:
        seen = format_age(max(0.0, (now - datetime.fromisoformat(last.replace("Z", "+00:00"))).total_seconds()))
    return [seen, ev.get("type", ""), ev.get("reason", ""), f"{(obj.get('kind') or '').lower()}/{obj.get('name', '')}",
            ev.get("message", "")]


def _lease_row(lease: dict[str, Any], now: datetime) -> Row:
    return [lease["metadata"]["name"], (lease.get("spec") or {}).get("holderIdentity", ""), _age(lease, now)]


def _more(items: list[str], total: int, *, empty: str, limit: int = 3) -> str:
    """kubectl's `a,b,c + 2 more...` for long lists."""
    text = ",".join(items[:limit])
    if total > limit:
        return f"{text} + {total - limit} more..."
    return text or empty


def _service_row(svc: dict[str, Any], now: datetime) -> Row:
    spec = svc.get("spec") or {}
    kind = spec.get("type") or "ClusterIP"
    external = ",".join(spec.get("externalIPs") or [])
    if kind == "ExternalName":
        external = spec.get("externalName") or ""
    elif kind == "LoadBalancer":
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        found = [i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")]
        external = ",".join([*found, *(spec.get("externalIPs") or [])]) or "<pending>"
    ports = [f"{p.get('port')}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/{p.get('protocol') or 'TCP'}"
             for p in spec.get("ports") or []]
    selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items()))
    return [svc["metadata"]["name"], kind, spec.get("clusterIP") or "<none>", external or "<none>",
            ",".join(ports) or "<none>", _age(svc, now), selector or "<none>"]


def _endpoints_row(ep: dict[str, Any], now: datetime) -> Row:
    shown: list[str] = []
    total = 0
    for subset in ep.get("subsets") or []:
        ports = [p.get("port") for p in subset.get("ports") or []] or [None]
        for port in ports:
            for address in subset.get("addresses") or []:
                total += 1
                ip = str(address.get("ip", ""))
                host = f"[{ip}]" if ":" in ip and port is not None else ip
                shown.append(host + (f":{port}" if port is not None else ""))
    return [ep["metadata"]["name"], _more(shown, total, empty="<none>"), _age(ep, now)]


def _endpointslice_row(es: dict[str, Any], now: datetime) -> Row:
    ports = [str(p["port"]) if p.get("port") is not None else p.get("name") or "*" for p in es.get("ports") or []]
    addresses = [a for e in es.get("endpoints") or [] for a in e.get("addresses") or []]
    return [es["metadata"]["name"], es.get("addressType", ""), _more(ports, len(ports), empty="<unset>"),
            _more(addresses, len(addresses), empty="<unset>"), _age(es, now)]


def _configmap_row(cm: dict[str, Any], now: datetime) -> Row:
    return [cm["metadata"]["name"], len(cm.get("data") or {}) + len(cm.get("binaryData") or {}), _age(cm, now)]


def _secret_row(secret: dict[str, Any], now: datetime) -> Row:
    return [secret["metadata"]["name"], secret.get("type") or "Opaque", len(secret.get("data") or {}),
            _age(secret, now)]


TABLES: dict[str, tuple[list[Column], Callable[[dict[str, Any], datetime], Row]]] = {
    "pods": ([("Name", "string", 0), ("Ready", "string", 0), ("Status", "string", 0), ("Restarts", "integer", 0),
              ("Age", "string", 0), ("IP", "string", 1), ("Node", "string", 1), ("Nominated Node", "string", 1),
              ("Readiness Gates", "string", 1)], _pod_row),
    "deployments": ([("Name", "string", 0), ("Ready", "string", 0), ("Up-to-date", "integer", 0),
                     ("Available", "integer", 0), ("Age", "string", 0), ("Containers", "string", 1),
                     ("Images", "string", 1), ("Selector", "string", 1)], _deployment_row),
    "replicasets": ([("Name", "string", 0), ("Desired", "integer", 0), ("Current", "integer", 0),
                     ("Ready", "integer", 0), ("Age", "string", 0), ("Containers", "string", 1),
                     ("Images", "string", 1), ("Selector", "string", 1)], _replicaset_row),
    "nodes": ([("Name", "string", 0), ("Status", "string", 0), ("Roles", "string", 0), ("Age", "string", 0),
               ("Version", "string", 0), ("Internal-IP", "string", 1), ("External-IP", "string", 1),
               ("OS-Image", "string", 1), ("Kernel-Version", "string", 1), ("Container-Runtime", "string", 1)],
              _node_row),
    "namespaces": ([("Name", "string", 0), ("Status", "string", 0), ("Age", "string", 0)], _namespace_row),
    "events": ([("Last Seen", "string", 0), ("Type", "string", 0), ("Reason", "string", 0),
                ("Object", "string", 0), ("Message", "string", 0)], _event_row),
    "leases": ([("Name", "string", 0), ("Holder", "string", 0), ("Age", "string", 0)], _lease_row),
    "services": ([("Name", "string", 0), ("Type", "string", 0), ("Cluster-IP", "string", 0),
                  ("External-IP", "string", 0), ("Port(s)", "string", 0), ("Age", "string", 0),
                  ("Selector", "string", 1)], _service_row),
    "endpoints": ([("Name", "string", 0), ("Endpoints", "string", 0), ("Age", "string", 0)], _endpoints_row),
    "configmaps": ([("Name", "string", 0), ("Data", "integer", 0), ("Age", "string", 0)], _configmap_row),
    "secrets": ([("Name", "string", 0), ("Type", "string", 0), ("Data", "integer", 0), ("Age", "string", 0)],
                _secret_row),
    "endpointslices": ([("Name", "string", 0), ("AddressType", "string", 0), ("Ports", "string", 0),
                        ("Endpoints", "string", 0), ("Age", "string", 0)], _endpointslice_row),
}


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def table(plural: str, objects: list[dict[str, Any]], *, resource_version: str | None = None,
          continue_: str | None = None, include_object: bool = False) -> dict[str, Any]:
    """`include_object` (`?includeObject=Object`) puts whole objects in the rows instead of
    their metadata, as Kubernetes does."""
    columns, row_for = TABLES.get(plural, ([("Name", "string", 0), ("Age", "string", 0)],
                                           lambda o, n: [o["metadata"]["name"], _age(o, n)]))
    now = datetime.now(UTC)
    meta: dict[str, Any] = {}
    if resource_version:
        meta["resourceVersion"] = resource_version
    if continue_:
        meta["continue"] = continue_
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": [
            {"name": name, "type": type_, "format": "name" if name == "Name" else "", "description": "",
             "priority": priority}
            for name, type_, priority in columns
        ],
        "rows": [
            {"cells": row_for(o, now),
             "object": o if include_object else {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                                 "metadata": o.get("metadata", {})}}
            for o in objects
        ],
    }

"""`kubelite describe TYPE NAME`: kubectl's sections for pods, deployments, replica sets,
nodes, namespaces and services (a generic key/value dump for the rest), then the object's Events.
A Service's endpoints come from its EndpointSlices (ready ones only), as kubectl shows them.

Text goes through the tabwriter with kubectl's describe settings (minwidth 0, padding 2):
`Key:\\tvalue` lines that follow each other align their values, and a line without a tab
(a section title such as `Containers:`) starts a new block, which is why kubectl's
describe output is aligned section by section. Events are those whose involvedObject is
this object (a field selector on name and namespace, then the uid), oldest first.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from api import resources
from api.apps import Deployment, ReplicaSet
from api.durations import format_age
from api.errors import NotFound
from api.resources import Resource
from api.services import SERVICE_NAME_LABEL
from cli import targets
from cli.apply import LAST_APPLIED
from cli.config import Connection
from cli.get import event_time
from cli.printers import TabWriter, error_text
from controllers.deployment_spec import find_new

Lines = list[str]


async def describe_cmd(args: argparse.Namespace, conn: Connection) -> int:
    wanted = targets.parse(args.targets)
    ns = None if args.all_namespaces else conn.namespace(args.namespace)
    failed, first = False, True
    for target in wanted.items:
        res = target.resource
        objects: list[dict[str, Any]] = []
        if target.names:
            for name in target.names:
                try:
                    objects.append(await conn.api.request("GET", res.path(ns or "default", name)))
                except NotFound as err:
                    print(error_text(err), file=sys.stderr)
                    failed = True
        else:
            listed = await conn.api.request("GET", res.path(ns if res.namespaced else None),
                                            params={"labelSelector": args.selector})
            objects = list(listed.get("items") or [])
        for obj in objects:
            if not first:
                sys.stdout.write("\n\n")
            first = False
            events = await _events(conn, res, obj)
            extra = await _replica_set_lines(conn, obj) if res is resources.DEPLOYMENTS else []
            slices = await _endpoint_slices(conn, obj) if res is resources.SERVICES else []
            writer = TabWriter(sys.stdout, minwidth=0, padding=2)
            for line in describe(res, obj, events, now=datetime.now(UTC), extra=extra, slices=slices):
                writer.write(line + "\n")
            writer.flush()
    return 1 if failed else 0


async def _events(conn: Connection, res: Resource, obj: dict[str, Any]) -> list[dict[str, Any]]:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace") or "default"
    selector = f"involvedObject.name={meta.get('name')}"
    if res.namespaced:
        selector += f",involvedObject.namespace={ns}"
    listed = await conn.api.request("GET", resources.EVENTS.path(ns if res.namespaced else None),
                                    params={"fieldSelector": selector})
    uid = meta.get("uid")
    items = [e for e in listed.get("items") or []
             if (e.get("involvedObject") or {}).get("kind") in (res.kind, None)
             and (e.get("involvedObject") or {}).get("uid") in (uid, None, "")]
    return sorted(items, key=event_time)


async def _replica_set_lines(conn: Connection, obj: dict[str, Any]) -> Lines:
    """`OldReplicaSets:` / `NewReplicaSet:` of a Deployment, as kubectl shows them."""
    from cli.rollout import owned_replica_sets

    dep = Deployment.from_dict(obj)
    rss = await owned_replica_sets(conn, dep)
    new = find_new(dep, rss)

    def show(rs: ReplicaSet) -> str:
        created = rs.status.replicas if rs.status is not None else 0
        return f"{rs.metadata.name} ({created}/{rs.spec.replicas if rs.spec.replicas is not None else 1} " \
               f"replicas created)"

    old = [show(rs) for rs in rss if rs is not new and (rs.spec.replicas or 0) > 0]
    return [f"OldReplicaSets:\t{', '.join(old) or '<none>'}", f"NewReplicaSet:\t{show(new) if new else '<none>'}"]


async def _endpoint_slices(conn: Connection, svc: dict[str, Any]) -> list[dict[str, Any]]:
    """The Service's EndpointSlices (label kubernetes.io/service-name), as kubectl reads them."""
    meta = svc.get("metadata") or {}
    listed = await conn.api.request("GET", resources.ENDPOINTSLICES.path(meta.get("namespace") or "default"),
                                    params={"labelSelector": f"{SERVICE_NAME_LABEL}={meta.get('name')}"})
    return list(listed.get("items") or [])


def describe(res: Resource, obj: dict[str, Any], events: list[dict[str, Any]], *, now: datetime,
             extra: Lines | None = None, slices: list[dict[str, Any]] | None = None) -> Lines:
    """The describe text of one object as tab-separated lines (see the module docstring);
    `extra` (a Deployment's ReplicaSets) goes between the body and the events; `slices` are a
    Service's EndpointSlices."""
    if res.kind == "Service":
        body = _service(obj, slices or [])
    else:
        body = _DESCRIBERS.get(res.kind, _generic)(obj, now)
    return [*body, *(extra or []), *events_section(events, now)]


# ---------------------------------------------------------------- helpers


def _date(ts: str | None) -> str:
    """kubectl's RFC 1123 time: `Sat, 28 Nov 2026 06:40:00 +0000`."""
    if not ts:
        return "<unset>"
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).strftime("%a, %d %b %Y %H:%M:%S %z")


def _map(title: str, values: dict[str, str] | None, sep: str = "=", indent: str = "") -> Lines:
    """`Labels:  a=b` with further entries on their own lines, `<none>` when empty."""
    items = sorted((values or {}).items())
    if not items:
        return [f"{indent}{title}:\t<none>"]
    out = [f"{indent}{title}:\t{items[0][0]}{sep}{items[0][1]}"]
    out += [f"{indent}\t{k}{sep}{v}" for k, v in items[1:]]
    return out


def _header(obj: dict[str, Any], *, namespaced: bool = True) -> Lines:
    meta = obj.get("metadata") or {}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    out = [f"Name:\t{meta.get('name')}"]
    if namespaced:
        out.append(f"Namespace:\t{meta.get('namespace')}")
    out.append(f"CreationTimestamp:\t{_date(meta.get('creationTimestamp'))}")
    return out + _map("Labels", meta.get("labels")) + _map("Annotations", annotations, sep=": ")


def _selector(selector: dict[str, Any] | None) -> str:
    labels = (selector or {}).get("matchLabels") or {}
    parts = [f"{k}={v}" for k, v in sorted(labels.items())]
    for expr in (selector or {}).get("matchExpressions") or []:
        parts.append(f"{expr.get('key')} {str(expr.get('operator')).lower()} ({','.join(expr.get('values') or [])})")
    return ",".join(parts) or "<none>"


def _containers(title: str, containers: list[dict[str, Any]], statuses: list[dict[str, Any]] | None,
                indent: str = "") -> Lines:
    if not containers:
        return []
    by_name = {s.get("name"): s for s in statuses or []}
    out = [f"{indent}{title}:"]
    for c in containers:
        # kubectl: `  web:` under a pod's Containers, `   web:` under a Pod Template's.
        out.append(f"{indent + ' ' if indent else '  '}{c.get('name')}:")
        pad = "    "
        out.append(f"{pad}Image:\t{c.get('image')}")
        ports = c.get("ports") or []
        out.append(f"{pad}Port:\t" + (", ".join(f"{p.get('containerPort')}/{p.get('protocol') or 'TCP'}"
                                               for p in ports) or "<none>"))
        out.append(f"{pad}Host Port:\t" + (", ".join(f"{p.get('hostPort') or 0}/{p.get('protocol') or 'TCP'}"
                                                    for p in ports) or "<none>"))
        if c.get("command"):
            out.append(f"{pad}Command:\t" + " ".join(c["command"]))
        if c.get("args"):
            out.append(f"{pad}Args:\t" + " ".join(c["args"]))
        if statuses is not None:
            out += _container_state(by_name.get(c.get("name")) or {}, pad)
        resources_ = c.get("resources") or {}
        for kind in ("limits", "requests"):
            if resources_.get(kind):
                out.append(f"{pad}{kind.capitalize()}:")
                out += [f"{pad}  {k}:\t{v}" for k, v in sorted(resources_[kind].items())]
        env = c.get("env") or []
        out.append(f"{pad}Environment:\t" + ("" if env else "<none>"))
        out += [f"{pad}  {e.get('name')}:\t{e.get('value', '<set from a source>')}" for e in env]
        mounts = c.get("volumeMounts") or []
        out.append(f"{pad}Mounts:\t" + ("" if mounts else "<none>"))
        out += [f"{pad}  {m.get('mountPath')} from {m.get('name')} ({'ro' if m.get('readOnly') else 'rw'})"
                for m in mounts]
    return out


def _container_state(status: dict[str, Any], pad: str) -> Lines:
    state = status.get("state") or {}
    out: Lines = []
    if "running" in state:
        out += [f"{pad}State:\tRunning", f"{pad}  Started:\t{_date(state['running'].get('startedAt'))}"]
    elif "terminated" in state:
        t = state["terminated"]
        out += [f"{pad}State:\tTerminated", f"{pad}  Reason:\t{t.get('reason')}",
                f"{pad}  Exit Code:\t{t.get('exitCode')}"]
    elif "waiting" in state:
        out += [f"{pad}State:\tWaiting", f"{pad}  Reason:\t{state['waiting'].get('reason')}"]
    else:
        out.append(f"{pad}State:\tWaiting")
    out.append(f"{pad}Ready:\t{'True' if status.get('ready') else 'False'}")
    out.append(f"{pad}Restart Count:\t{status.get('restartCount', 0)}")
    return out


def _volumes(volumes: list[dict[str, Any]] | None, indent: str = "") -> Lines:
    if not volumes:
        return [f"{indent}Volumes:\t<none>"]
    out = [f"{indent}Volumes:"]
    for v in volumes:
        out.append(f"{indent}  {v.get('name')}:")
        if "emptyDir" in v:
            out.append(f"{indent}    Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)")
        elif "hostPath" in v:
            out += [f"{indent}    Type:\tHostPath (bare host directory volume)",
                    f"{indent}    Path:\t{(v['hostPath'] or {}).get('path')}"]
        else:
            kinds = [k for k in v if k != "name"]
            out.append(f"{indent}    Type:\t{kinds[0] if kinds else '<unknown>'}")
    return out


def _conditions(conditions: list[dict[str, Any]] | None, *, reason: bool = False) -> Lines:
    if not conditions:
        return []
    head = "  Type\tStatus" + ("\tReason" if reason else "")
    rule = "  ----\t------" + ("\t------" if reason else "")
    rows = [f"  {c.get('type')}\t{c.get('status')}" + (f"\t{c.get('reason') or ''}" if reason else "")
            for c in conditions]
    return ["Conditions:", head, rule, *rows]


def _owner(meta: dict[str, Any]) -> Lines:
    ref = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
    return [f"Controlled By:\t{ref.get('kind')}/{ref.get('name')}"] if ref else []


def events_section(events: list[dict[str, Any]], now: datetime) -> Lines:
    if not events:
        return ["Events:\t<none>"]
    out = ["Events:", "  Type\tReason\tAge\tFrom\tMessage", "  ----\t------\t----\t----\t-------"]
    for e in events:
        out.append(f"  {e.get('type', '')}\t{e.get('reason', '')}\t{_event_age(e, now)}\t"
                   f"{_source(e)}\t{(e.get('message') or '').strip()}")
    return out


def _ago(ts: str, now: datetime) -> str:
    return format_age(max(0.0, (now - datetime.fromisoformat(ts.replace("Z", "+00:00"))).total_seconds()))


def _event_age(e: dict[str, Any], now: datetime) -> str:
    last = event_time(e)
    first = str(e.get("firstTimestamp") or e.get("eventTime") or last)
    count = int(e.get("count") or 1)
    if not last:
        return "<unknown>"
    if count > 1:
        return f"{_ago(last, now)} (x{count} over {_ago(first, now)})"
    return _ago(last, now)


def _source(e: dict[str, Any]) -> str:
    source = e.get("source") or {}
    component = source.get("component") or e.get("reportingComponent") or ""
    return f"{component}, {source['host']}" if source.get("host") else component


# ---------------------------------------------------------------- per kind


def _pod(obj: dict[str, Any], now: datetime) -> Lines:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    out = _header(obj)[:2]
    out.append(f"Priority:\t{spec.get('priority', 0)}")
    out.append(f"Service Account:\t{spec.get('serviceAccountName') or 'default'}")
    node = spec.get("nodeName")
    out.append(f"Node:\t{node + '/' + status['hostIP'] if node and status.get('hostIP') else node or '<none>'}")
    if status.get("startTime"):
        out.append(f"Start Time:\t{_date(status['startTime'])}")
    out += _header(obj)[3:]
    phase = "Terminating" if meta.get("deletionTimestamp") else status.get("phase") or "Pending"
    out.append(f"Status:\t{phase}")
    if status.get("reason"):
        out.append(f"Reason:\t{status['reason']}")
    out.append(f"IP:\t{status.get('podIP') or ''}")
    out += _owner(meta)
    out += _containers("Init Containers", spec.get("initContainers") or [], status.get("initContainerStatuses") or [])
    out += _containers("Containers", spec.get("containers") or [], status.get("containerStatuses") or [])
    out += _conditions(status.get("conditions"))
    out += _volumes(spec.get("volumes"))
    out.append(f"QoS Class:\t{status.get('qosClass') or 'BestEffort'}")
    out += _map("Node-Selectors", spec.get("nodeSelector"))
    tolerations = [f"{t.get('key', '')}{'=' + t['value'] if t.get('value') else ''}"
                   f"{':' + t['effect'] if t.get('effect') else ''}"
                   f"{' op=' + t['operator'] if t.get('operator') == 'Exists' and not t.get('key') else ''}"
                   f"{' for ' + str(t['tolerationSeconds']) + 's' if t.get('tolerationSeconds') else ''}"
                   for t in spec.get("tolerations") or []]
    out.append(f"Tolerations:\t{tolerations[0] if tolerations else '<none>'}")
    out += [f"\t{t}" for t in tolerations[1:]]
    return out


def _template(template: dict[str, Any]) -> Lines:
    meta, spec = template.get("metadata") or {}, template.get("spec") or {}
    out = ["Pod Template:", *_map("Labels", meta.get("labels"), indent="  ")]
    if meta.get("annotations"):
        out += _map("Annotations", meta.get("annotations"), sep=": ", indent="  ")
    out += _containers("Init Containers", spec.get("initContainers") or [], None, indent="  ")
    out += _containers("Containers", spec.get("containers") or [], None, indent="  ")
    return out + _volumes(spec.get("volumes"), indent="  ")


def _deployment(obj: dict[str, Any], now: datetime) -> Lines:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    out = _header(obj)
    out.append(f"Selector:\t{_selector(spec.get('selector'))}")
    out.append(f"Replicas:\t{spec.get('replicas', 1)} desired | {status.get('updatedReplicas', 0)} updated | "
               f"{status.get('replicas', 0)} total | {status.get('availableReplicas', 0)} available | "
               f"{status.get('unavailableReplicas', 0)} unavailable")
    strategy = spec.get("strategy") or {}
    out.append(f"StrategyType:\t{strategy.get('type', 'RollingUpdate')}")
    out.append(f"MinReadySeconds:\t{spec.get('minReadySeconds', 0)}")
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        rolling = strategy.get("rollingUpdate") or {}
        out.append(f"RollingUpdateStrategy:\t{rolling.get('maxUnavailable', '25%')} max unavailable, "
                   f"{rolling.get('maxSurge', '25%')} max surge")
    if spec.get("paused"):
        out.append("Paused:\ttrue")
    out += _template(spec.get("template") or {})
    return out + _conditions(status.get("conditions"), reason=True)


def _replicaset(obj: dict[str, Any], now: datetime) -> Lines:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    out = _header(obj)
    out.append(f"Selector:\t{_selector(spec.get('selector'))}")
    out += _owner(meta)
    out.append(f"Replicas:\t{status.get('replicas', 0)} current / {spec.get('replicas', 1)} desired")
    out.append(f"Pods Status:\t{status.get('readyReplicas', 0)} Ready / {status.get('availableReplicas', 0)} "
               f"Available")
    out += _template(spec.get("template") or {})
    return out + _conditions(status.get("conditions"), reason=True)


def _node(obj: dict[str, Any], now: datetime) -> Lines:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    out = _header(obj, namespaced=False)
    taints = [f"{t.get('key')}{'=' + t['value'] if t.get('value') else ''}:{t.get('effect')}"
              for t in spec.get("taints") or []]
    out.append(f"Taints:\t{taints[0] if taints else '<none>'}")
    out += [f"\t{t}" for t in taints[1:]]
    out.append(f"Unschedulable:\t{'true' if spec.get('unschedulable') else 'false'}")
    conditions = status.get("conditions") or []
    if conditions:
        out += ["Conditions:", "  Type\tStatus\tLastHeartbeatTime\tReason\tMessage",
                "  ----\t------\t-----------------\t------\t-------"]
        out += [f"  {c.get('type')}\t{c.get('status')}\t{_date(c.get('lastHeartbeatTime'))}\t"
                f"{c.get('reason') or ''}\t{c.get('message') or ''}" for c in conditions]
    out.append("Addresses:")
    out += [f"  {a.get('type')}:\t{a.get('address')}" for a in status.get("addresses") or []]
    for title, key in (("Capacity", "capacity"), ("Allocatable", "allocatable")):
        if status.get(key):
            out.append(f"{title}:")
            out += [f"  {k}:\t{v}" for k, v in sorted(status[key].items())]
    out.append(f"PodCIDR:\t{spec.get('podCIDR') or '<none>'}")
    return out


def _namespace(obj: dict[str, Any], now: datetime) -> Lines:
    meta = obj.get("metadata") or {}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    return [f"Name:\t{meta.get('name')}", *_map("Labels", meta.get("labels")),
            *_map("Annotations", annotations, sep=": "),
            f"Status:\t{(obj.get('status') or {}).get('phase', 'Active')}"]


def slice_endpoints(slices: list[dict[str, Any]], port_name: str | None) -> str:
    """`10.244.1.2:80,10.244.2.3:80 + 1 more...`: the ready endpoints of the slices' port of
    that name (the addresses alone for slices without ports), `<none>` when there are none."""
    shown: list[str] = []
    for es in slices:
        ready = [a for e in es.get("endpoints") or [] if (e.get("conditions") or {}).get("ready") is not False
                 for a in e.get("addresses") or []]
        ports = es.get("ports")
        if not ports:
            shown += ready
            continue
        for p in ports:
            if (p.get("name") or "") == (port_name or "") and p.get("port") is not None:
                shown += [f"[{a}]:{p['port']}" if ":" in a else f"{a}:{p['port']}" for a in ready]
    text = ",".join(shown[:3])
    return f"{text} + {len(shown) - 3} more..." if len(shown) > 3 else text or "<none>"


def _service(obj: dict[str, Any], slices: list[dict[str, Any]]) -> Lines:
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    out = [f"Name:\t{meta.get('name')}", f"Namespace:\t{meta.get('namespace')}", *_map("Labels", meta.get("labels")),
           *_map("Annotations", annotations, sep=": ")]
    selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items()))
    out.append(f"Selector:\t{selector or '<none>'}")
    out.append(f"Type:\t{spec.get('type') or 'ClusterIP'}")
    if spec.get("ipFamilyPolicy"):
        out.append(f"IP Family Policy:\t{spec['ipFamilyPolicy']}")
    out.append(f"IP Families:\t{','.join(spec.get('ipFamilies') or []) or '<none>'}")
    out.append(f"IP:\t{spec.get('clusterIP') or ''}")
    out.append(f"IPs:\t{','.join(spec.get('clusterIPs') or []) or '<none>'}")
    if spec.get("externalIPs"):
        out.append(f"External IPs:\t{','.join(spec['externalIPs'])}")
    if spec.get("type") == "ExternalName":
        out.append(f"External Name:\t{spec.get('externalName') or ''}")
    for p in spec.get("ports") or []:
        name, proto = p.get("name") or "<unset>", p.get("protocol") or "TCP"
        out.append(f"Port:\t{name}\t{p.get('port')}/{proto}")
        out.append(f"TargetPort:\t{p.get('targetPort', p.get('port'))}/{proto}")
        if p.get("nodePort"):
            out.append(f"NodePort:\t{name}\t{p['nodePort']}/{proto}")
        out.append(f"Endpoints:\t{slice_endpoints(slices, p.get('name'))}")
    out.append(f"Session Affinity:\t{spec.get('sessionAffinity') or 'None'}")
    timeout = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get("timeoutSeconds")
    if spec.get("sessionAffinity") == "ClientIP" and timeout:
        out.append(f"Session Affinity Timeout:\t{timeout}s")
    if spec.get("externalTrafficPolicy"):
        out.append(f"External Traffic Policy:\t{spec['externalTrafficPolicy']}")
    if spec.get("internalTrafficPolicy"):
        out.append(f"Internal Traffic Policy:\t{spec['internalTrafficPolicy']}")
    return out


def _generic(obj: dict[str, Any], now: datetime) -> Lines:
    meta = obj.get("metadata") or {}
    out = _header(obj, namespaced=bool(meta.get("namespace")))
    for section in ("spec", "status"):
        if isinstance(obj.get(section), dict):
            out.append(f"{section.capitalize()}:")
            out += _flatten(obj[section], "  ")
    for key, value in obj.items():
        if key not in ("apiVersion", "kind", "metadata", "spec", "status"):
            out.append(f"{key[0].upper() + key[1:]}:\t{value}")
    return out


def _flatten(value: dict[str, Any], indent: str) -> Lines:
    out: Lines = []
    for key, item in value.items():
        if isinstance(item, dict):
            out.append(f"{indent}{key}:")
            out += _flatten(item, indent + "  ")
        else:
            out.append(f"{indent}{key}:\t{item}")
    return out


_DESCRIBERS: dict[str, Callable[[dict[str, Any], datetime], Lines]] = {
    "Pod": _pod, "Deployment": _deployment, "ReplicaSet": _replicaset, "Node": _node, "Namespace": _namespace,
}

"""`kubelite expose (deployment|pod|replicaset) NAME --port P`: a Service in front of what an
object runs, as `kubectl expose` makes it.

    selector   --selector, else the Deployment's/ReplicaSet's spec.selector.matchLabels (match
               expressions cannot be a Service selector: refused), else the Pod's labels
    ports      --port P [--target-port T] (T defaults to P), else every containerPort of the
               object's pod template (named port-1, port-2... when several, as kubectl names them)
    labels     the exposed object's labels; name: --name, else the object's

`service_for` is the pure part (object dict + flags -> Service dict); the verb fetches the
object, POSTs the Service and prints `service/NAME exposed`.
"""

from __future__ import annotations

import argparse
from typing import Any

from api import resources
from api.resources import Resource
from cli.config import Connection, add_connection_flags
from cli.objects import run

KINDS = {"deployment": resources.DEPLOYMENTS, "deployments": resources.DEPLOYMENTS, "deploy": resources.DEPLOYMENTS,
         "replicaset": resources.REPLICASETS, "replicasets": resources.REPLICASETS, "rs": resources.REPLICASETS,
         "pod": resources.PODS, "pods": resources.PODS, "po": resources.PODS}


class ExposeError(ValueError):
    """The object cannot be exposed as asked; the message says why and what to pass."""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("expose", help="make a Service for a deployment, replica set or pod",
                              description="Create a Service that selects the pods of a deployment, replica set "
                              "or pod, as `kubectl expose` does.")
    p.add_argument("targets", nargs="+", metavar="TYPE NAME | TYPE/NAME",
                   help="deployment|deploy, replicaset|rs, pod|po and the object's name")
    p.add_argument("--port", metavar="P", help="the Service's port (default: the containers' ports)")
    p.add_argument("--target-port", metavar="T", help="container port number or name (default: --port)")
    p.add_argument("--protocol", choices=("TCP", "UDP"), help="of the Service's port (default TCP)")
    p.add_argument("--type", choices=("ClusterIP", "NodePort"), default="ClusterIP", help="default ClusterIP")
    p.add_argument("--name", help="name of the Service (default: the object's)")
    p.add_argument("--selector", metavar="K=V[,K=V]", help="pods to select (default: the object's selector)")
    p.add_argument("--node-port", type=int, metavar="N", help="with --type NodePort: this port on every node")
    p.add_argument("--cluster-ip", metavar="IP", help="ask for this ClusterIP ('None' for a headless Service)")
    p.add_argument("-n", "--namespace", metavar="NS", help="namespace (default: the context's, else default)")
    add_connection_flags(p)
    p.set_defaults(func=run(expose_cmd))


def parse_target(words: list[str]) -> tuple[Resource, str]:
    if len(words) == 1 and "/" in words[0]:
        kind, _, name = words[0].partition("/")
    elif len(words) == 2:
        kind, name = words
    else:
        raise ExposeError("expose needs TYPE NAME or TYPE/NAME, e.g. `kubelite expose deployment web --port 80`")
    res = KINDS.get(kind.lower())
    if res is None or not name:
        raise ExposeError(f'cannot expose a {kind}: only deployments, replica sets and pods can be exposed')
    return res, name


def _int_or_name(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def _selector(obj: dict[str, Any], flag: str | None) -> dict[str, str]:
    if flag:
        out: dict[str, str] = {}
        for part in flag.split(","):
            key, eq, value = part.partition("=")
            if not eq or not key:
                raise ExposeError(f"--selector: {part!r} is not KEY=VALUE")
            out[key.strip()] = value.strip()
        return out
    if obj.get("kind") == "Pod":
        labels = dict((obj.get("metadata") or {}).get("labels") or {})
        if not labels:
            raise ExposeError(f"the pod {obj['metadata']['name']} has no labels to select it by; pass --selector")
        return labels
    selector = (obj.get("spec") or {}).get("selector") or {}
    if selector.get("matchExpressions"):
        raise ExposeError("couldn't convert expressions to a map-based selector (a Service selects by labels "
                          "only); pass --selector")
    labels = dict(selector.get("matchLabels") or {})
    if not labels:
        raise ExposeError(f"{obj['metadata']['name']} has no matchLabels selector; pass --selector")
    return labels


def _container_ports(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj.get("spec") or {}
    pod_spec = spec if obj.get("kind") == "Pod" else (spec.get("template") or {}).get("spec") or {}
    return [p for c in pod_spec.get("containers") or [] for p in c.get("ports") or []]


def service_for(obj: dict[str, Any], *, port: str | None = None, target_port: str | None = None,
                protocol: str | None = None, type_: str = "ClusterIP", name: str | None = None,
                selector: str | None = None, node_port: int | None = None,
                cluster_ip: str | None = None) -> dict[str, Any]:
    """The Service `kubectl expose` would make for `obj` (a Deployment, ReplicaSet or Pod)."""
    meta = obj.get("metadata") or {}
    ports: list[dict[str, Any]]
    if port is not None:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ExposeError(f"--port {port}: must be a number from 1 to 65535")
        ports = [{"port": int(port), "protocol": protocol or "TCP",
                  "targetPort": _int_or_name(target_port) if target_port else int(port)}]
    else:
        found = _container_ports(obj)
        if not found:
            raise ExposeError(f"couldn't find port via --port flag or introspection: {meta.get('name')} declares no "
                              "containerPort; pass --port")
        ports = [{"port": p["containerPort"], "protocol": protocol or p.get("protocol") or "TCP",
                  "targetPort": _int_or_name(target_port) if target_port else p["containerPort"]} for p in found]
        if len(ports) > 1:
            for i, p in enumerate(ports, 1):
                p["name"] = f"port-{i}"
    if node_port is not None:
        if type_ != "NodePort":
            raise ExposeError("--node-port needs --type NodePort")
        for p in ports:
            p["nodePort"] = node_port
    spec: dict[str, Any] = {"ports": ports, "selector": _selector(obj, selector), "type": type_}
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    service_meta: dict[str, Any] = {"name": name or meta.get("name")}
    if meta.get("labels"):
        service_meta["labels"] = dict(meta["labels"])
    return {"apiVersion": "v1", "kind": "Service", "metadata": service_meta, "spec": spec}


async def expose_cmd(args: argparse.Namespace, conn: Connection) -> int:
    res, name = parse_target(args.targets)
    ns = conn.namespace(args.namespace)
    obj = await conn.api.request("GET", res.path(ns, name))
    obj.setdefault("kind", res.kind)
    body = service_for(obj, port=args.port, target_port=args.target_port, protocol=args.protocol, type_=args.type,
                       name=args.name, selector=args.selector, node_port=args.node_port, cluster_ip=args.cluster_ip)
    created = await conn.api.request("POST", resources.SERVICES.path(ns), json=body)
    print(f"service/{created['metadata']['name']} exposed")
    return 0

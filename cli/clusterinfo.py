"""`kubelite cluster-info`: where the control plane and the cluster's add-on Services answer, as
`kubectl cluster-info` prints them.

The add-ons are the Services of kube-system labelled `kubernetes.io/cluster-service=true`
(the cluster DNS's `kube-dns` carries it), each shown under its `kubernetes.io/name` label
(`CoreDNS`) or its own name, with the API server's proxy URL of its first port:
`<server>/api/v1/namespaces/kube-system/services/kube-dns:dns/proxy`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from api import resources
from cli.config import Connection, add_connection_flags
from cli.objects import run

CLUSTER_SERVICE_LABEL = "kubernetes.io/cluster-service"
DISPLAY_NAME_LABEL = "kubernetes.io/name"
NAMESPACE = "kube-system"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("cluster-info", help="show where the control plane and cluster services run",
                              description="Show the addresses of the control plane and of the cluster's add-on "
                              "Services (those of kube-system labelled kubernetes.io/cluster-service=true).")
    add_connection_flags(p)
    p.set_defaults(func=run(cluster_info_cmd))


def service_link(server: str, svc: dict[str, Any]) -> str:
    """The proxy URL of an add-on Service's first port (or of the Service, without ports)."""
    meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
    ingress = (((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or [])
    ports = spec.get("ports") or []
    if ingress and ports:
        first = ingress[0]
        return f"http://{first.get('ip') or first.get('hostname')}:{ports[0].get('port')}"
    name = str(meta.get("name"))
    if ports and ports[0].get("name"):
        name = f"{name}:{ports[0]['name']}"
    return f"{server.rstrip('/')}/api/v1/namespaces/{meta.get('namespace') or NAMESPACE}/services/{name}/proxy"


def info_lines(server: str, services: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(what, where) pairs, the control plane first, then the add-ons in name order."""
    out = [("Kubernetes control plane", server.rstrip("/"))]
    for svc in sorted(services, key=lambda s: str((s.get("metadata") or {}).get("name"))):
        labels = (svc.get("metadata") or {}).get("labels") or {}
        out.append((labels.get(DISPLAY_NAME_LABEL) or str(svc["metadata"]["name"]), service_link(server, svc)))
    return out


async def cluster_info_cmd(args: argparse.Namespace, conn: Connection) -> int:
    listed = await conn.api.request("GET", resources.SERVICES.path(NAMESPACE),
                                    params={"labelSelector": f"{CLUSTER_SERVICE_LABEL}=true"})
    color = sys.stdout.isatty()
    for what, where in info_lines(conn.target.server, list(listed.get("items") or [])):
        if color:
            print(f"\033[0;32m{what}\033[0m is running at \033[0;33m{where}\033[0m")
        else:
            print(f"{what} is running at {where}")
    print("\nTo further debug and diagnose cluster problems, use 'kubelite get events -A' and 'kubelite describe'.")
    return 0

"""The `kubernetes` Service in `default`: how pods find the API server (`https://kubernetes.default`,
`KUBERNETES_SERVICE_HOST`), kept by the API server itself as in Kubernetes.

    Service       default/kubernetes   clusterIP = first address of the service range (10.43.0.1),
                                       port https 443 -> the API server's port, no selector
    Endpoints     default/kubernetes   the API server's advertised address and port
    EndpointSlice default/kubernetes   the same, for the service dataplane and DNS

A loop converges the three every `interval` seconds (creating what is missing, rewriting what
drifted), so deleting them is repaired and a restart with a new address is followed. The
writes go through the Registry like any client's (validation, allocation of 10.43.0.1).

One address is kept: with several API servers the last to write wins; Kubernetes' lease
reconciler (one lease per server, endpoints = live leases) is what a highly available control
plane needs here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from api import errors
from api.resources import ENDPOINTS, ENDPOINTSLICES, SERVICES, Resource
from api.services import SERVICE_NAME_LABEL
from apiserver.registry import Registry

log = logging.getLogger(__name__)

NAME, NAMESPACE = "kubernetes", "default"
LABELS = {"component": "apiserver", "provider": "kubernetes"}


def desired(cluster_ip: str, address: str, port: int) -> dict[Resource, dict[str, Any]]:
    """The three objects, as they should be."""
    return {
        SERVICES: {"metadata": {"name": NAME, "namespace": NAMESPACE, "labels": LABELS},
                   "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "sessionAffinity": "None",
                            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]}},
        ENDPOINTS: {"metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {"endpointslice.kubernetes.io/"
                                                                                  "skip-mirror": "true"}},
                    "subsets": [{"addresses": [{"ip": address}],
                                 "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]},
        ENDPOINTSLICES: {"metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {SERVICE_NAME_LABEL: NAME}},
                         "addressType": "IPv4",
                         "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
                         "ports": [{"name": "https", "port": port, "protocol": "TCP"}]},
    }


def _drifted(resource: Resource, current: dict[str, Any], want: dict[str, Any]) -> bool:
    if resource is SERVICES:
        return bool((current.get("spec") or {}).get("ports") != want["spec"]["ports"])
    fields = ("subsets",) if resource is ENDPOINTS else ("endpoints", "ports")
    return any(current.get(f) != want[f] for f in fields)


async def reconcile(registry: Registry, *, address: str, port: int) -> None:
    """One pass: create what is missing, rewrite what drifted."""
    for resource, want in desired(registry.services.ip(1), address, port).items():
        try:
            current = await registry.get(resource, NAMESPACE, NAME)
        except errors.NotFound:
            with contextlib.suppress(errors.AlreadyExists):
                await registry.create(resource, NAMESPACE, want)
            continue
        if _drifted(resource, current, want):
            fresh = {**current, **{k: v for k, v in want.items() if k != "metadata"}}
            if resource is SERVICES:
                fresh["spec"] = {**(current.get("spec") or {}), "ports": want["spec"]["ports"]}
            await registry.update(resource, NAMESPACE, NAME, fresh)


async def keep(registry: Registry, *, address: str, port: int, interval: float = 10.0) -> None:
    """Reconcile forever; a failed pass is retried next round."""
    while True:
        await asyncio.sleep(interval)
        try:
            await reconcile(registry, address=address, port=port)
        except Exception as err:  # etcd away, a conflict with another writer: next round
            log.warning("could not keep the kubernetes Service: %s", err)

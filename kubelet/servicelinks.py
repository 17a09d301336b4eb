"""The Docker-link style variables a container gets for Services (pure), as Kubernetes sets them.

For each Service that has a cluster IP (not headless, not ExternalName), named `db-main` with
ports `5432/TCP` (named `pg`) and `9187/TCP`:

    DB_MAIN_SERVICE_HOST=10.43.0.20          DB_MAIN_PORT=tcp://10.43.0.20:5432   (first port)
    DB_MAIN_SERVICE_PORT=5432  (first port)  DB_MAIN_PORT_5432_TCP=tcp://10.43.0.20:5432
    DB_MAIN_SERVICE_PORT_PG=5432             DB_MAIN_PORT_5432_TCP_PROTO=tcp
                                             DB_MAIN_PORT_5432_TCP_PORT=5432
                                             DB_MAIN_PORT_5432_TCP_ADDR=10.43.0.20
                                             (and the same for 9187)

Which Services: those of the pod's namespace when `enableServiceLinks` is not false, and
always `kubernetes` of the `default` namespace (so every pod finds the API server:
KUBERNETES_SERVICE_HOST/PORT); a Service named `kubernetes` in the pod's own namespace
takes its place when links are enabled, as in Kubernetes. Services are taken in name order,
so the result does not depend on the cache's order. The caller lays the container's own
`env` over these (user values win) and these over the image's ENV.
"""

from __future__ import annotations

from collections.abc import Iterable

from api.services import Service

MASTER_NAMESPACE = "default"
MASTER_SERVICES = frozenset({"kubernetes"})


def env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def has_cluster_ip(svc: Service) -> bool:
    ip = svc.spec.cluster_ip
    return bool(ip) and ip != "None" and svc.spec.type != "ExternalName"


def linked_services(services: Iterable[Service], namespace: str, *, enable_links: bool) -> list[Service]:
    chosen: dict[str, Service] = {}
    for svc in sorted(services, key=lambda s: (s.metadata.namespace != namespace, s.metadata.name or "")):
        name, ns = svc.metadata.name or "", svc.metadata.namespace or "default"
        if not has_cluster_ip(svc):
            continue
        if ns == namespace and enable_links:
            chosen[name] = svc
        elif ns == MASTER_NAMESPACE and name in MASTER_SERVICES:
            chosen.setdefault(name, svc)
    return [chosen[n] for n in sorted(chosen)]


def service_env(services: Iterable[Service], namespace: str, *, enable_links: bool = True) -> dict[str, str]:
    """The variables for the Services a pod of `namespace` sees (see the module docstring)."""
    env: dict[str, str] = {}
    for svc in linked_services(services, namespace, enable_links=enable_links):
        prefix, ip = env_name(svc.metadata.name or ""), svc.spec.cluster_ip or ""
        ports = svc.spec.ports or []
        env[f"{prefix}_SERVICE_HOST"] = ip
        if ports:
            env[f"{prefix}_SERVICE_PORT"] = str(ports[0].port)
        for p in ports:
            if p.name:
                env[f"{prefix}_SERVICE_PORT_{env_name(p.name)}"] = str(p.port)
        for i, p in enumerate(ports):
            proto = (p.protocol or "TCP").upper()
            host = f"[{ip}]" if ":" in ip else ip
            url = f"{proto.lower()}://{host}:{p.port}"
            if i == 0:
                env[f"{prefix}_PORT"] = url
            base = f"{prefix}_PORT_{p.port}_{proto}"
            env[base] = url
            env[f"{base}_PROTO"] = proto.lower()
            env[f"{base}_PORT"] = str(p.port)
            env[f"{base}_ADDR"] = ip
    return env

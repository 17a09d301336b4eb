"""The pure parts of the Service verbs: kubectl's table cells, `expose`'s Service and the
cluster-info links."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apiserver.tables import TABLES
from cli.clusterinfo import info_lines
from cli.describe import slice_endpoints
from cli.expose import ExposeError, parse_target, service_for

NOW = datetime(2026, 12, 7, tzinfo=UTC)
META = {"name": "x", "creationTimestamp": "2026-12-06T23:59:00Z"}


def row(plural: str, obj: dict[str, object]) -> list[object]:
    return TABLES[plural][1]({"metadata": META, **obj}, NOW)


def test_service_cells() -> None:
    assert row("services", {"spec": {"type": "ClusterIP", "clusterIP": "10.43.0.5", "externalIPs": ["198.51.100.9"],
                                     "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                                     "selector": {"b": "2", "a": "1"}}}) \
        == ["x", "ClusterIP", "10.43.0.5", "198.51.100.9", "53/UDP,53/TCP", "60s", "a=1,b=2"]
    assert row("services", {"spec": {"type": "LoadBalancer", "clusterIP": "10.43.0.6",
                                     "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}})[3:5] \
        == ["<pending>", "80:30080/TCP"]
    assert row("services", {"spec": {}})[1:5] == ["ClusterIP", "<none>", "<none>", "<none>"]


def test_endpoints_and_slice_cells() -> None:
    ep = {"subsets": [{"addresses": [{"ip": "10.244.1.2"}, {"ip": "fd00::2"}],
                       "ports": [{"port": 80}, {"port": 443}]}, {"addresses": [{"ip": "10.244.9.9"}]}]}
    assert row("endpoints", ep)[1] == "10.244.1.2:80,[fd00::2]:80,10.244.1.2:443 + 2 more..."
    assert row("endpoints", {})[1] == "<none>"
    assert row("endpointslices", {"addressType": "IPv4", "endpoints": [], "ports": [{"name": "http"}]})[1:4] \
        == ["IPv4", "http", "<unset>"]


def test_describe_endpoints_are_the_ready_ones_of_the_port() -> None:
    slices = [{"ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9090}],
               "endpoints": [{"addresses": ["10.244.1.2"], "conditions": {"ready": True}},
                             {"addresses": ["10.244.1.3"], "conditions": {"ready": False}},
                             {"addresses": ["10.244.1.4"]}]}]
    assert slice_endpoints(slices, "http") == "10.244.1.2:8080,10.244.1.4:8080"
    assert slice_endpoints(slices, "metrics") == "10.244.1.2:9090,10.244.1.4:9090"
    assert slice_endpoints(slices, None) == "<none>"


DEPLOY = {"kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}},
          "spec": {"selector": {"matchLabels": {"app": "web"}},
                   "template": {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 8080}]},
                                                        {"name": "b", "ports": [{"containerPort": 53,
                                                                                 "protocol": "UDP"}]}]}}}}


def test_expose_service() -> None:
    svc = service_for(DEPLOY, port="80", target_port="http")
    assert svc["metadata"] == {"name": "web", "labels": {"app": "web", "tier": "front"}}
    assert svc["spec"] == {"ports": [{"port": 80, "protocol": "TCP", "targetPort": "http"}],
                           "selector": {"app": "web"}, "type": "ClusterIP"}
    introspected = service_for(DEPLOY)["spec"]["ports"]
    assert introspected == [{"port": 8080, "protocol": "TCP", "targetPort": 8080, "name": "port-1"},
                            {"port": 53, "protocol": "UDP", "targetPort": 53, "name": "port-2"}]
    np = service_for(DEPLOY, port="80", type_="NodePort", node_port=30080, selector="app=web,v=2", name="w")
    assert np["spec"]["ports"][0]["nodePort"] == 30080 and np["spec"]["selector"] == {"app": "web", "v": "2"}
    pod = {"kind": "Pod", "metadata": {"name": "p", "labels": {"run": "p"}}, "spec": {"containers": [{}]}}
    assert service_for(pod, port="1")["spec"]["selector"] == {"run": "p"}
    with pytest.raises(ExposeError, match="map-based selector"):
        service_for({**DEPLOY, "spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "Exists"}]}}},
                    port="80")
    with pytest.raises(ExposeError, match="--node-port needs --type NodePort"):
        service_for(DEPLOY, port="80", node_port=30080)
    with pytest.raises(ExposeError, match="1 to 65535"):
        service_for(DEPLOY, port="70000")
    assert parse_target(["deploy/web"])[1] == "web" and parse_target(["rs", "r"])[0].kind == "ReplicaSet"


def test_cluster_info_links() -> None:
    dns = {"metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {"kubernetes.io/name": "CoreDNS"}},
           "spec": {"ports": [{"name": "dns", "port": 53}]}}
    plain = {"metadata": {"name": "metrics", "namespace": "kube-system"}, "spec": {"ports": [{"port": 443}]}}
    assert info_lines("https://198.51.100.1:6443/", [plain, dns]) == [
        ("Kubernetes control plane", "https://198.51.100.1:6443"),
        ("CoreDNS", "https://198.51.100.1:6443/api/v1/namespaces/kube-system/services/kube-dns:dns/proxy"),
        ("metrics", "https://198.51.100.1:6443/api/v1/namespaces/kube-system/services/metrics/proxy")]

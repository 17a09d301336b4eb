"""The service network on `kubelite up --nodes 3`, as a user meets it: a Deployment exposed by
`kubelite expose`, found by name from pods on every node (the C library's resolver, busybox nslookup), reached
through its ClusterIP and NodePort, traffic moving within a second when a pod goes, and what
`kubectl get svc,endpointslices` and `kubectl cluster-info` show."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.test_up import BIN, run, up_cluster

pytestmark = [pytest.mark.root, pytest.mark.slow]
NS = "kltest-svc"


class Cluster:
    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig

    def kubelite(self, *args: str, ok: bool = True, timeout: float = 60) -> str:
        result = run(args[0], "--kubeconfig", str(self.kubeconfig), *args[1:], timeout=timeout)
        if ok:
            assert result.returncode == 0, f"kubelite {' '.join(args)}: {result.stdout}{result.stderr}"
        return result.stdout

    def kubectl(self, *args: str) -> str:
        result = run("kubectl", *args, kubeconfig=self.kubeconfig)
        assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json"))

    def sh(self, pod: str, script: str, *, ok: bool = True) -> str:
        return self.kubelite("exec", pod, "-n", NS, "--", "sh", "-c", script, ok=ok)


def wait(what: str, condition: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


HTTPD = ("mkdir -p /www && echo $(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with up_cluster("--nodes", "3") as (_state, kubeconfig):
        c = Cluster(kubeconfig)
        c.kubelite("create", "namespace", NS)
        db = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "db", "namespace": NS},
              "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "db"}},
                       "template": {"metadata": {"labels": {"app": "db"}}, "spec": {
                           "terminationGracePeriodSeconds": 1,
                           "containers": [{"name": "db", "image": "busybox:latest", "imagePullPolicy": "IfNotPresent",
                                           "command": ["sh", "-c", HTTPD],
                                           "ports": [{"name": "http", "containerPort": 8080}],
                                           "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}}}}
        # One client pod per node, pinned, so every node's dataplane and resolver are exercised.
        clients = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"client{i}", "namespace": NS},
                    "spec": {"nodeName": f"kltest-node{i}", "terminationGracePeriodSeconds": 1,
                             "containers": [{"name": "c", "image": "busybox:latest", "imagePullPolicy": "IfNotPresent",
                                             "command": ["sleep", "3600"]}]}} for i in (1, 2, 3)]
        manifest = "\n---\n".join(json.dumps(o) for o in [db, *clients])
        applied = subprocess.run([str(BIN / "kubectl"), "--kubeconfig", str(kubeconfig), "apply", "-f", "-"],
                                 input=manifest, capture_output=True, text=True, timeout=60)
        assert applied.returncode == 0, applied.stderr
        out = c.kubelite("expose", "deployment", "db", "--port", "5432", "--target-port", "http", "-n", NS)
        assert out.strip() == "service/db exposed"
        c.kubelite("expose", "deployment", "db", "--port", "80", "--target-port", "8080", "--name", "web",
                   "--type", "NodePort", "-n", NS)

        def ready() -> bool:
            pods = c.json("get", "pods", "-n", NS)["items"]
            return len(pods) == 5 and all(
                any(cond["type"] == "Ready" and cond["status"] == "True" for cond in (p.get("status") or {}).get(
                    "conditions", [])) for p in pods)
        wait("the db pods and the clients to be Ready", ready, timeout=120)
        yield c


def _endpoints(c: Cluster, service: str) -> set[str]:
    slices = c.json("get", "endpointslices", "-n", NS, "-l", f"kubernetes.io/service-name={service}")["items"]
    return {ep["addresses"][0] for s in slices for ep in s.get("endpoints") or []
            if (ep.get("conditions") or {}).get("ready")}


def test_names_resolve_from_pods_on_every_node(cluster: Cluster) -> None:
    svc = cluster.json("get", "svc", "db", "-n", NS)
    ip = svc["spec"]["clusterIP"]
    for i in (1, 2, 3):
        # busybox has no getent: ping resolves through the C library (search path, ndots) as getent
        # does, and prints the address before it sends anything (nothing answers ICMP on a ClusterIP)
        for name in ("db", f"db.{NS}"):
            resolved = cluster.sh(f"client{i}", f"ping -c 1 -W 1 {name} | head -n 1", ok=False)
            assert f"({ip})" in resolved, resolved
        looked_up = cluster.sh(f"client{i}", f"nslookup db.{NS}.svc.cluster.local")
        assert ip in looked_up, looked_up
        kube = cluster.sh(f"client{i}", "ping -c 1 -W 1 kubernetes.default | head -n 1", ok=False)
        assert "(10.43.0.1)" in kube, kube
        resolv = cluster.sh(f"client{i}", "cat /etc/resolv.conf")
        assert "nameserver 10.43.0.10" in resolv and f"search {NS}.svc.cluster.local" in resolv


def test_connections_through_the_cluster_ip_reach_both_pods_and_move_when_one_goes(cluster: Cluster) -> None:
    listed = cluster.json("get", "pods", "-n", NS, "-l", "app=db")["items"]
    pods = {p["metadata"]["name"] for p in listed}
    ask = "for i in $(seq 30); do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 db 5432 | tail -n 1; done"
    answers = set(cluster.sh("client1", ask).split())
    assert answers == pods, answers  # spread over both, by name, from node 1
    victim = sorted(pods)[0]
    victim_ip = next(p["status"]["podIP"] for p in listed if p["metadata"]["name"] == victim)
    assert victim_ip in _endpoints(cluster, "db")
    cluster.kubelite("delete", "pod", victim, "-n", NS)
    deleted_at = time.monotonic()
    wait("the deleted pod to leave the Service's ready endpoints",
         lambda: victim_ip not in _endpoints(cluster, "db"), timeout=10)
    assert time.monotonic() - deleted_at < 5
    time.sleep(1)  # the dataplane follows the slice in well under a second
    after = cluster.sh("client2", ask).split()
    assert after and victim not in after, after


def test_node_port_answers_on_every_node_and_kubectl_sees_services(cluster: Cluster) -> None:
    svc = cluster.json("get", "svc", "web", "-n", NS)
    node_port = svc["spec"]["ports"][0]["nodePort"]
    for i in (1, 2, 3):
        answer = cluster.sh("client1", f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 198.51.100.1{i} {node_port}"
                                       " | tail -n 1")
        assert answer.strip().startswith("db-"), answer
    table = cluster.kubectl("get", "svc,endpointslices", "-n", NS)
    assert "NAME" in table and "TYPE" in table and "CLUSTER-IP" in table and "PORT(S)" in table
    assert f"80:{node_port}/TCP" in table and "5432/TCP" in table
    assert "ADDRESSTYPE" in table and "IPv4" in table
    info = cluster.kubectl("cluster-info")
    assert "Kubernetes control plane is running at https://" in info
    assert "CoreDNS is running at" in info

"""README's "Ten minutes with kubelite", run as written on a one-node `kubelite up` cluster:
the Docker verbs on docs/tour/hello-app, then a kubectl rolling update and rollback of it."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from apiserver.etcd_process import free_port
from tests.cluster.test_registry_flow import Cluster, http_get
from tests.cluster.test_up import run

pytestmark = [pytest.mark.root, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("docker-registry") is None,
                                 reason="docker-registry not installed (apt-get install docker-registry)")]

APP = Path(__file__).parents[2] / "docs" / "tour" / "hello-app"


def test_the_readme_tour() -> None:
    cluster = Cluster(nodes=1)
    root = str(cluster.work / "root")
    try:
        # docker build / run -p / curl
        built = cluster.kubelite("build", "-t", "hello-app", "--root", root, str(APP))
        assert built.returncode == 0, built.stdout + built.stderr
        port = free_port()  # the README says 4000; a test must not take a fixed port on the machine's loopback
        ran = cluster.kubelite("run", "hello-app", "--image=hello-app", "-p", f"{port}:8080")
        assert ran.returncode == 0, ran.stderr
        ready = cluster.kubectl("wait", "--for=condition=Ready", "pod/hello-app", "--timeout=120s")
        assert ready.returncode == 0, ready.stdout + ready.stderr
        assert http_get(f"http://127.0.0.1:{port}/cgi-bin/hello") == "Hello from kubelite: pod hello-app answered\n"
        assert http_get(f"http://127.0.0.1:{port}/build.txt").startswith("built ")  # made by the RUN step

        # docker ps / logs / exec / stats / stop + rm
        ps = cluster.kubelite("get", "pods", "-o", "wide")
        assert "hello-app" in ps.stdout and "Running" in ps.stdout, ps.stdout + ps.stderr
        deadline = time.monotonic() + 30
        while "response:200" not in (logs := cluster.kubelite("logs", "hello-app")).stdout:  # httpd -v, static files
            assert time.monotonic() < deadline, logs.stdout + logs.stderr
            time.sleep(0.5)
        execed = run("exec", "hello-app", "--kubeconfig", str(cluster.kubeconfig), "--", "sh", "-c",
                     "echo $GREETING; pwd")
        assert execed.stdout == "Hello from kubelite\n/app\n", execed.stdout + execed.stderr
        top = cluster.kubelite("top", "pods")
        assert top.returncode == 0 and "hello-app" in top.stdout, top.stdout + top.stderr
        deleted = cluster.kubelite("delete", "pod", "hello-app", "--wait")
        assert deleted.returncode == 0, deleted.stderr
        with pytest.raises(AssertionError):
            http_get(f"http://127.0.0.1:{port}/", timeout=3)  # the hostPort went with the pod

        # kubectl: a deployment of v1, a rolling update to v2 (a build arg), and back
        for tag, args in (("v1", ()), ("v2", ("--build-arg", "GREETING=Bonjour"))):
            built = cluster.kubelite("build", "-t", f"hello-app:{tag}", *args, "--root", root, str(APP))
            assert built.returncode == 0, built.stdout + built.stderr
        steps = [("create", "deployment", "hello", "--image=hello-app:v1", "--replicas=3"),
                 ("rollout", "status", "deploy/hello", "--timeout=120s"),
                 ("set", "image", "deploy/hello", "hello-app=hello-app:v2"),
                 ("rollout", "status", "deploy/hello", "--timeout=120s")]
        for step in steps:
            done = cluster.kubectl(*step)
            assert done.returncode == 0, f"{step}: {done.stdout}{done.stderr}"
        assert greetings(cluster) == {"Bonjour"}
        for step in [("rollout", "undo", "deploy/hello"), ("rollout", "status", "deploy/hello", "--timeout=120s")]:
            done = cluster.kubectl(*step)
            assert done.returncode == 0, f"{step}: {done.stdout}{done.stderr}"
        assert greetings(cluster) == {"Hello from kubelite"}
        rs = json.loads(cluster.kubectl("get", "rs", "-o", "json").stdout)["items"]
        assert sorted(r["spec"]["replicas"] for r in rs) == [0, 3]  # v1's ReplicaSet came back

        # Services and DNS, on one node: the cluster DNS listens on 127.0.0.1, reached from pods
        # through 10.43.0.10 (DNAT to loopback)
        services_tour(cluster)
    finally:
        cluster.close()


def services_tour(cluster: Cluster) -> None:
    for step in [("kubectl", "create", "deployment", "db", "--image=busybox", "--replicas", "2", "--",
                  "httpd", "-f", "-p", "8080"),
                 ("kubelite", "expose", "deployment", "db", "--port", "80", "--target-port", "8080"),
                 ("kubelite", "run", "client", "--image=busybox", "--", "sleep", "3600"),
                 ("kubectl", "rollout", "status", "deploy/db", "--timeout=120s"),
                 ("kubectl", "wait", "--for=condition=Ready", "pod/client", "--timeout=120s")]:
        # kubelite's own flags go before `--`: what follows it is the container's command
        done = cluster.kubectl(*step[1:]) if step[0] == "kubectl" else run(
            step[1], "--kubeconfig", str(cluster.kubeconfig), *step[2:])
        assert done.returncode == 0, f"{step}: {done.stdout}{done.stderr}"
    table = cluster.kubectl("get", "svc,endpointslices").stdout
    ip = json.loads(cluster.kubectl("get", "svc", "db", "-o", "json").stdout)["spec"]["clusterIP"]
    assert ip in table and "80/TCP" in table and "8080" in table, table

    def client(*argv: str) -> str:
        out = run("exec", "client", "--kubeconfig", str(cluster.kubeconfig), "--", *argv)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    deadline = time.monotonic() + 30  # the slice reaches the DNS and the dataplane within moments
    while ip not in (looked_up := client("nslookup", "db.default.svc.cluster.local")):
        assert time.monotonic() < deadline, looked_up
        time.sleep(0.5)
    answer = client("sh", "-c", 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 db 80 | head -n 1')
    assert answer.startswith("HTTP/1."), answer  # busybox httpd answers (404 for /: no index)
    info = cluster.kubectl("cluster-info").stdout
    assert "Kubernetes control plane is running at" in info and "CoreDNS is running at" in info


def greetings(cluster: Cluster) -> set[str]:
    """What the deployment's live pods say, asked from inside one of them by pod IP."""
    deadline = time.monotonic() + 60
    while True:
        pods = json.loads(cluster.kubectl("get", "pods", "-l", "app=hello", "-o", "json").stdout)["items"]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp") and p["status"].get("podIP")]
        if len(live) == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    said = set()
    for p in live:
        out = cluster.kubectl("exec", "deploy/hello", "--", "wget", "-qO-",
                              f"http://{p['status']['podIP']}:8080/cgi-bin/hello")
        assert out.returncode == 0, out.stderr
        said.add(out.stdout.split(":")[0])
    return said

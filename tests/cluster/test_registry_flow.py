"""Docker's tutorial flow on a `kubelite up` cluster: build an image on this machine, run it with
`-p 4000:8080`, and it answers on its node; a deployment of it runs on every node.

The image reaches the nodes through the cluster registry that `up` runs: `kubelite build`
pushes there, each kubelet pulls docker.io names through it (its registry mirror), and
`down` leaves no registry process and no storage behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from apiserver.etcd_process import free_port
from tests.cluster.test_up import BIN, leftovers, run

pytestmark = [pytest.mark.root, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("docker-registry") is None,
                                 reason="docker-registry not installed (apt-get install docker-registry)")]

# The shape of Docker's getting-started Dockerfile, with busybox's httpd in place of node.
DOCKERFILE = """\
FROM busybox
WORKDIR /app
ENV APP_GREETING="hello from kltest-app"
COPY index.html ./
RUN echo "$APP_GREETING" > /app/greeting.txt && test -s /app/greeting.txt
CMD ["httpd", "-f", "-p", "8080", "-h", "/app"]
EXPOSE 8080
"""
PAGE = "<h1>kltest-app</h1>\n"


def app_dir(parent: Path) -> Path:
    app = parent / "app"
    app.mkdir()
    (app / "Dockerfile").write_text(DOCKERFILE)
    (app / "index.html").write_text(PAGE)
    return app


def http_get(url: str, timeout: float = 60) -> str:
    """GET `url` until it answers 200 (a hostPort answers once the pod's server listens)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.read().decode()
        except OSError as err:
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer in {timeout:.0f}s: {err}") from err
            time.sleep(0.3)


def processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and proc.name.isdigit() and int(proc.name) != os.getpid():
            found.append(f"{proc.name}: {cmdline}")
    return found


class Cluster:
    """A `kubelite up` cluster for one test; `down` in `close`, asserting it leaves nothing."""

    def __init__(self, nodes: int) -> None:
        self.state = Path(tempfile.mkdtemp(prefix="kltest-reg-"))
        self.kubeconfig = self.state.parent / f"{self.state.name}.kubeconfig"
        self.work = Path(tempfile.mkdtemp(prefix="kltest-regwork-"))
        self.registry_port = free_port()
        up = run("up", "--nodes", str(nodes), "--data-dir", str(self.state), "--port", str(free_port()),
                 "--registry-port", str(self.registry_port), "--name-prefix", "kltest",
                 "--kubeconfig", str(self.kubeconfig), timeout=240)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "cluster registry on" in up.stderr, up.stderr

    def kubelite(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return run(*args, "--kubeconfig", str(self.kubeconfig), timeout=timeout)

    def kubectl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run("kubectl", *args, kubeconfig=self.kubeconfig, timeout=timeout)

    def build(self) -> subprocess.CompletedProcess[str]:
        """`kubelite build -t kltest-app` of the tutorial-shaped app, in a build store of the test's own."""
        # The store starts empty: FROM busybox comes through the cluster registry.
        built = self.kubelite("build", "-t", "kltest-app", "--root", str(self.work / "root"), str(app_dir(self.work)))
        assert built.returncode == 0, built.stdout + built.stderr
        return built

    def close(self) -> None:
        down = run("down", "--data-dir", str(self.state))
        shutil.rmtree(self.state, ignore_errors=True)
        shutil.rmtree(self.work, ignore_errors=True)
        self.kubeconfig.unlink(missing_ok=True)
        assert down.returncode == 0, down.stdout + down.stderr
        assert processes_mentioning(str(self.state)) == []
        assert leftovers() == []


def test_build_then_run_on_two_nodes_through_the_cluster_registry() -> None:
    cluster = Cluster(nodes=2)
    try:
        built = cluster.build()
        address = f"198.51.100.1:{cluster.registry_port}"
        assert f"Pushed kltest-app to the cluster registry {address} as library/kltest-app:latest" in built.stdout
        with urllib.request.urlopen(f"http://{address}/v2/library/kltest-app/tags/list", timeout=5) as resp:
            assert json.loads(resp.read())["tags"] == ["latest"]

        ran = cluster.kubelite("run", "kltest-app", "--image=kltest-app", "-p", "4000:8080")
        assert ran.returncode == 0, ran.stderr
        ready = cluster.kubectl("wait", "--for=condition=Ready", "pod/kltest-app", "--timeout=120s")
        assert ready.returncode == 0, ready.stdout + ready.stderr + cluster.kubectl("describe", "pod").stdout
        pod = json.loads(cluster.kubectl("get", "pod", "kltest-app", "-o", "json").stdout)
        assert pod["spec"]["containers"][0].get("imagePullPolicy", "Always") == "Always"  # :latest implied
        assert http_get(f"http://{pod['status']['hostIP']}:4000/") == PAGE

        deployment = {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "kltest-app-web"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "kltest-app-web"}},
                     "template": {"metadata": {"labels": {"app": "kltest-app-web"}},
                                  # the hostPort puts one replica on each node
                                  "spec": {"containers": [{"name": "web", "image": "kltest-app",
                                                           "ports": [{"containerPort": 8080, "hostPort": 4001}]}]}}}}
        applied = subprocess.run([str(BIN / "kubectl"), "--kubeconfig",
                                  str(cluster.kubeconfig), "apply", "-f", "-"], input=json.dumps(deployment),
                                 capture_output=True, text=True, timeout=60)
        assert applied.returncode == 0, applied.stderr
        rolled = cluster.kubectl("rollout", "status", "deployment/kltest-app-web", "--timeout=120s")
        assert rolled.returncode == 0, rolled.stdout + rolled.stderr
        pods = json.loads(cluster.kubectl("get", "pods", "-l", "app=kltest-app-web", "-o", "json").stdout)["items"]
        assert sorted(p["status"]["hostIP"] for p in pods) == ["198.51.100.11", "198.51.100.12"]
        for p in pods:  # each node pulled the image and serves the page
            assert http_get(f"http://{p['status']['hostIP']}:4001/") == PAGE

        # kind's recipe: a name for the registry on this machine (localhost:PORT) works on every node.
        local_name = f"localhost:{cluster.registry_port}/kltest/app:v1"
        tagged = cluster.kubelite("build", "-t", local_name, "--root", str(cluster.work / "root"),
                                  str(cluster.work / "app"))
        assert "as kltest/app:v1" in tagged.stdout, tagged.stdout + tagged.stderr
        ran = cluster.kubelite("run", "kltest-alias", f"--image={local_name}")
        assert ran.returncode == 0, ran.stderr
        ready = cluster.kubectl("wait", "--for=condition=Ready", "pod/kltest-alias", "--timeout=120s")
        assert ready.returncode == 0, ready.stdout + ready.stderr + cluster.kubectl("describe", "pod").stdout
    finally:
        cluster.close()


def test_single_node_answers_on_localhost() -> None:
    cluster = Cluster(nodes=1)
    try:
        built = cluster.build()
        assert f"the cluster registry 127.0.0.1:{cluster.registry_port}" in built.stdout
        host_port = free_port()  # not 4000: this is the machine's own loopback, shared with its other users
        ran = cluster.kubelite("run", "kltest-app", "--image=kltest-app", "-p", f"{host_port}:8080")
        assert ran.returncode == 0, ran.stderr
        ready = cluster.kubectl("wait", "--for=condition=Ready", "pod/kltest-app", "--timeout=120s")
        assert ready.returncode == 0, ready.stdout + ready.stderr + cluster.kubectl("describe", "pod").stdout
        assert http_get(f"http://127.0.0.1:{host_port}/") == PAGE
        assert http_get(f"http://localhost:{host_port}/greeting.txt") == "hello from kltest-app\n"
    finally:
        cluster.close()

"""`kubelite up --nodes 2` and `kubelite down` as a user runs them: a deployment spreads over
two simulated hosts, pods answer across hosts, logs and exec work, and `down` leaves nothing.

An `up` cluster is secured like a real one: the API server wants a credential, each kubelet
answers the API server only, and every key and credential file is private."""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from apiserver.auth.pki import CertPaths, client_ssl_context
from apiserver.etcd_process import free_port

pytestmark = [pytest.mark.root, pytest.mark.slow]
BIN = Path(sys.executable).parent


def run(*args: str, kubeconfig: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env_args = ["--kubeconfig", str(kubeconfig)] if kubeconfig else []
    cmd = [str(BIN / args[0]), *env_args, *args[1:]] if args[0] == "kubectl" else [str(BIN / "kubelite"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def leftovers() -> list[str]:
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    found = [line.split(":")[1].strip() for line in links.splitlines() if "kltest-" in line or " kl0" in line]
    found += [n for n in subprocess.run(["ip", "netns"], capture_output=True, text=True).stdout.split()
              if n.startswith("kltest-node")]
    found += [t for t in subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout.splitlines()
              if "kubelite" in t]
    found += [str(p) for p in Path("/sys/fs/cgroup").glob("*/kltest-node*")]
    return found


@contextlib.contextmanager
def up_cluster(*flags: str) -> Iterator[tuple[Path, Path]]:
    """`kubelite up FLAGS` in a fresh state directory, yielding it and the kubeconfig; on the
    way out `kubelite down` must succeed, remove the state directory and leave nothing."""
    state = Path(tempfile.mkdtemp(prefix="kltest-up-"))
    kubeconfig = state.parent / f"{state.name}.kubeconfig"
    try:
        up = run("up", "--data-dir", str(state), "--port", str(free_port()), "--name-prefix", "kltest",
                 "--kubeconfig", str(kubeconfig), *flags)
        assert up.returncode == 0, up.stdout + up.stderr
        yield state, kubeconfig
    finally:
        down = run("down", "--data-dir", str(state))
        removed = not state.exists()
        shutil.rmtree(state, ignore_errors=True)
        kubeconfig.unlink(missing_ok=True)
    assert down.returncode == 0, down.stdout + down.stderr
    assert leftovers() == []
    assert removed


def test_two_node_cluster_up_and_down():
    with up_cluster("--nodes", "2") as (state, kubeconfig):
        nodes = json.loads(run("kubectl", "get", "nodes", "-o", "json", kubeconfig=kubeconfig).stdout)["items"]
        assert sorted(n["status"]["addresses"][0]["address"] for n in nodes) == ["198.51.100.11", "198.51.100.12"]

        applied = run("kubectl", "apply", "-f", str(Path(__file__).parents[2] / "manifests" / "web.yaml"),
                      kubeconfig=kubeconfig)
        assert applied.returncode == 0, applied.stderr
        waited = run("kubectl", "rollout", "status", "deployment/web", "--timeout=90s", kubeconfig=kubeconfig)
        assert waited.returncode == 0, waited.stdout + waited.stderr
        pods = json.loads(run("kubectl", "get", "pods", "-o", "json", kubeconfig=kubeconfig).stdout)["items"]
        by_node: dict[str, list[dict]] = {}
        for p in pods:
            by_node.setdefault(p["spec"]["nodeName"], []).append(p)
        assert len(by_node) == 2, "three replicas should spread over both nodes"
        first, second = (by_node[n][0] for n in sorted(by_node))
        request = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc {second['status']['podIP']} 8080 | tail -1"
        reply = run("kubectl", "exec", first["metadata"]["name"], "--", "sh", "-c", request, kubeconfig=kubeconfig)
        assert reply.stdout.strip() == f"hello from {second['metadata']['name']}", reply.stderr
        assert_secured(state, kubeconfig, bind="198.51.100.1")


def test_one_node_cluster_is_secured_on_loopback():
    with up_cluster("--registry-port", str(free_port())) as (state, kubeconfig):
        assert_secured(state, kubeconfig, bind="127.0.0.1")


ECHO = "hello-over-tls"


def assert_secured(state: Path, kubeconfig: Path, *, bind: str) -> None:
    """What a real cluster promises, on the cluster `up` made in `state`:

    - the API server listens only on `bind` and refuses anonymous requests (401);
    - a kubelet serves TLS to the API server alone: no client certificate fails the handshake,
      and even the admin's certificate gets 403, while kubectl logs/exec through the API server work;
    - the kubeconfig and every key, certificate and credential file are 0600."""
    server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    port = int(server.rsplit(":", 1)[1])
    assert server == f"https://{bind}:{port}"
    listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout.split()
    assert [word for word in listening if word.endswith(f":{port}")] == [f"{bind}:{port}"]

    pki = state / "server" / "pki"
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(f"{server}/api/v1/namespaces", timeout=10,
                               context=client_ssl_context(pki / "ca.crt"))
    assert anonymous.value.code == 401

    ran = run("kubectl", "run", "kltest-echo", "--image=busybox", "--image-pull-policy=IfNotPresent",
              "--restart=Never", "--", "sh", "-c", f"echo {ECHO}; exec sleep 3600", kubeconfig=kubeconfig)
    assert ran.returncode == 0, ran.stderr
    deadline = time.monotonic() + 90
    while ECHO not in (logs := run("kubectl", "logs", "kltest-echo", kubeconfig=kubeconfig)).stdout:
        assert time.monotonic() < deadline, logs.stderr
        time.sleep(0.5)
    execed = run("kubectl", "exec", "kltest-echo", "--", "echo", "exec-over-tls", kubeconfig=kubeconfig)
    assert execed.stdout.strip() == "exec-over-tls", execed.stderr

    pod = json.loads(run("kubectl", "get", "pod", "kltest-echo", "-o", "json", kubeconfig=kubeconfig).stdout)
    url = f"https://{pod['status']['hostIP']}:10250/containerLogs/default/kltest-echo/kltest-echo"
    admin = client_ssl_context(pki / "ca.crt", CertPaths(pki / "admin.crt", pki / "admin.key"))
    with pytest.raises(urllib.error.HTTPError) as forbidden:
        urllib.request.urlopen(url, timeout=10, context=admin)
    assert forbidden.value.code == 403  # even the cluster admin goes through the API server
    with pytest.raises((ssl.SSLError, ConnectionError, urllib.error.URLError)) as refused:
        urllib.request.urlopen(url, timeout=10, context=client_ssl_context(pki / "ca.crt"))
    assert "certificate" in str(refused.value) or isinstance(refused.value, ConnectionError), refused.value
    with pytest.raises((ConnectionError, urllib.error.URLError, http.client.HTTPException)):
        urllib.request.urlopen(url.replace("https", "http"), timeout=10)  # nothing answers plain http

    private = [kubeconfig, *(p for p in (state / "server").iterdir() if p.suffix == ".kubeconfig"),
               state / "server" / "join-command", state / "server" / "join-tokens.json",
               *pki.rglob("*"), *state.glob("nodes/*/pki/*")]
    assert len([p for p in private if p.suffix == ".key"]) >= 3  # the CA's, the admin's, a node's
    loose = {str(p): oct(p.stat().st_mode & 0o777) for p in private if p.is_file() and p.stat().st_mode & 0o077}
    assert loose == {}


def test_a_failed_host_has_its_pods_recreated_elsewhere_and_comes_back_clean():
    from cli.local import daemons
    from cli.local.fabric import Fabric
    from cli.local.up import ClusterState, agent_argv

    fast_failure = ("--node-monitor-grace-period", "15s", "--pod-eviction-timeout", "2s")
    with up_cluster("--nodes", "3", *fast_failure) as (state_dir, kubeconfig):
        def pods() -> list[dict]:
            out = run("kubectl", "get", "pods", "-o", "json", kubeconfig=kubeconfig)
            return [p for p in json.loads(out.stdout)["items"] if not p["metadata"].get("deletionTimestamp")]

        def wait_for(check, timeout: float = 90) -> None:
            import time

            deadline = time.monotonic() + timeout
            while not check():
                if time.monotonic() > deadline:
                    state = run("kubectl", "get", "nodes,pods", "-o", "wide", kubeconfig=kubeconfig).stdout
                    raise AssertionError(f"{check.__name__} did not happen in {timeout:.0f}s:\n{state}")
                time.sleep(1)

        manifest = (Path(__file__).parents[2] / "manifests" / "web.yaml").read_text().replace("replicas: 3",
                                                                                              "replicas: 6")
        subprocess.run([str(BIN / "kubectl"), "--kubeconfig", str(kubeconfig), "apply", "-f", "-"],
                       input=manifest, text=True, check=True, capture_output=True)
        rolled = run("kubectl", "rollout", "status", "deployment/web", "--timeout=90s", kubeconfig=kubeconfig)
        assert rolled.returncode == 0, rolled.stdout + rolled.stderr
        assert {p["spec"]["nodeName"] for p in pods()} == {"kltest-node1", "kltest-node2", "kltest-node3"}

        cluster = ClusterState.load(state_dir)
        assert cluster is not None
        victim = next(n for n in cluster.nodes if n["name"] == "kltest-node3")
        daemons.stop("agent-kltest-node3", state_dir)  # the host dies: its kubelet stops, its cable is cut
        fabric = Fabric("kltest")
        host = next(h for h in fabric.hosts() if h.name == "kltest-node3")
        fabric.cut(host)

        def moved() -> bool:
            running = [p for p in pods() if p["status"].get("phase") == "Running"
                       and p["spec"].get("nodeName") != "kltest-node3"]
            return len(running) == 6
        wait_for(moved)
        node = json.loads(run("kubectl", "get", "node", "kltest-node3", "-o", "json", kubeconfig=kubeconfig).stdout)
        assert any(t["key"] == "node.kubernetes.io/unreachable" for t in node["spec"].get("taints", []))

        fabric.reconnect(host)
        daemons.start("agent-kltest-node3", agent_argv(node=victim), state_dir)  # it rejoins as it first did

        def back() -> bool:
            n = json.loads(run("kubectl", "get", "node", "kltest-node3", "-o", "json", kubeconfig=kubeconfig).stdout)
            ready = {c["type"]: c["status"] for c in n["status"]["conditions"]}.get("Ready") == "True"
            tainted = any(t["key"].startswith("node.kubernetes.io/") for t in n["spec"].get("taints") or [])
            everything = json.loads(run("kubectl", "get", "pods", "-o", "json", kubeconfig=kubeconfig).stdout)
            stale = [p for p in everything["items"] if p["spec"].get("nodeName") == "kltest-node3"
                     and p["metadata"].get("deletionTimestamp")]
            return ready and not tainted and not stale
        wait_for(back)

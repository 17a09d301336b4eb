"""The end-to-end checks, as a user of the cluster would make them: kubectl on the host side of
the private network (inside the test's namespace) with the admin kubeconfig the control plane
published in the shared folder. Every wait polls for a condition with a deadline; the deadlines
are generous because Python runs about ten times slower under software emulation.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from vmtest.machines import in_netns

T = TypeVar("T")
NAMESPACE = "default"
WEB = "vmtest-web"


class CheckFailed(Exception):
    """The cluster did not behave as a user expects."""


def wait_for(what: str, probe: Callable[[], T | None], *, timeout: float, interval: float = 3.0) -> T:
    """Poll `probe` until it returns a truthy value; CheckFailed after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while True:
        try:
            value = probe()
            if value:
                return value
        except (subprocess.SubprocessError, CheckFailed, ValueError, KeyError) as err:
            last_error = f" (last error: {err})"
        if time.monotonic() >= deadline:
            raise CheckFailed(f"timed out after {timeout:.0f}s waiting for {what}{last_error}")
        time.sleep(interval)


class Kubectl:
    def __init__(self, kubectl: str, kubeconfig: Path) -> None:
        self.base = in_netns([kubectl, "--kubeconfig", str(kubeconfig), "--request-timeout=60s"])

    def __call__(self, *args: str, stdin: str | None = None, timeout: float = 120) -> str:
        result = subprocess.run([*self.base, *args], input=stdin, capture_output=True, text=True, timeout=timeout,
                                check=False)
        if result.returncode != 0:
            raise CheckFailed(f"kubectl {' '.join(args)}: {result.stderr.strip() or result.stdout.strip()}")
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json"))

    def apply(self, obj: dict[str, Any]) -> None:
        self("apply", "-f", "-", stdin=json.dumps(obj))


def guest_command(share: Path, vm: str, command: str, *, timeout: float) -> str:
    """`vagrant ssh VM -c COMMAND`, through the share (guest/exec-loop.sh runs it as root)."""
    inbox = share / ".vmtest" / "exec" / vm
    inbox.mkdir(parents=True, exist_ok=True)
    script = inbox / f"{time.monotonic_ns()}.sh"
    script.with_suffix(".tmp").write_text(command + "\n")
    script.with_suffix(".tmp").rename(script)
    rc_file = Path(f"{script}.rc")
    wait_for(f"`{command}` on {vm}", lambda: rc_file.exists() and rc_file.read_text().strip(), timeout=timeout,
             interval=1)
    output = Path(f"{script}.out").read_text()
    if rc_file.read_text().strip() != "0":
        raise CheckFailed(f"`{command}` on {vm} exited {rc_file.read_text().strip()}: {output}")
    return output


def cli_on_control_plane_lists_ready(share: Path, workers: list[str], *, timeout: float) -> str:
    """What the issue promises after `vagrant up`: `vagrant ssh cp -c "kubelite get nodes"` lists
    every node Ready (the CLI on cp finds the server's admin kubeconfig by itself)."""
    output = guest_command(share, "cp", "kubelite get nodes", timeout=timeout)
    rows = {line.split()[0]: line.split()[1] for line in output.splitlines()[1:] if line.strip()}
    if any(rows.get(w) != "Ready" for w in workers):
        raise CheckFailed(f"`kubelite get nodes` on cp does not list {workers} Ready:\n{output}")
    return output


def ready_nodes(k: Kubectl) -> set[str]:
    ready = set()
    for node in k.json("get", "nodes")["items"]:
        conditions = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
        if conditions.get("Ready") == "True":
            ready.add(node["metadata"]["name"])
    return ready


def nodes_ready(k: Kubectl, names: list[str], *, timeout: float) -> None:
    wait_for(f"nodes {', '.join(names)} Ready", lambda: set(names) <= ready_nodes(k), timeout=timeout, interval=5)


def _web_deployment(replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": WEB, "namespace": NAMESPACE, "labels": {"app": WEB}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": WEB}},
            "template": {
                "metadata": {"labels": {"app": WEB}},
                "spec": {"containers": [{
                    "name": "httpd", "image": "busybox:latest", "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", "mkdir -p /www && echo hello from $(hostname) > /www/index.html"
                                " && exec httpd -f -p 8080 -h /www"],
                    "ports": [{"containerPort": 8080}],
                    "resources": {"requests": {"cpu": "50m", "memory": "16Mi"},
                                  "limits": {"cpu": "200m", "memory": "64Mi"}},
                }]},
            },
        },
    }


def running_web_pods(k: Kubectl) -> dict[str, tuple[str, str]]:
    """name -> (node, pod IP) of the web pods that are Running and not being deleted."""
    pods = {}
    for pod in k.json("get", "pods", "-n", NAMESPACE, "-l", f"app={WEB}")["items"]:
        status = pod.get("status", {})
        if pod["metadata"].get("deletionTimestamp") or status.get("phase") != "Running" or not status.get("podIP"):
            continue
        pods[pod["metadata"]["name"]] = (pod["spec"].get("nodeName", ""), status["podIP"])
    return pods


def deployment_spreads(k: Kubectl, workers: list[str], *, replicas: int, timeout: float) -> dict[str, tuple[str, str]]:
    def all_running() -> dict[str, tuple[str, str]] | None:
        pods = running_web_pods(k)
        return pods if len(pods) == replicas else None

    k.apply(_web_deployment(replicas))
    pods = wait_for(f"{replicas} running {WEB} pods", all_running, timeout=timeout)
    used = {node for node, _ in pods.values()}
    if used != set(workers):
        raise CheckFailed(f"the deployment did not spread over {workers}: {pods}")
    return pods


def _one_shot_pod(name: str, node: str, command: str, *, memory_limit: str | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": "busybox:latest", "imagePullPolicy": "IfNotPresent",
                                 "command": ["sh", "-c", command]}
    if memory_limit:
        container["resources"] = {"limits": {"memory": memory_limit}, "requests": {"memory": memory_limit}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"nodeName": node, "restartPolicy": "Never", "containers": [container]}}


def _finished(k: Kubectl, name: str) -> dict[str, Any] | None:
    pod = k.json("get", "pod", "-n", NAMESPACE, name)
    return pod if pod.get("status", {}).get("phase") in ("Succeeded", "Failed") else None


def cross_vm_http(k: Kubectl, pods: dict[str, tuple[str, str]], src: str, dst: str, *, timeout: float) -> str:
    """A pod on `src` fetches the page of a web pod on `dst`, by pod IP (host-gw routes between VMs)."""
    target, (_, ip) = next((n, v) for n, v in sorted(pods.items()) if v[0] == dst)
    probe = f"vmtest-probe-{src}"
    k("delete", "pod", "-n", NAMESPACE, probe, "--ignore-not-found", "--wait=false")
    # Not `wget -T`: Debian 12's busybox-static wget segfaults with it; `timeout` bounds it instead.
    k.apply(_one_shot_pod(probe, src, f"timeout 60 wget -q -O - http://{ip}:8080/"))
    pod = wait_for(f"{probe} to finish", lambda: _finished(k, probe), timeout=timeout)
    logs = k("logs", "-n", NAMESPACE, probe).strip()
    if pod["status"]["phase"] != "Succeeded" or f"hello from {target}" not in logs:
        raise CheckFailed(f"{probe} on {src} could not fetch http://{ip}:8080/ from {target} on {dst}: "
                          f"phase {pod['status']['phase']}, output {logs!r}")
    return f"{src} -> {target} ({ip}) on {dst}: {logs!r}"


def memory_limit_enforced(k: Kubectl, node: str, *, timeout: float) -> str:
    """A container limited to 32Mi that touches 96M is killed by the kernel (cgroup v2 memory.max),
    and the kubelet reports it as OOMKilled."""
    name = "vmtest-oom"
    k("delete", "pod", "-n", NAMESPACE, name, "--ignore-not-found", "--wait=false")
    k.apply(_one_shot_pod(name, node, "dd if=/dev/zero of=/dev/null bs=96M count=1 && echo survived",
                          memory_limit="32Mi"))
    pod = wait_for(f"{name} to finish", lambda: _finished(k, name), timeout=timeout)
    statuses = pod["status"].get("containerStatuses") or [{}]
    terminated = statuses[0].get("state", {}).get("terminated", {})
    if terminated.get("reason") != "OOMKilled":
        raise CheckFailed(f"{name} was not OOMKilled: phase {pod['status']['phase']}, terminated {terminated}")
    return f"{name} on {node}: reason {terminated['reason']}, exit code {terminated.get('exitCode')}"


def node_not_ready(k: Kubectl, node: str, *, timeout: float) -> None:
    wait_for(f"{node} NotReady", lambda: node not in ready_nodes(k), timeout=timeout, interval=5)


def rescheduled_onto(k: Kubectl, node: str, *, replicas: int, timeout: float) -> dict[str, tuple[str, str]]:
    def all_on_node() -> dict[str, tuple[str, str]] | None:
        pods = running_web_pods(k)
        return pods if len(pods) == replicas and all(n == node for n, _ in pods.values()) else None

    return wait_for(f"{replicas} running {WEB} pods, all on {node}", all_on_node, timeout=timeout, interval=5)

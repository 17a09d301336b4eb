"""Pod startup latency and kubelet cost on one node (run as root).

    sudo .venv/bin/python bench/pods.py [--single 20] [--pods 100] [--idle 10]

Starts etcd, an API server (in this process) and `kubelite agent --network none` as a
separate process, then measures, with the busybox image present:

* single pod: create (spec.nodeName set, no scheduler) -> Running seen by a watch, p50/p99;
* a burst of N pods created at once: per-pod latency p50/p99 and time until all Running;
* the kubelet's CPU (share of one core) and RSS while idle with N pods running.

Anchor, measured in the same run: `unshare -fpmui --net /bin/true` (what a bare namespaced
process costs on this machine). Everything is removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/api.py must not shadow api/

from api.client import Client
from api.core import Container, Node, Pod, PodSpec
from api.errors import NotFound
from api.meta import ObjectMeta
from apiserver.app import ServerConfig, create_app
from apiserver.etcd_process import EtcdProcess, free_port

NODE = "bench-node"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def anchor(n: int = 20) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(["unshare", "-fpmui", "--net", "/bin/true"], check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def make_pod(name: str) -> Pod:
    return Pod(metadata=ObjectMeta(name=name, namespace="default"),
               spec=PodSpec(node_name=NODE, termination_grace_period_seconds=1, containers=[
                   Container(name="main", image="busybox:latest", image_pull_policy="IfNotPresent",
                             command=["sleep", "100000"])]))


async def run_pods(client: Client, names: list[str]) -> dict[str, float]:
    """Create the pods at once; seconds from each create to Running seen by a watch."""
    created: dict[str, float] = {}
    running: dict[str, float] = {}
    rv = (await client.list(Pod, namespace="default")).resource_version
    async with client.watch(Pod, namespace="default", resource_version=rv) as events:
        await asyncio.gather(*(_create(client, n, created) for n in names))
        async for ev in events:
            p = ev.object
            name = p.metadata.name or ""
            if name in created and name not in running and p.status and p.status.phase == "Running":
                running[name] = time.perf_counter() - created[name]
                if len(running) == len(names):
                    break
    return running


async def _create(client: Client, name: str, created: dict[str, float]) -> None:
    created[name] = time.perf_counter()
    await client.create(make_pod(name))


async def delete_all(client: Client, root: Path) -> None:
    for p in (await client.list(Pod, namespace="default")).items:
        with contextlib.suppress(NotFound):
            await client.delete(Pod, p.metadata.name or "", namespace="default")
    for _ in range(600):
        if not (await client.list(Pod, namespace="default")).items and not any((root / "containers").iterdir()):
            return
        await asyncio.sleep(0.1)


async def main(args: argparse.Namespace) -> None:
    if os.geteuid() != 0:
        sys.exit("bench/pods.py needs root (containers, cgroups)")
    work = Path(tempfile.mkdtemp(prefix="kltest-bench-pods-", dir="/dev/shm"))
    root = Path(tempfile.mkdtemp(prefix="kltest-bench-kubelet-"))
    parent = f"kltest-bench-{secrets.token_hex(3)}"
    etcd = EtcdProcess(work / "etcd", fast=True, log_file=work / "etcd.log")
    etcd.start()
    runner = web.AppRunner(create_app(ServerConfig(etcd_servers=etcd.url)), handle_signals=False)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    server = f"http://127.0.0.1:{port}"
    agent = subprocess.Popen([sys.executable, "-c", "import sys; from cli.main import main; sys.exit(main())",
                              "agent", "--server", server, "--node-name", NODE, "--root-dir", str(root),
                              "--node-ip", "127.0.0.1", "--port", str(free_port()), "--network", "none",
                              "--cgroup-parent", parent], stderr=open(work / "agent.log", "w"))
    try:
        async with Client(server) as client:
            for _ in range(300):
                if agent.poll() is not None:
                    raise SystemExit(f"kubelite agent exited: see {work / 'agent.log'}")
                with contextlib.suppress(NotFound):
                    node = await client.get(Node, NODE)
                    if node.status and (c := node.status.condition("Ready")) and c.status == "True":
                        break
                await asyncio.sleep(0.1)
            else:
                raise SystemExit("the node never became Ready")
            await run_pods(client, ["warmup"])  # image layers unpacked, launcher warm
            await delete_all(client, root)
            single = []
            for i in range(args.single):
                single += (await run_pods(client, [f"single-{i}"])).values()
                await delete_all(client, root)
            t0 = time.perf_counter()
            burst = await run_pods(client, [f"burst-{i}" for i in range(args.pods)])
            all_running = time.perf_counter() - t0
            await asyncio.sleep(2)
            c0, w0 = cpu_ticks(agent.pid), time.perf_counter()
            await asyncio.sleep(args.idle)
            idle_cpu = (cpu_ticks(agent.pid) - c0) / os.sysconf("SC_CLK_TCK") / (time.perf_counter() - w0)
            rss = rss_kib(agent.pid)
            await delete_all(client, root)
        base = anchor()
        print(f"anchor: unshare -fpmui --net /bin/true median {base * 1000:.1f} ms")
        print(f"single pod create->Running (n={len(single)}): p50 {pct(single, .5) * 1000:.0f} ms, "
              f"p99 {pct(single, .99) * 1000:.0f} ms   (target p99 <= 1000 ms)")
        lat = list(burst.values())
        print(f"{args.pods} pods at once: all Running in {all_running:.2f} s (target <= 15 s); per pod p50 "
              f"{pct(lat, .5) * 1000:.0f} ms, p99 {pct(lat, .99) * 1000:.0f} ms")
        print(f"kubelet idle with {args.pods} pods: CPU {idle_cpu * 100:.2f}% of a core (target <= 2%), "
              f"RSS {rss / 1024:.1f} MiB")
    finally:
        agent.terminate()
        agent.wait(10)
        await runner.cleanup()
        etcd.stop()
        from runtime.cgroups import open_cgroup
        from runtime.container import Runtime

        rt = await Runtime.open(root, cgroup_parent=parent)
        for sb in rt.sandboxes():
            await rt.remove_sandbox(sb.pod_uid)
        for st in rt.list():
            await rt.remove(st.id)
        await rt.close()
        await rt.shutdown_launcher()
        with contextlib.suppress(Exception):
            open_cgroup("/sys/fs/cgroup", parent).remove()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--single", type=int, default=20)
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--idle", type=float, default=10)
    asyncio.run(main(parser.parse_args()))

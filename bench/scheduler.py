"""Scheduler throughput: pods bound per second with 100 hollow nodes, beside the API server's own rate.

    .venv/bin/python bench/scheduler.py [--nodes 100] [--pods 5000] [--burst 1000]

What runs: a real etcd (tmpfs, the test flags) and `kubelite apiserver` in a child
process; this process holds the scheduler and the load generator. Nodes are hollow:
Node objects with Ready status and allocatable (4 cpu, 16Gi, 110 pods), and no kubelet,
as in Kubernetes' scheduler_perf, so the figure is the scheduler's and not a kubelet
simulator's.

Figures, all in one run so they share the machine's mood:

1. anchor: raw API server throughput for the two writes scheduling costs, pod create
   and pod bind, at the same client concurrency the scheduler uses (64);
2. throughput: `--pods` pending pods are created first, then the scheduler starts; pods
   bound per second from its start to the last binding;
3. burst: with the scheduler idle and running, `--burst` pods are created (like a
   0 -> N replica scale-up) and the time from the first create to the last binding is
   reported, beside the time the creates alone took.

Every pod requests 10m cpu and 16Mi memory and has a ReplicaSet owner, so every filter
and score plugin does real work.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.base import KubeModel
from api.client import Client
from api.core import Namespace, Node, Pod
from api.events import EventRecorder
from api.meta import ObjectMeta
from apiserver.etcd_process import EtcdProcess, free_port
from scheduler.scheduler import Scheduler

CONCURRENCY = 64
T = TypeVar("T")


class NullEvents:
    """Without --events, Events are counted, not written: the anchor writes none either."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()

    def event(self, obj: KubeModel, type_: str, reason: str, message: str) -> None:
        self.count[reason] += 1


def node(name: str) -> Node:
    alloc = {"cpu": "4", "memory": "16Gi", "pods": "110"}
    return Node.from_dict({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"capacity": alloc, "allocatable": alloc,
                   "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]},
    })


def pod(namespace: str, name: str, owner: str) -> Pod:
    return Pod.from_dict({
        "metadata": {"name": name, "namespace": namespace,
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner,
                                          "uid": f"uid-{namespace}-{owner}", "controller": True}]},
        "spec": {"containers": [{"name": "c", "image": "busybox",
                                 "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
    })


async def bounded(items: Iterable[T], action: Callable[[T], Awaitable[Any]], concurrency: int = CONCURRENCY) -> None:
    """Apply `action` to every item, `concurrency` at a time."""
    it = iter(items)

    async def worker() -> None:
        for item in it:
            await action(item)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def create_all(client: Client, objs: list[Any]) -> float:
    start = time.perf_counter()
    await bounded(objs, client.create)
    return time.perf_counter() - start


async def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError(f"apiserver exited with {proc.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url + "/readyz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise RuntimeError("apiserver did not become ready")


async def wait_bound(scheduler: Scheduler, target: int, timeout: float) -> float:
    deadline = time.perf_counter() + timeout
    last = time.perf_counter()
    while scheduler.bound < target:
        if os.environ.get("BENCH_TRACE") and time.perf_counter() - last > 1:
            last = time.perf_counter()
            print("bound", scheduler.bound, "queue", {k.value: v for k, v in scheduler.queue.counts().items()},
                  "assumed", scheduler.cache.assumed_count(), file=sys.stderr)
        if time.perf_counter() > deadline:
            raise RuntimeError(f"only {scheduler.bound}/{target} pods bound after {timeout:g}s")
        await asyncio.sleep(0.005)
    return time.perf_counter()


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of a process (this one by default), from /proc."""
    with open(f"/proc/{pid or 'self'}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench(url: str, args: argparse.Namespace, server_pid: int, etcd_pid: int) -> dict[str, float]:
    results: dict[str, float] = {}
    async with Client(url, user_agent="bench-scheduler", timeout=120) as client:
        for ns in ("anchor", "load", "burst"):
            await client.create(Namespace(metadata=ObjectMeta(name=ns)))
        nodes = [node(f"hollow-{i:03d}") for i in range(args.nodes)]
        await create_all(client, nodes)

        # 1. Anchor: raw create and bind throughput of the API server.
        anchor = [pod("anchor", f"a-{i}", "anchor") for i in range(args.anchor)]
        elapsed = await create_all(client, anchor)
        results["anchor_create_per_s"] = len(anchor) / elapsed
        start = time.perf_counter()
        targets = [nodes[i % len(nodes)].metadata.name or "" for i in range(len(anchor))]
        await bounded(zip(anchor, targets, strict=True), lambda pair: client.bind(*pair))
        results["anchor_bind_per_s"] = len(anchor) / (time.perf_counter() - start)

        # 2. Throughput: a full queue of pending pods, then the scheduler starts.
        load = [pod("load", f"p-{i}", f"rs-{i % 50}") for i in range(args.pods)]
        await create_all(client, load)
        recorder = EventRecorder(client, component="default-scheduler") if args.events else None
        scheduler = Scheduler(client, recorder=recorder or NullEvents(), bind_concurrency=CONCURRENCY)
        stop = asyncio.Event()
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        run = asyncio.create_task(scheduler.run(stop))
        start = time.perf_counter()
        cpu_self, cpu_server, cpu_etcd = cpu_seconds(), cpu_seconds(server_pid), cpu_seconds(etcd_pid)
        end = await wait_bound(scheduler, args.pods, timeout=600)
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
        results["throughput_pods_per_s"] = args.pods / (end - start)
        results["throughput_seconds"] = end - start
        # Where the time went: a CPU share near 1.0 marks the bottleneck.
        results["throughput_cpu_scheduler"] = (cpu_seconds() - cpu_self) / (end - start)
        results["throughput_cpu_apiserver"] = (cpu_seconds(server_pid) - cpu_server) / (end - start)
        results["throughput_cpu_etcd"] = (cpu_seconds(etcd_pid) - cpu_etcd) / (end - start)

        # 3. Burst: pods created while the scheduler runs idle.
        await asyncio.sleep(0.5)
        base = scheduler.bound
        burst = [pod("burst", f"b-{i}", "burst") for i in range(args.burst)]
        start = time.perf_counter()
        create_seconds = await create_all(client, burst)
        end = await wait_bound(scheduler, base + args.burst, timeout=600)
        results["burst_create_seconds"] = create_seconds
        results["burst_all_bound_seconds"] = end - start

        stop.set()
        await asyncio.wait_for(run, 30)
        if recorder is not None:
            await recorder.close()

        # Verify through the API, not the scheduler's counter.
        listed = await client.list_all(Pod, namespace="load")
        unbound = sum(1 for p in listed.items if not p.spec.node_name)
        per_node = Counter(p.spec.node_name for p in listed.items)
        if unbound:
            raise RuntimeError(f"{unbound} load pods left unbound")
        results["load_pods_per_node_min"] = min(per_node.values())
        results["load_pods_per_node_max"] = max(per_node.values())
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--pods", type=int, default=5000)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--anchor", type=int, default=2000, help="pods created and bound for the anchor")
    parser.add_argument("--events", action="store_true",
                        help="write the Scheduled Events to the API server, as the real scheduler does")
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of the throughput phase to FILE")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="klbench-scheduler-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    etcd = EtcdProcess(tmp / "etcd", fast=True, log_file=tmp / "etcd.log")
    etcd.start()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    root = Path(__file__).resolve().parent.parent
    with open(tmp / "apiserver.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "cli.main", "apiserver", "--etcd-servers", etcd.url,
                                 "--port", str(port)], cwd=root, stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            import uvloop

            runner: Any = uvloop.run
        except ImportError:
            runner = asyncio.run

        async def go() -> dict[str, float]:
            await wait_ready(url, proc)
            assert etcd.process is not None
            return await bench(url, args, proc.pid, etcd.process.pid)

        r = runner(go())
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        etcd.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"scheduler benchmark: {args.nodes} hollow nodes, {os.cpu_count()} cpus, python {sys.version.split()[0]}, "
          f"events {'written' if args.events else 'not written'}")
    print(f"  anchor  API server pod create        {r['anchor_create_per_s']:8.0f} /s  ({args.anchor} pods, "
          f"{CONCURRENCY} in flight)")
    print(f"  anchor  API server pod bind          {r['anchor_bind_per_s']:8.0f} /s")
    print(f"  scheduler throughput                 {r['throughput_pods_per_s']:8.0f} pods/s  "
          f"({args.pods} pods in {r['throughput_seconds']:.2f} s; "
          f"{r['load_pods_per_node_min']:.0f}-{r['load_pods_per_node_max']:.0f} pods per node)")
    per_pod = r["throughput_seconds"] * 1000 / args.pods
    print(f"          CPU during it: scheduler process {r['throughput_cpu_scheduler']:.0%} busy, "
          f"{r['throughput_cpu_scheduler'] * per_pod:.2f} ms/pod; apiserver {r['throughput_cpu_apiserver']:.0%} busy, "
          f"{r['throughput_cpu_apiserver'] * per_pod:.2f} ms/pod; etcd {r['throughput_cpu_etcd']:.0%} busy")
    print(f"  burst   {args.burst} pods created + bound    {r['burst_all_bound_seconds']:8.2f} s  "
          f"(creates alone {r['burst_create_seconds']:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

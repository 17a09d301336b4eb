"""API server benchmark: creates/s and latency at 1 and 32 clients, a 10,000-pod LIST, and
watch delivery latency to 100 watchers, each beside raw etcd (aetcd transactions) measured
in the same run.

    sudo make bench            # or: .venv/bin/python bench/api.py [--pods 10000]

The API server runs as its own process (`kubelite apiserver`, uvloop), as in production;
etcd runs on tmpfs with the test flags from DESIGN.md. Clients run in this process, on
uvloop too: on a two-core machine the load generator competes with the server and etcd
for CPU, so it should cost as little as it can (the raw etcd anchor shares the loop).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apiserver.etcd_process import EtcdProcess, free_port
from apiserver.storage import Storage


def pod(name: str, stamp: float = 0.0) -> bytes:
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench", "tier": "web"},
                     "annotations": {"sent": repr(stamp)}},
        "spec": {"containers": [{"name": "web", "image": "busybox:1.36", "ports": [{"containerPort": 8080}],
                                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]},
    }).encode()


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def run_concurrent(n: int, concurrency: int, one: object) -> tuple[float, list[float]]:
    latencies: list[float] = []
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            t = time.perf_counter()
            await one(i)  # type: ignore[operator]
            latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - start), latencies


async def bench_raw_etcd(url: str, n: int, concurrency: int, tag: str) -> tuple[float, list[float]]:
    storage = Storage(url)
    await storage.connect()
    body = pod("x")

    async def one(i: int) -> None:
        await storage.create(f"/bench/{tag}/{i}", body)

    result = await run_concurrent(n, concurrency, one)
    await storage.close()
    return result


async def bench_creates(session: aiohttp.ClientSession, base: str, n: int, concurrency: int,
                        tag: str) -> tuple[float, list[float]]:
    url = f"{base}/api/v1/namespaces/default/pods"

    async def one(i: int) -> None:
        async with session.post(url, data=pod(f"{tag}-{i}"), headers={"Content-Type": "application/json"}) as r:
            if r.status != 201:
                raise RuntimeError(f"create failed: {r.status} {await r.text()}")
            await r.read()

    return await run_concurrent(n, concurrency, one)


async def bench_list(session: aiohttp.ClientSession, base: str, params: dict[str, str]) -> tuple[float, int]:
    times = []
    count = 0
    for _ in range(5):
        t = time.perf_counter()
        async with session.get(f"{base}/api/v1/pods", params=params) as r:
            body = await r.read()
        times.append(time.perf_counter() - t)
        count = len(json.loads(body)["items"])
    return statistics.median(times), count


async def bench_raw_range(url: str) -> float:
    storage = Storage(url)
    await storage.connect()
    times = []
    for _ in range(5):
        t = time.perf_counter()
        await storage.list("/registry/pods/")
        times.append(time.perf_counter() - t)
    await storage.close()
    return statistics.median(times)


async def bench_watch(session: aiohttp.ClientSession, base: str, watchers: int, events: int) -> list[float]:
    latencies: list[float] = []
    url = f"{base}/api/v1/namespaces/watch/pods"
    async with session.post(f"{base}/api/v1/namespaces", json={"metadata": {"name": "watch"}}) as r:
        await r.read()
    ready = asyncio.Semaphore(0)

    async def watcher() -> None:
        async with session.get(url, params={"watch": "true", "resourceVersion": "0"}, timeout=None) as r:
            ready.release()
            seen = 0
            async for line in r.content:
                now = time.perf_counter()
                obj = json.loads(line)["object"]
                latencies.append(now - float(obj["metadata"]["annotations"]["sent"]))
                seen += 1
                if seen == events:
                    return

    tasks = [asyncio.create_task(watcher()) for _ in range(watchers)]
    for _ in range(watchers):
        await ready.acquire()
    await asyncio.sleep(0.5)
    for i in range(events):
        async with session.post(url, data=pod(f"w-{i}", time.perf_counter()),
                                headers={"Content-Type": "application/json"}) as r:
            await r.read()
        await asyncio.sleep(0.02)
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    return latencies


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="kltest-bench-api-", dir="/dev/shm"))
    etcd = EtcdProcess(tmp / "etcd", fast=True)
    etcd.start()
    port = free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "kubelite"), "apiserver",
                               "--etcd-servers", etcd.url, "--port", str(port)],
                              stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    rows: list[tuple[str, str, str]] = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            for _ in range(100):
                try:
                    async with session.get(f"{base}/readyz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            for conc, n in ((1, args.creates // 4), (32, args.creates)):
                raw_rate, raw_lat = await bench_raw_etcd(etcd.url, n, conc, f"c{conc}")
                rate, lat = await bench_creates(session, base, n, conc, f"c{conc}")
                rows.append((f"creates/s, {conc} client(s)", f"{rate:,.0f}/s", f"raw etcd txn {raw_rate:,.0f}/s "
                             f"({rate / raw_rate:.0%})"))
                rows.append((f"create latency p50 / p99, {conc} client(s)",
                             f"{pct(lat, .5) * 1e3:.1f} / {pct(lat, .99) * 1e3:.1f} ms",
                             f"raw etcd {pct(raw_lat, .5) * 1e3:.1f} / {pct(raw_lat, .99) * 1e3:.1f} ms"))
            existing = args.creates + args.creates // 4
            await bench_creates(session, base, max(0, args.pods - existing), 32, "fill")
            raw_range = await bench_raw_range(etcd.url)
            t_list, count = await bench_list(session, base, {})
            t_list0, _ = await bench_list(session, base, {"resourceVersion": "0"})
            rows.append((f"LIST of {count:,} pods (consistent)", f"{t_list * 1e3:.0f} ms",
                         f"raw etcd range {raw_range * 1e3:.0f} ms"))
            rows.append((f"LIST of {count:,} pods (resourceVersion=0)", f"{t_list0 * 1e3:.0f} ms", ""))
            lat = await bench_watch(session, base, args.watchers, args.events)
            rows.append((f"watch delivery p50 / p99 to {args.watchers} watchers",
                         f"{pct(lat, .5) * 1e3:.1f} / {pct(lat, .99) * 1e3:.1f} ms",
                         f"{len(lat):,} deliveries"))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait()
        etcd.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'kubelite':>18}  anchor (same run)")
    for name, value, anchor in rows:
        print(f"{name:<{width}}  {value:>18}  {anchor}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--creates", type=int, default=4000, help="creates at 32 clients (a quarter at 1)")
    parser.add_argument("--pods", type=int, default=10000, help="pods present for the LIST measurement")
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--events", type=int, default=50)
    uvloop.run(main(parser.parse_args()))

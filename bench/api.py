"""API server benchmark: creates/s and latency at 1 and 32 clients, a 10,000-pod LIST, and
watch delivery latency to 100 watchers, each beside raw etcd (aetcd transactions) measured
in the same run.

    sudo make bench            # or: .venv/bin/python bench/api.py [--pods 10000]

The API server runs as its own process (`kubelite apiserver`, uvloop), as in production;
etcd runs on tmpfs with the test flags from DESIGN.md. Clients run in this process, on
uvloop too: on a two-core machine the load generator competes with the server and etcd
for CPU, so it should cost as little as it can. Creates therefore go through a lean
keep-alive HTTP client (`bench/httpload.py`, like `wrk`), after 1,000 warm-up creates.

Two anchors frame the create figures:

- raw etcd: "absent -> put" transactions through the same aetcd client the server uses,
  32 in flight, from this process;
- the thinnest API server this stack allows: a separate process with one aiohttp route
  that reads the body, takes the name out of it and makes the same etcd transaction (no
  validation, no defaults, no watch cache), on an etcd of its own with the same flags.
  It shows how much of the gap to raw etcd is the cost of any Python HTTP server in
  front of aetcd on this machine, and how much is kubelite's own work.
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
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api import jsoncodec
from apiserver.etcd_process import EtcdProcess, free_port
from apiserver.storage import Storage
from bench import httpload

ROOT = Path(__file__).resolve().parents[1]


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


async def bench_creates(client: httpload.Client, n: int, concurrency: int, tag: str) -> tuple[float, list[float]]:
    path = "/api/v1/namespaces/default/pods"

    async def one(i: int) -> None:
        status, body = await client.request("POST", path, pod(f"{tag}-{i}"))
        if status != 201:
            raise RuntimeError(f"create failed: {status} {body.decode(errors='replace')}")

    return await run_concurrent(n, concurrency, one)


async def serve_floor(etcd_url: str, port: int) -> None:
    """The thinnest API server on this stack: HTTP in, one etcd transaction, the body back."""
    storage = Storage(etcd_url)
    await storage.connect()

    async def create(request: web.Request) -> web.Response:
        body = await request.read()
        name = jsoncodec.loads(body)["metadata"]["name"]
        await storage.create(f"/floor/pods/default/{name}", body)
        return web.Response(status=201, body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/api/v1/namespaces/default/pods", create)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


async def wait_ready(session: aiohttp.ClientSession, url: str) -> None:
    for _ in range(100):
        try:
            async with session.get(url) as r:
                if r.status in (200, 405):
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within 10 s")


async def bench_list(session: aiohttp.ClientSession, base: str, params: dict[str, str]) -> tuple[float, int]:
    times = []
    count = 0
    for _ in range(5):
        t = time.perf_counter()
        async with session.get(f"{base}/api/v1/pods", params=params) as r:
            body = await r.read()
        times.append(time.perf_counter() - t)
        if r.status != 200:
            raise RuntimeError(f"LIST failed: {r.status} {body[:300]!r}")
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
    floor_etcd = EtcdProcess(tmp / "floor-etcd", fast=True)
    floor_etcd.start()
    port, floor_port = free_port(), free_port()
    server = subprocess.Popen([sys.executable, "-m", "cli.main", "apiserver",  # this tree's kubelite
                               "--etcd-servers", etcd.url, "--port", str(port)],
                              stderr=subprocess.DEVNULL, start_new_session=True, cwd=ROOT)
    floor = subprocess.Popen([sys.executable, __file__, "--serve-floor", floor_etcd.url, str(floor_port)],
                             start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    rows: list[tuple[str, str, str]] = []
    client = httpload.Client(base)
    floor_client = httpload.Client(f"http://127.0.0.1:{floor_port}")
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            await wait_ready(session, f"{base}/readyz")
            await wait_ready(session, f"http://127.0.0.1:{floor_port}/api/v1/namespaces/default/pods")
            await bench_creates(client, 1000, 32, "warm")
            await bench_creates(floor_client, 1000, 32, "warm")
            for conc, n in ((1, args.creates // 4), (32, args.creates)):
                raw_rate, raw_lat = await bench_raw_etcd(etcd.url, n, conc, f"c{conc}")
                rate, lat = await bench_creates(client, n, conc, f"c{conc}")
                rows.append((f"creates/s, {conc} client(s)", f"{rate:,.0f}/s", f"raw etcd txn {raw_rate:,.0f}/s "
                             f"({rate / raw_rate:.0%})"))
                rows.append((f"create latency p50 / p99, {conc} client(s)",
                             f"{pct(lat, .5) * 1e3:.1f} / {pct(lat, .99) * 1e3:.1f} ms",
                             f"raw etcd {pct(raw_lat, .5) * 1e3:.1f} / {pct(raw_lat, .99) * 1e3:.1f} ms"))
            floor_rate, floor_lat = await bench_creates(floor_client, args.creates, 32, "c32")
            rows.append(("thinnest aiohttp+aetcd server, 32 clients", f"{floor_rate:,.0f}/s",
                         f"{floor_rate / raw_rate:.0%} of raw etcd; p50 / p99 {pct(floor_lat, .5) * 1e3:.1f} / "
                         f"{pct(floor_lat, .99) * 1e3:.1f} ms; kubelite at {rate / floor_rate:.0%} of it"))
            existing = 1000 + args.creates + args.creates // 4
            await bench_creates(client, max(0, args.pods - existing), 32, "fill")
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
        client.close()
        floor_client.close()
        for proc in (server, floor):
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
        etcd.stop()
        floor_etcd.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'kubelite':>18}  anchor (same run)")
    for name, value, anchor in rows:
        print(f"{name:<{width}}  {value:>18}  {anchor}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--creates", type=int, default=8000, help="creates at 32 clients (a quarter at 1)")
    parser.add_argument("--pods", type=int, default=10000, help="pods present for the LIST measurement")
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--serve-floor", nargs=2, metavar=("ETCD_URL", "PORT"), help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.serve_floor:
        uvloop.run(serve_floor(parsed.serve_floor[0], int(parsed.serve_floor[1])))
    else:
        uvloop.run(main(parsed))

"""The service dataplane: update latency at scale, and the cost of a ClusterIP on the data path (root).

    sudo .venv/bin/python bench/services.py [--samples 60] [--counts 10,100,1000] [--seconds 5]

1. Endpoint change -> rule present: a real etcd and API server (in this process), the proxier
   programming a network namespace `kltest-bench-svc`; 10, 100 and 1,000 Services of 10 endpoints
   each (cumulative). Each sample replaces one endpoint of a random Service through the API and
   times until the nft transaction carrying it has committed (the proxier's applier returned:
   `nft -f` returns after the kernel committed). Also printed: the nft transaction alone.
   Anchors, same run and namespace (nsenter + nft, as the applier runs): one bare `nft add
   element`, and one element replaced (delete + add: any endpoint change removes something, and
   a removal costs the kernel more than an addition).
2. Throughput and connection rate through a ClusterIP versus straight to the pod IP: two
   simulated hosts (kltest-node1/2), a client pod on node1, iperf3 and a TCP accept loop in a pod
   on node2; iperf3 -t SECONDS and a connect/close loop, direct and through the ClusterIP
   alternately, ROUNDS times; medians.

Everything is named kltest-* and removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/api.py must not shadow api/

from api.client import Client
from api.meta import ObjectMeta
from api.services import (
    SERVICE_NAME_LABEL,
    Endpoint,
    EndpointConditions,
    EndpointSlice,
    EndpointSlicePort,
    Service,
    ServicePort,
    ServiceSpec,
)
from apiserver.app import ServerConfig, create_app
from apiserver.etcd_process import EtcdProcess, free_port
from cli.local.fabric import Fabric
from proxy.applier import Applier
from proxy.proxier import Proxier
from proxy.rules import Context, Fragment, translate
from runtime.network import NodeNetwork

NETNS = "kltest-bench-svc"
NODE = "bench-node"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def sh(*argv: str, check: bool = True, input: str | None = None, timeout: float = 60) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, input=input, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {result.stderr.strip()}")
    return result.stdout


def service(i: int) -> Service:
    ip = f"10.43.{i // 250}.{i % 250 + 2}"
    return Service(metadata=ObjectMeta(name=f"s{i}", namespace="default"),
                   spec=ServiceSpec(cluster_ip=ip, cluster_ips=[ip], type="ClusterIP",
                                    ports=[ServicePort(name="http", port=80, protocol="TCP", target_port=8080)]))


def endpoint_slice(i: int, hosts: list[int]) -> EndpointSlice:
    return EndpointSlice(metadata=ObjectMeta(name=f"s{i}-x", namespace="default", labels={SERVICE_NAME_LABEL: f"s{i}"}),
                         address_type="IPv4", ports=[EndpointSlicePort(name="http", port=8080, protocol="TCP")],
                         endpoints=[Endpoint(addresses=[f"10.244.{i % 200}.{h}"], node_name="other",
                                             conditions=EndpointConditions(ready=True)) for h in hosts])


async def latency(counts: list[int], samples: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="kltest-bench-svc-"))
    etcd = EtcdProcess(tmp / "etcd", fast=True, log_file=tmp / "etcd.log")
    etcd.start()
    port = free_port()
    runner = web.AppRunner(create_app(ServerConfig(etcd_servers=etcd.url)), handle_signals=False, shutdown_timeout=1)
    sh("ip", "netns", "add", NETNS)
    sh("ip", "netns", "exec", NETNS, "ip", "link", "set", "lo", "up")
    try:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        async with Client(f"http://127.0.0.1:{port}") as client:
            proxier = Proxier(client, Context(node_name=NODE), netns_path=f"/run/netns/{NETNS}")
            applied: dict[str, float] = {}
            nft_times: list[float] = []
            lock = threading.Lock()
            inner = proxier.applier.update

            def timed(changes: Mapping[str, Fragment | None]) -> bool:
                start = time.perf_counter()
                result = inner(changes)
                end = time.perf_counter()
                with lock:
                    nft_times.append(end - start)
                    for key in changes:
                        applied[key] = end
                return result

            proxier.applier.update = timed  # type: ignore[method-assign]
            task = asyncio.create_task(proxier.run())
            await proxier.synced.wait()
            made = 0
            print(f"{'services':>9} {'p50 ms':>8} {'p99 ms':>8} {'nft p50':>8} {'nft p99':>8} "
                  f"{'add elem':>10} {'repl elem':>11}")
            for count in counts:
                sem = asyncio.Semaphore(16)

                async def make(i: int, sem: asyncio.Semaphore = sem) -> None:
                    async with sem:
                        await client.create(service(i))
                        await client.create(endpoint_slice(i, list(range(2, 12))))

                await asyncio.gather(*(make(i) for i in range(made, count)))
                made = count
                while len(proxier.applier.applied) < count or proxier.dirty:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.3)
                rng = random.Random(count)
                lat: list[float] = []
                nft_times.clear()
                for n in range(samples):
                    i = rng.randrange(count)
                    es = await client.get(EndpointSlice, f"s{i}-x", namespace="default")
                    last_ip = f"10.244.{i % 200}.{100 + n}"
                    es.endpoints[0] = Endpoint(addresses=[last_ip], node_name="other",
                                               conditions=EndpointConditions(ready=True))
                    key = f"default/s{i}"
                    t0 = time.perf_counter()
                    await client.update(es)
                    while applied.get(key, 0) < t0:  # noqa: ASYNC110 (polled: the applier runs in a thread)
                        await asyncio.sleep(0.0005)
                    lat.append(applied[key] - t0)
                    await asyncio.sleep(0.02)
                chain = next(c for c in proxier.applier.applied[key].chains if c.startswith("svc-"))
                listed = sh("ip", "netns", "exec", NETNS, "nft", "list", "chain", "ip", "kubelite-svc", chain)
                assert last_ip in listed  # the rule is really there
                adds, replaces = anchor_times(10)
                print(f"{count:>9} {pct(lat, .5) * 1e3:>8.1f} {pct(lat, .99) * 1e3:>8.1f} "
                      f"{pct(nft_times, .5) * 1e3:>8.1f} {pct(nft_times, .99) * 1e3:>8.1f} "
                      f"{statistics.median(adds) * 1e3:>10.1f} {statistics.median(replaces) * 1e3:>11.1f}")
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await proxier.teardown()
    finally:
        await runner.cleanup()
        sh("ip", "netns", "del", NETNS, check=False)
        etcd.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def anchor_times(n: int) -> tuple[list[float], list[float]]:
    """One bare `nft add element`, and one element replaced (delete + add in one transaction:
    what any endpoint change needs at least, a removal)."""
    sh("ip", "netns", "exec", NETNS, "nft",
       "add table ip kltest-anchor; add set ip kltest-anchor s { type ipv4_addr; }")
    adds, replaces = [], []
    for i in range(n):
        start = time.perf_counter()
        sh("nsenter", f"--net=/run/netns/{NETNS}", "nft", "-f", "-",
           input=f"add element ip kltest-anchor s {{ 10.0.0.{i + 1} }}\n")
        adds.append(time.perf_counter() - start)
        start = time.perf_counter()
        sh("nsenter", f"--net=/run/netns/{NETNS}", "nft", "-f", "-",
           input=f"delete element ip kltest-anchor s {{ 10.0.0.{i + 1} }}\n"
                 f"add element ip kltest-anchor s {{ 10.0.1.{i + 1} }}\n")
        replaces.append(time.perf_counter() - start)
    sh("ip", "netns", "exec", NETNS, "nft", "delete", "table", "ip", "kltest-anchor")
    return adds, replaces


ACCEPT = """
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7000)); s.listen(1024)
while True:
    c, _ = s.accept(); c.close()
"""
CONNECT = """
import socket, sys, time
addr, seconds = sys.argv[1], float(sys.argv[2])
n, end = 0, time.monotonic() + seconds
while time.monotonic() < end:
    c = socket.create_connection((addr, 7000))
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\\1\\0\\0\\0\\0\\0\\0\\0")
    c.close(); n += 1
print(n / seconds)
"""


def data_path(seconds: float, rounds: int) -> None:
    fabric = Fabric("kltest")
    root = Path(tempfile.mkdtemp(prefix="kltest-bench-svc-"))
    nets: list[NodeNetwork] = []
    procs: list[subprocess.Popen[bytes]] = []
    applier = Applier(Context(node_name="kltest-node1"), netns_path="/run/netns/kltest-node1")
    try:
        hosts = fabric.create(2)
        cidrs = {h.name: f"10.244.{i + 1}.0/24" for i, h in enumerate(hosts)}
        for h in hosts:
            net = NodeNetwork(root / h.name, pod_cidr=cidrs[h.name], node_ip=h.address, node_netns=h.name)
            net.setup()
            net.set_routes({cidrs[o.name]: o.address for o in hosts if o != h})
            nets.append(net)
        for ns in ("kltest-p-client", "kltest-p-server"):
            sh("ip", "netns", "add", ns)
        nets[0].attach("uid-client", "/run/netns/kltest-p-client")
        server_ip = nets[1].attach("uid-server", "/run/netns/kltest-p-server")
        procs.append(subprocess.Popen(["ip", "netns", "exec", "kltest-p-server", "iperf3", "-s", "-p", "5201"],
                                      stdout=subprocess.DEVNULL))
        procs.append(subprocess.Popen(["ip", "netns", "exec", "kltest-p-server", sys.executable, "-c", ACCEPT]))
        svc = Service(metadata=ObjectMeta(name="perf", namespace="default"),
                      spec=ServiceSpec(cluster_ip="10.43.0.80", ports=[
                          ServicePort(name="iperf", port=5201, protocol="TCP"),
                          ServicePort(name="accept", port=7000, protocol="TCP")]))
        es = EndpointSlice(metadata=ObjectMeta(name="perf-x", namespace="default"), address_type="IPv4",
                           ports=[EndpointSlicePort(name="iperf", port=5201, protocol="TCP"),
                                  EndpointSlicePort(name="accept", port=7000, protocol="TCP")],
                           endpoints=[Endpoint(addresses=[server_ip], node_name="kltest-node2")])
        applier.resync({"default/perf": translate(svc, [es], applier.ctx)})
        time.sleep(0.5)

        def iperf(address: str) -> float:
            out = sh("ip", "netns", "exec", "kltest-p-client", "iperf3", "-c", address, "-t", str(seconds), "-J",
                     timeout=seconds + 30)
            return float(json.loads(out)["end"]["sum_received"]["bits_per_second"]) / 1e9

        def rate(address: str) -> float:
            return float(sh("ip", "netns", "exec", "kltest-p-client", sys.executable, "-c", CONNECT, address,
                            str(seconds / 2), timeout=seconds + 30))

        direct, via = [], []
        cdirect, cvia = [], []
        for _ in range(rounds):  # alternating, so that the machine's load drifts hit both alike
            direct.append(iperf(server_ip))
            via.append(iperf("10.43.0.80"))
            cdirect.append(rate(server_ip))
            cvia.append(rate("10.43.0.80"))
        d, v = statistics.median(direct), statistics.median(via)
        cd, cv = statistics.median(cdirect), statistics.median(cvia)
        runs = " / ".join(", ".join(f"{x:.1f}" for x in r) for r in (direct, via))
        print(f"iperf3 (median of {rounds}) pod IP {d:.2f} Gbit/s, ClusterIP {v:.2f} Gbit/s: ratio {v / d:.3f}"
              f"  (runs {runs})")
        runs = " / ".join(", ".join(f"{x:.0f}" for x in r) for r in (cdirect, cvia))
        print(f"connections/s (median of {rounds}) pod IP {cd:.0f}, ClusterIP {cv:.0f}: ratio {cv / cd:.3f}"
              f"  (runs {runs})")
    finally:
        for p in procs:
            p.kill()
            p.wait()
        with contextlib.suppress(Exception):
            applier.teardown()
        for ns in ("kltest-p-client", "kltest-p-server"):
            sh("ip", "netns", "del", ns, check=False)
        for net in nets:
            with contextlib.suppress(Exception):
                net.teardown()
        fabric.destroy()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--counts", default="10,100,1000")
    parser.add_argument("--seconds", type=float, default=5.0, help="iperf3 run length")
    parser.add_argument("--rounds", type=int, default=4, help="alternating direct/ClusterIP rounds")
    parser.add_argument("--skip-data-path", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    if shutil.which("iperf3") is None and not args.skip_data_path:
        raise SystemExit("iperf3 is missing: apt-get install iperf3 (make bench does)")
    if not args.skip_latency:
        asyncio.run(latency([int(c) for c in args.counts.split(",")], args.samples))
    if not args.skip_data_path:
        data_path(args.seconds, args.rounds)


if __name__ == "__main__":
    main()
